/* An ITIMER_REAL armed with a 50 ms interval and a SIGALRM handler that counts:
 * after the resume the interval is the same, the value within it, and it fires. */
#include "feature.h"

#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL))
		feature_setup_failed("sigaction");
	struct itimerval set = { .it_interval = { 0, 50000 }, .it_value = { 0, 50000 } };
	if (setitimer(ITIMER_REAL, &set, NULL))
		feature_setup_failed("setitimer");

	feature_suspend_here();

	struct itimerval now;
	CHECK(getitimer(ITIMER_REAL, &now) == 0, "%s", strerror(errno));
	CHECK(now.it_interval.tv_sec == set.it_interval.tv_sec &&
		      now.it_interval.tv_usec == set.it_interval.tv_usec,
	      "interval %ld.%06ld s", (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
	CHECK(timerisset(&now.it_value) && !timercmp(&now.it_value, &now.it_interval, >),
	      "value %ld.%06ld s", (long)now.it_value.tv_sec, (long)now.it_value.tv_usec);
	int before = alarms;
	for (int i = 0; i < 500 && alarms == before; i++) {
		struct timespec tick = { 0, 10000000 };
		nanosleep(&tick, NULL);
	}
	CHECK(alarms > before, "no SIGALRM within 5 s (count stays %d)", before);
	return feature_done();
}
