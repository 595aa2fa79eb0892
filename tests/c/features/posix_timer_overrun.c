/* A POSIX timer whose last signal was delivered late: timer_getoverrun
 * says how many expirations it missed. No call sets that count, so a
 * suspend that kills refuses it (naming the timer) before freezing (the
 * task iterator follows the process's timers); held, the count stays as
 * it was. */
#include "feature.h"

#include <signal.h>

int main(void)
{
	feature_begin("refused overrun count");
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	/* Every millisecond, the signal blocked: it stays pending while the
	 * timer goes on expiring, and the expirations missed are counted. */
	struct itimerspec every = { .it_interval = { 0, 1000000 }, .it_value = { 0, 1000000 } };
	timer_t timer;
	if (sigprocmask(SIG_BLOCK, &usr2, NULL) || timer_create(CLOCK_MONOTONIC, &sev, &timer) ||
	    timer_settime(timer, 0, &every, NULL))
		feature_setup_failed("timer_create");
	struct timespec wait = { 0, 30000000 };
	nanosleep(&wait, NULL);
	siginfo_t info;
	struct timespec none = { 0, 0 };
	if (sigtimedwait(&usr2, &info, &none) != SIGUSR2)
		feature_setup_failed("sigtimedwait: the timer's signal was not pending");
	int overrun = timer_getoverrun(timer);
	if (overrun <= 0)
		feature_setup_failed("timer_getoverrun: no overrun after 30 expirations");

	feature_suspend_here();

	/* Still blocked: no signal was delivered since, so the count of the
	 * last delivery stands. */
	int now = timer_getoverrun(timer);
	CHECK(now == overrun, "timer_getoverrun says %d, was %d", now, overrun);
	return feature_done();
}
