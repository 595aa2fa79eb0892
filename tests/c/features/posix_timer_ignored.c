/* A POSIX timer (CLOCK_MONOTONIC, every millisecond) whose signal, SIGUSR1,
 * is ignored, with a value of its own: it has fired many times and no
 * expiry was delivered late (timer_getoverrun 0), so nothing is refused;
 * it comes back with its id and interval, and still no overrun count.
 *
 * The count changes only when an expiry's signal is queued rather than
 * dropped, and taken later: the kernel queues even an ignored signal when
 * it would go to a thread that blocks it or is traced. So the resume arms
 * the timer last, just before the process is let go (6.1 counted the
 * resume's last steps as overruns: 8). And the client registers in signal
 * context: its helper thread blocks every signal, and since Linux 6.3 a
 * process's timer signal goes to the thread running when it fires if it
 * is one of the process's, so an expiry while the helper runs (it serves
 * every suspend request) would be counted too, suspended or not. (6.13
 * keeps such a timer on a second list too: reading it through the wrong
 * member took its value for an overrun count.) */
#include "feature.h"

#include <signal.h>

int main(void)
{
	feature_begin("restored");
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1,
				.sigev_value = { .sival_int = 12345 } };
	struct itimerspec every = { .it_interval = { 0, 1000000 }, .it_value = { 0, 1000000 } };
	timer_t timer;
	if (signal(SIGUSR1, SIG_IGN) == SIG_ERR || timer_create(CLOCK_MONOTONIC, &sev, &timer) ||
	    timer_settime(timer, 0, &every, NULL))
		feature_setup_failed("timer_create");
	struct timespec wait = { 0, 30000000 };
	nanosleep(&wait, NULL);
	feature_context = SUSPEND_CONTEXT_SIGNAL;
	int overrun = timer_getoverrun(timer);
	if (overrun != 0)
		feature_setup_failed("timer_getoverrun: not 0 with the signal ignored");

	feature_suspend_here();

	struct itimerspec now;
	CHECK(timer_gettime(timer, &now) == 0, "timer_gettime: %s", strerror(errno));
	CHECK(now.it_interval.tv_sec == 0 && now.it_interval.tv_nsec == 1000000,
	      "interval %ld.%09ld s", (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
	CHECK(timer_getoverrun(timer) == 0, "timer_getoverrun says %d", timer_getoverrun(timer));
	return feature_done();
}
