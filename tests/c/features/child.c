/* A child process that sleeps: an image cannot make it our child again; after a
 * held suspension it is still ours (running, not reaped) until we kill it. */
#include "feature.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

int main(void)
{
	feature_begin("refused child process");
	pid_t parent = getpid(), child = fork();
	if (child < 0)
		feature_setup_failed("fork");
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		for (;;)
			pause();
	}

	feature_suspend_here();

	int status = 0;
	pid_t got = waitpid(child, &status, WNOHANG);
	CHECK(got == 0, "waitpid WNOHANG: %d (%s), status %#x", (int)got, strerror(errno), status);
	CHECK(kill(child, SIGKILL) == 0, "kill: %s", strerror(errno));
	got = waitpid(child, &status, 0);
	CHECK(got == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "reaped %d with status %#x", (int)got, status);
	return feature_done();
}
