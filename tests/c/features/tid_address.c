/* A second thread's clear-child-tid address moved to a variable of ours
 * (set_tid_address): after the resume, when that thread exits, the kernel
 * zeroes the variable and wakes a futex waiter on it. */
#include "feature.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>

static atomic_int go;
static volatile int cleared_on_exit; /* the thread's tid, until it exits */

static void *worker(void *arg)
{
	(void)arg;
	cleared_on_exit = (int)syscall(SYS_set_tid_address, &cleared_on_exit);
	while (!atomic_load(&go))
		usleep(1000);
	usleep(100000); /* let the main thread wait first */
	syscall(SYS_exit, 0); /* no join: glibc's own tid word is no longer cleared */
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL) || pthread_detach(t))
		feature_setup_failed("pthread_create");
	while (!cleared_on_exit)
		usleep(1000);
	int tid = cleared_on_exit;

	feature_suspend_here();

	CHECK(cleared_on_exit == tid, "the variable holds %d, not the tid %d", cleared_on_exit,
	      tid);
	atomic_store(&go, 1);
	struct timespec wait = { 5, 0 };
	long woken;
	do
		woken = syscall(SYS_futex, &cleared_on_exit, FUTEX_WAIT, tid, &wait, NULL, 0);
	while (woken < 0 && errno == EINTR);
	CHECK(woken == 0 || errno == EAGAIN, "waiting for the thread's exit: %s",
	      strerror(errno));
	CHECK(cleared_on_exit == 0, "the variable holds %d after the thread's exit",
	      cleared_on_exit);
	return feature_done();
}
