/* A second thread with a 64 KiB alternate signal stack of its own, the main
 * thread with none: after the resume each reads back its own (the second
 * thread reads it itself and reports). */
#include "feature.h"

#include <pthread.h>
#include <signal.h>

#define SIZE (64 * 1024)

static atomic_int go, said;
static stack_t worker_set, worker_now;

static void *worker(void *arg)
{
	(void)arg;
	worker_set = (stack_t){ .ss_sp = malloc(SIZE), .ss_size = SIZE, .ss_flags = 0 };
	if (!worker_set.ss_sp || sigaltstack(&worker_set, NULL))
		feature_setup_failed("the second thread's sigaltstack");
	atomic_store(&said, 1);
	while (!atomic_load(&go))
		usleep(1000);
	if (sigaltstack(NULL, &worker_now))
		worker_now.ss_flags = -1;
	atomic_store(&said, 2);
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		feature_setup_failed("pthread_create");
	while (atomic_load(&said) < 1)
		usleep(1000);
	stack_t main_was;
	if (sigaltstack(NULL, &main_was) || !(main_was.ss_flags & SS_DISABLE))
		feature_setup_failed("the main thread has an alternate stack already");

	feature_suspend_here();

	stack_t main_now;
	CHECK(sigaltstack(NULL, &main_now) == 0, "%s", strerror(errno));
	CHECK(main_now.ss_flags == SS_DISABLE, "the main thread's: %p + %zu, flags %#x",
	      main_now.ss_sp, main_now.ss_size, main_now.ss_flags);
	atomic_store(&go, 1);
	for (int i = 0; i < 500 && atomic_load(&said) < 2; i++)
		usleep(10000);
	CHECK(atomic_load(&said) == 2, "the second thread did not say within 5 s");
	CHECK(worker_now.ss_sp == worker_set.ss_sp && worker_now.ss_size == SIZE &&
		      worker_now.ss_flags == 0,
	      "the second thread's: %p + %zu, flags %#x; was %p + %d", worker_now.ss_sp,
	      worker_now.ss_size, worker_now.ss_flags, worker_set.ss_sp, SIZE);
	if (atomic_load(&said) == 2)
		pthread_join(t, NULL);
	return feature_done();
}
