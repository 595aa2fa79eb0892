/* A process in a UTS namespace of its own (unshare, its own host name): a
 * resume would put it in the resume command's, so a suspend that kills
 * refuses it by name; held, it keeps its namespace and host name. */
#include "feature.h"

#include <sched.h>

int main(void)
{
	feature_begin("refused UTS (host name) namespace");
	if (unshare(CLONE_NEWUTS) < 0)
		feature_setup_failed("unshare(CLONE_NEWUTS)");
	if (sethostname("feature-uts", 11) < 0)
		feature_setup_failed("sethostname");

	feature_suspend_here();

	char name[64] = { 0 };
	CHECK(gethostname(name, sizeof name - 1) == 0 && !strcmp(name, "feature-uts"),
	      "host name %s", name);
	return feature_done();
}
