/* SIGUSR1 pending for the main thread (raise) and SIGUSR2 for the process (kill),
 * both blocked: after the resume each is pending where it was, and unblocking
 * runs each handler once. */
#include "feature.h"

#include <signal.h>

static volatile sig_atomic_t usr1s, usr2s;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		usr1s++;
	else
		usr2s++;
}

/* The pending mask FIELD ("SigPnd": this thread's, "ShdPnd": the process's). */
static unsigned long long pending_in(const char *field)
{
	char line[256];
	unsigned long long mask = ~0ULL;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/thread-self/status", "r");
	if (!f)
		return mask;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, n) && line[n] == ':')
			mask = strtoull(line + n + 1, NULL, 16);
	fclose(f);
	return mask;
}

int main(void)
{
	feature_begin("restored");
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGUSR2, &sa, NULL) ||
	    sigprocmask(SIG_BLOCK, &block, NULL))
		feature_setup_failed("handlers");
	if (raise(SIGUSR1) || kill(getpid(), SIGUSR2))
		feature_setup_failed("sending");

	feature_suspend_here();

	sigset_t pending;
	CHECK(sigpending(&pending) == 0, "%s", strerror(errno));
	CHECK(sigismember(&pending, SIGUSR1) == 1, "SIGUSR1 not pending");
	CHECK(sigismember(&pending, SIGUSR2) == 1, "SIGUSR2 not pending");
	unsigned long long usr1 = 1ULL << (SIGUSR1 - 1), usr2 = 1ULL << (SIGUSR2 - 1);
	unsigned long long thread = pending_in("SigPnd"), shared = pending_in("ShdPnd");
	CHECK((thread & (usr1 | usr2)) == usr1, "thread's pending %#llx", thread);
	CHECK((shared & (usr1 | usr2)) == usr2, "process's pending %#llx", shared);
	CHECK(usr1s == 0 && usr2s == 0, "handled while blocked: %d, %d", (int)usr1s, (int)usr2s);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(usr1s == 1, "SIGUSR1 handled %d times", (int)usr1s);
	CHECK(usr2s == 1, "SIGUSR2 handled %d times", (int)usr2s);
	return feature_done();
}
