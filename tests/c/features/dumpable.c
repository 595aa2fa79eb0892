/* PR_SET_DUMPABLE 0: the process stays undumpable (its /proc files are
 * root's, no core dump), not reset by the resume. */
#include "feature.h"

#include <sys/prctl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(PR_SET_DUMPABLE, 0) < 0)
		feature_setup_failed("PR_SET_DUMPABLE 0");

	feature_suspend_here();

	CHECK(prctl(PR_GET_DUMPABLE) == 0, "dumpable %d", prctl(PR_GET_DUMPABLE));
	return feature_done();
}
