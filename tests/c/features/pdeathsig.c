/* A parent-death signal (PR_SET_PDEATHSIG SIGUSR1, its handler counting): an
 * image cannot give it back (its parent is not restored), so a suspend that
 * kills refuses it before freezing (the task iterator reads it); held, it is still SIGUSR1 and never sent. */
#include "feature.h"

#include <signal.h>
#include <sys/prctl.h>

static volatile sig_atomic_t sent;

static void on_usr1(int sig)
{
	(void)sig;
	sent++;
}

int main(void)
{
	feature_begin("refused parent-death signal");
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) || prctl(PR_SET_PDEATHSIG, SIGUSR1))
		feature_setup_failed("PR_SET_PDEATHSIG");

	feature_suspend_here();

	int signal = 0;
	CHECK(prctl(PR_GET_PDEATHSIG, &signal) == 0, "%s", strerror(errno));
	CHECK(signal == SIGUSR1, "the parent-death signal is %d, not SIGUSR1", signal);
	CHECK(sent == 0, "SIGUSR1 came %d times", (int)sent);
	return feature_done();
}
