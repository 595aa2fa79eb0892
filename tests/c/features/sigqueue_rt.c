/* SIGRTMIN+4 blocked and queued to itself three times (sigqueue, values 1, 2,
 * 3): after the resume sigtimedwait takes all three, in order, then none. */
#include "feature.h"

#include <signal.h>

/* The next SIGRTMIN+4 waiting (0 if none), without blocking. */
static int take(const sigset_t *set, siginfo_t *info)
{
	struct timespec zero = { 0, 0 };
	int got;
	while ((got = sigtimedwait(set, info, &zero)) < 0 && errno == EINTR)
		;
	return got < 0 ? 0 : got;
}

int main(void)
{
	feature_begin("restored");
	int sig = SIGRTMIN + 4;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		feature_setup_failed("sigprocmask");
	for (int i = 1; i <= 3; i++)
		if (sigqueue(getpid(), sig, (union sigval){ .sival_int = i }))
			feature_setup_failed("sigqueue");

	feature_suspend_here();

	for (int i = 1; i <= 3; i++) {
		siginfo_t info = { 0 };
		int got = take(&set, &info);
		CHECK(got == sig && info.si_code == SI_QUEUE && info.si_value.sival_int == i &&
			      info.si_pid == getpid(),
		      "take %d: signal %d code %d value %d from pid %d (%s)", i, got,
		      info.si_code, info.si_value.sival_int, (int)info.si_pid, strerror(errno));
	}
	siginfo_t info;
	int more = take(&set, &info);
	CHECK(more == 0, "a fourth signal %d, value %d", more, info.si_value.sival_int);
	return feature_done();
}
