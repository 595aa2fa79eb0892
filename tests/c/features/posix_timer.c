/* A POSIX timer (CLOCK_MONOTONIC, SIGUSR1) firing every 100 ms: it comes back
 * with its id and interval, and still fires. */
#include "feature.h"

#include <signal.h>

static volatile sig_atomic_t fired;

static void on_usr1(int sig)
{
	(void)sig;
	fired++;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec every = { .it_interval = { 0, 100000000 }, .it_value = { 0, 100000000 } };
	timer_t timer;
	if (sigaction(SIGUSR1, &sa, NULL) || timer_create(CLOCK_MONOTONIC, &sev, &timer) ||
	    timer_settime(timer, 0, &every, NULL))
		feature_setup_failed("timer_create");

	feature_suspend_here();

	struct itimerspec now;
	CHECK(timer_gettime(timer, &now) == 0, "timer_gettime: %s", strerror(errno));
	CHECK(now.it_interval.tv_sec == 0 && now.it_interval.tv_nsec == 100000000,
	      "interval %ld.%09ld s", (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
	CHECK((now.it_value.tv_sec || now.it_value.tv_nsec) && now.it_value.tv_sec == 0 &&
		      now.it_value.tv_nsec <= 100000000,
	      "value %ld.%09ld s", (long)now.it_value.tv_sec, now.it_value.tv_nsec);
	int before = fired;
	for (int i = 0; i < 500 && fired == before; i++) {
		struct timespec tick = { 0, 10000000 };
		nanosleep(&tick, NULL);
	}
	CHECK(fired > before, "no SIGUSR1 within 5 s (count stays %d)", before);
	return feature_done();
}
