/* Four threads computing, each with a __thread value (index * 1000 + 7): after
 * the resume each sees its own value, its tid is the one it had, and its
 * integer and floating-point counts still agree. */
#include "feature.h"

#include <pthread.h>

#define THREADS 4

static __thread int mine;
static atomic_int started, stop;
static pid_t tids[THREADS];
static atomic_long rounds[THREADS];
static int tls_ok[THREADS], tid_ok[THREADS], fp_ok[THREADS];

static void *compute(void *arg)
{
	int i = (int)(long)arg;
	mine = i * 1000 + 7;
	tids[i] = gettid();
	atomic_fetch_add(&started, 1);
	double x = 0;
	long n = 0;
	while (!atomic_load(&stop)) {
		x += 1.0;
		atomic_store(&rounds[i], ++n);
	}
	tls_ok[i] = mine == i * 1000 + 7;
	tid_ok[i] = gettid() == tids[i];
	fp_ok[i] = x == (double)n;
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	pthread_t threads[THREADS];
	for (long i = 0; i < THREADS; i++)
		if (pthread_create(&threads[i], NULL, compute, (void *)i))
			feature_setup_failed("pthread_create");
	while (atomic_load(&started) < THREADS)
		sched_yield();

	feature_suspend_here();

	long seen[THREADS];
	for (int i = 0; i < THREADS; i++)
		seen[i] = atomic_load(&rounds[i]);
	/* Each computes again (within 5 s: a held one's memory may still be
	 * coming back, on a busy machine). */
	for (int tries = 0; tries < 500; tries++) {
		int all = 1;
		for (int i = 0; i < THREADS; i++)
			all &= atomic_load(&rounds[i]) > seen[i];
		if (all)
			break;
		struct timespec nap = { 0, 10000000 };
		nanosleep(&nap, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++) {
		CHECK(atomic_load(&rounds[i]) > seen[i], "thread %d does not compute", i);
		CHECK(pthread_join(threads[i], NULL) == 0, "join %d", i);
		CHECK(tls_ok[i], "thread %d's __thread value changed", i);
		CHECK(tid_ok[i], "thread %d's tid changed from %d", i, (int)tids[i]);
		CHECK(fp_ok[i], "thread %d's floating-point count differs", i);
	}
	return feature_done();
}
