/* A process that leads its session and process group leads them again. */
#include "feature.h"

int main(void)
{
	feature_begin("restored");
	pid_t me = getpid();
	if (getsid(0) != me)
		feature_setup_failed("setsid");

	feature_suspend_here();

	CHECK(getsid(0) == me, "session %d, not its own (%d)", (int)getsid(0), (int)me);
	CHECK(getpgrp() == me, "process group %d, not its own (%d)", (int)getpgrp(), (int)me);
	return feature_done();
}
