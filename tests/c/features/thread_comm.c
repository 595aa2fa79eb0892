/* A second thread named "feat-worker" (pthread_setname_np): after the resume
 * /proc/self/task/TID/comm of each thread is what it was. */
#include "feature.h"

#include <pthread.h>

static atomic_int tid, stop;

static void *worker(void *arg)
{
	(void)arg;
	atomic_store(&tid, gettid());
	while (!atomic_load(&stop))
		usleep(1000);
	return NULL;
}

/* Thread t's comm, newline dropped ("" if unread). */
static void comm_of(pid_t t, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)t);
	FILE *f = fopen(path, "r");
	out[0] = 0;
	if (f && fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = 0;
	if (f)
		fclose(f);
}

int main(void)
{
	feature_begin("restored");
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		feature_setup_failed("pthread_create");
	while (!atomic_load(&tid))
		usleep(1000);
	if (pthread_setname_np(t, "feat-worker"))
		feature_setup_failed("pthread_setname_np");
	char main_was[32], worker_was[32];
	comm_of(getpid(), main_was, sizeof main_was);
	comm_of(atomic_load(&tid), worker_was, sizeof worker_was);
	if (strcmp(worker_was, "feat-worker") || !main_was[0])
		feature_setup_failed("the names read back otherwise");

	feature_suspend_here();

	char main_now[32], worker_now[32];
	comm_of(getpid(), main_now, sizeof main_now);
	comm_of(atomic_load(&tid), worker_now, sizeof worker_now);
	CHECK(!strcmp(main_now, main_was), "the main thread is %s, was %s", main_now, main_was);
	CHECK(!strcmp(worker_now, worker_was), "the second thread is %s, was %s", worker_now,
	      worker_was);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	return feature_done();
}
