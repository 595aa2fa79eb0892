/* A process in another's session, leading only its process group: a
 * resume from the image cannot put it back in that session, so a suspend
 * that kills refuses it (unless --new-session); held, it stays in it.
 * (The harness starts every feature as a session leader: the one under
 * test is a child, in its parent's session; the parent only waits.) */
#include "feature.h"

int main(void)
{
	setsid();
	int code;
	if (!feature_in_child(&code))
		return code;
	pid_t sid = getsid(0);
	printf("expect refused session %d\n", (int)sid);
	fflush(stdout);
	if (sid == getpid() || setpgid(0, 0) < 0)
		feature_setup_failed("setpgid in the parent's session");

	feature_suspend_here();

	CHECK(getsid(0) == sid, "session %d, not %d", (int)getsid(0), (int)sid);
	CHECK(getpgrp() == getpid(), "process group %d", (int)getpgrp());
	return feature_done();
}
