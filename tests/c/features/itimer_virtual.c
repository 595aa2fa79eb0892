/* ITIMER_VIRTUAL and ITIMER_PROF, each every 10 ms with a counting handler:
 * after the resume both intervals read back the same, and burning CPU (up to
 * 5 s) makes both counts grow. */
#include "feature.h"

#include <signal.h>
#include <sys/time.h>

static volatile sig_atomic_t virtuals, profs;

static void on_timer(int sig)
{
	if (sig == SIGVTALRM)
		virtuals++;
	else
		profs++;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction sa = { .sa_handler = on_timer, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	struct itimerval set = { .it_interval = { 0, 10000 }, .it_value = { 0, 10000 } };
	if (sigaction(SIGVTALRM, &sa, NULL) || sigaction(SIGPROF, &sa, NULL))
		feature_setup_failed("sigaction");
	if (setitimer(ITIMER_VIRTUAL, &set, NULL) || setitimer(ITIMER_PROF, &set, NULL))
		feature_setup_failed("setitimer");

	feature_suspend_here();

	int which[2] = { ITIMER_VIRTUAL, ITIMER_PROF };
	for (int i = 0; i < 2; i++) {
		struct itimerval now;
		CHECK(getitimer(which[i], &now) == 0, "%s", strerror(errno));
		CHECK(now.it_interval.tv_sec == 0 && now.it_interval.tv_usec == 10000,
		      "timer %d: interval %ld.%06ld s, not 0.010000", which[i],
		      (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
	}
	int virtuals_were = virtuals, profs_were = profs;
	volatile unsigned long spin = 0;
	for (double until = now_s() + 5; now_s() < until;) {
		for (int i = 0; i < 100000; i++)
			spin++;
		if (virtuals > virtuals_were && profs > profs_were)
			break;
	}
	CHECK(virtuals > virtuals_were, "no SIGVTALRM in 5 s of CPU (count stays %d)",
	      virtuals_were);
	CHECK(profs > profs_were, "no SIGPROF in 5 s of CPU (count stays %d)", profs_were);
	return feature_done();
}
