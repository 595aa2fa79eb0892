/* A SIGUSR1 handler with SA_RESETHAND|SA_NODEFER|SA_SIGINFO: after the resume
 * the flags read back the same, and one raise runs the handler (SIGUSR1 not
 * blocked in it) and puts the disposition back to SIG_DFL. */
#include "feature.h"

#include <signal.h>

#define FLAGS ((unsigned)(SA_RESETHAND | SA_NODEFER | SA_SIGINFO))
#define SA_RESTORER_FLAG 0x04000000u /* libc's, not ours */

static volatile sig_atomic_t runs, usr1_blocked = -1;

static void on_usr1(int sig, siginfo_t *info, void *ctx)
{
	(void)sig, (void)info, (void)ctx;
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	usr1_blocked = sigismember(&cur, SIGUSR1);
	runs++;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction sa = { .sa_sigaction = on_usr1, .sa_flags = FLAGS };
	sigemptyset(&sa.sa_mask);
	struct sigaction was;
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGUSR1, NULL, &was))
		feature_setup_failed("sigaction");
	if (((unsigned)was.sa_flags & ~SA_RESTORER_FLAG) != FLAGS)
		feature_setup_failed("sigaction reads back other flags");

	feature_suspend_here();

	struct sigaction now;
	CHECK(sigaction(SIGUSR1, NULL, &now) == 0, "%s", strerror(errno));
	CHECK(now.sa_sigaction == on_usr1, "handler %p, not %p", (void *)now.sa_sigaction,
	      (void *)on_usr1);
	CHECK(((unsigned)now.sa_flags & ~SA_RESTORER_FLAG) == FLAGS, "flags %#x, not %#x",
	      (unsigned)now.sa_flags, FLAGS);
	raise(SIGUSR1);
	CHECK(runs == 1, "the handler ran %d times", (int)runs);
	CHECK(usr1_blocked == 0, "SIGUSR1 blocked in its handler (%d): SA_NODEFER lost",
	      (int)usr1_blocked);
	CHECK(sigaction(SIGUSR1, NULL, &now) == 0 && now.sa_handler == SIG_DFL,
	      "after one signal the handler is %p, not SIG_DFL (SA_RESETHAND lost)",
	      (void *)now.sa_sigaction);
	return feature_done();
}
