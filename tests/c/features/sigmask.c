/* The main thread blocks SIGUSR2 and SIGTERM: after the resume its mask holds
 * exactly those, and a raised SIGUSR2 waits pending until unblocked. */
#include "feature.h"

#include <signal.h>

static volatile sig_atomic_t usr2s;

static void on_usr2(int sig)
{
	(void)sig;
	usr2s++;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction sa = { .sa_handler = on_usr2 };
	sigemptyset(&sa.sa_mask);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTERM);
	if (sigaction(SIGUSR2, &sa, NULL) || sigprocmask(SIG_BLOCK, &block, NULL))
		feature_setup_failed("blocking");

	feature_suspend_here();

	sigset_t now;
	CHECK(sigprocmask(SIG_BLOCK, NULL, &now) == 0, "%s", strerror(errno));
	/* 32 and 33 are libc's, the default two the agent's. */
	for (int sig = 1; sig <= 64; sig++)
		if (sig != 32 && sig != 33 && sig != SUSPEND_DEFAULT_RESUME_SIGNAL &&
		    sig != SUSPEND_DEFAULT_SUSPEND_SIGNAL)
			CHECK(sigismember(&now, sig) == (sig == SIGUSR2 || sig == SIGTERM),
			      "signal %d %sblocked", sig, sigismember(&now, sig) ? "" : "not ");
	raise(SIGUSR2);
	CHECK(usr2s == 0, "a blocked SIGUSR2 was handled");
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(usr2s == 1, "SIGUSR2 handled %d times once unblocked", (int)usr2s);
	return feature_done();
}
