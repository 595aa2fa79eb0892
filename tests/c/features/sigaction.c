/* A SA_SIGINFO|SA_RESTART handler for SIGUSR1 masking SIGUSR2, and SIGPIPE ignored:
 * after the resume both read back the same, the handler runs with its mask, and
 * a write to a broken pipe fails with EPIPE instead of killing. */
#include "feature.h"

#include <signal.h>

static volatile sig_atomic_t got_signo, usr2_masked;

static void on_usr1(int sig, siginfo_t *info, void *ctx)
{
	(void)sig, (void)ctx;
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	usr2_masked = sigismember(&cur, SIGUSR2);
	got_signo = info->si_signo;
}

/* Same handler, flags (but the SA_RESTORER libc adds) and mask. */
static int same(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_handler != b->sa_handler ||
	    (a->sa_flags & ~0x04000000) != (b->sa_flags & ~0x04000000))
		return 0;
	for (int sig = 1; sig <= 64; sig++)
		if (sigismember(&a->sa_mask, sig) != sigismember(&b->sa_mask, sig))
			return 0;
	return 1;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction usr1 = { .sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&usr1.sa_mask);
	sigaddset(&usr1.sa_mask, SIGUSR2);
	struct sigaction pipe_ign = { .sa_handler = SIG_IGN };
	sigemptyset(&pipe_ign.sa_mask);
	struct sigaction usr1_was, pipe_was;
	if (sigaction(SIGUSR1, &usr1, NULL) || sigaction(SIGPIPE, &pipe_ign, NULL) ||
	    sigaction(SIGUSR1, NULL, &usr1_was) || sigaction(SIGPIPE, NULL, &pipe_was))
		feature_setup_failed("sigaction");
	if (!same(&usr1, &usr1_was) || !same(&pipe_ign, &pipe_was))
		feature_setup_failed("sigaction reads back otherwise");

	feature_suspend_here();

	struct sigaction usr1_now, pipe_now;
	CHECK(sigaction(SIGUSR1, NULL, &usr1_now) == 0, "%s", strerror(errno));
	CHECK(same(&usr1_now, &usr1_was), "SIGUSR1: handler %p flags %#x",
	      (void *)usr1_now.sa_sigaction, (unsigned)usr1_now.sa_flags);
	CHECK(sigaction(SIGPIPE, NULL, &pipe_now) == 0, "%s", strerror(errno));
	CHECK(same(&pipe_now, &pipe_was), "SIGPIPE: handler %p flags %#x",
	      (void *)pipe_now.sa_sigaction, (unsigned)pipe_now.sa_flags);
	raise(SIGUSR1);
	CHECK(got_signo == SIGUSR1, "the handler saw signal %d", (int)got_signo);
	CHECK(usr2_masked == 1, "SIGUSR2 not blocked while in the handler");
	int p[2];
	if (pipe(p))
		feature_setup_failed("pipe");
	close(p[0]);
	CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE, "write to a broken pipe: %s",
	      strerror(errno));
	return feature_done();
}
