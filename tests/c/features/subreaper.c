/* A child subreaper: after the resume PR_GET_CHILD_SUBREAPER gives 1, and an
 * orphaned grandchild is reparented to us, not to init. */
#include "feature.h"

#include <sys/prctl.h>
#include <sys/wait.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		feature_setup_failed("PR_SET_CHILD_SUBREAPER");

	feature_suspend_here();

	int on = -1;
	CHECK(prctl(PR_GET_CHILD_SUBREAPER, &on) == 0 && on == 1, "subreaper %d", on);
	pid_t child = fork();
	if (child < 0)
		feature_setup_failed("fork");
	if (child == 0) {
		/* The grandchild outlives its parent (or is its zombie). */
		if (fork() == 0) {
			struct timespec nap = { 0, 50000000 };
			nanosleep(&nap, NULL);
		}
		_exit(0);
	}
	waitpid(child, NULL, 0);
	pid_t orphan = waitpid(-1, NULL, 0);
	CHECK(orphan > 0 && orphan != child, "the grandchild was not reparented to us: %s",
	      strerror(errno));
	return feature_done();
}
