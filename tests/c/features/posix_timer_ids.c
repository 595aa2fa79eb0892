/* POSIX timers whose ids have a gap (0, 2, 3: timer 1 was deleted), one
 * signalling a thread of its own (SIGEV_THREAD_ID), one on CLOCK_REALTIME
 * with a value: after the resume each id is the same timer (clock,
 * notification, value, time left), and the deleted one stays deleted. */
#include "feature.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static atomic_int worker_tid, got_value;

static void *worker(void *arg)
{
	(void)arg;
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	atomic_store(&worker_tid, (int)syscall(SYS_gettid));
	siginfo_t info;
	/* The thread-directed timer's signal: SIGUSR2, blocked everywhere.
	 * (A stopped and continued thread may see EINTR here: signal(7).) */
	int sig;
	while ((sig = sigwaitinfo(&usr2, &info)) < 0 && errno == EINTR)
		;
	if (sig == SIGUSR2)
		atomic_store(&got_value, info.si_value.sival_int);
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	while (!atomic_load(&worker_tid))
		usleep(1000);
	timer_t ids[4];
	struct sigevent none = { .sigev_notify = SIGEV_NONE };
	for (int i = 0; i < 3; i++)
		if (timer_create(CLOCK_MONOTONIC, &none, &ids[i]))
			feature_setup_failed("timer_create");
	timer_delete(ids[1]);
	struct sigevent to_thread = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2,
				      .sigev_value.sival_int = 77 };
	to_thread._sigev_un._tid = atomic_load(&worker_tid);
	if (timer_create(CLOCK_REALTIME, &to_thread, &ids[3]))
		feature_setup_failed("a thread-directed timer");
	if ((long)ids[0] != 0 || (long)ids[2] != 2 || (long)ids[3] != 3)
		feature_skip("this kernel does not hand out timer ids in order from 0");
	struct itimerspec far = { .it_value = { 3600, 0 } };
	struct itimerspec soon = { .it_value = { 1, 0 } };
	timer_settime(ids[2], 0, &far, NULL);
	timer_settime(ids[3], 0, &soon, NULL);

	feature_suspend_here();

	struct itimerspec now;
	CHECK(timer_gettime(ids[0], &now) == 0 && !now.it_value.tv_sec && !now.it_value.tv_nsec,
	      "timer 0: %s", strerror(errno));
	CHECK(timer_gettime(ids[1], &now) < 0 && errno == EINVAL, "the deleted timer 1 exists");
	CHECK(timer_gettime(ids[2], &now) == 0 && now.it_value.tv_sec > 3500,
	      "timer 2 has %ld s left", (long)now.it_value.tv_sec);
	pthread_join(t, NULL);
	CHECK(atomic_load(&got_value) == 77, "the worker got value %d from its timer",
	      atomic_load(&got_value));
	return feature_done();
}
