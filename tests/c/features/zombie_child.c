/* A child that exited at once (exit 7), not reaped: an image cannot make it
 * our child again, so a suspend that kills refuses it; held, waitpid still
 * reaps it with its exit status. */
#include "feature.h"

#include <sys/wait.h>

int main(void)
{
	feature_begin("refused child process");
	pid_t child = fork();
	if (child < 0)
		feature_setup_failed("fork");
	if (child == 0)
		_exit(7);
	siginfo_t info;
	if (waitid(P_PID, child, &info, WEXITED | WNOWAIT)) /* a zombie now, still unreaped */
		feature_setup_failed("waitid");

	feature_suspend_here();

	int status = 0;
	pid_t got;
	while ((got = waitpid(child, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	CHECK(got == child, "waitpid: %d (%s)", (int)got, strerror(errno));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x, not exit 7", status);
	return feature_done();
}
