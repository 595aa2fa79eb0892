/* Transparent huge pages disabled (PR_SET_THP_DISABLE): after the resume
 * PR_GET_THP_DISABLE gives 1 and /proc/self/status says THP_enabled: 0. */
#include "feature.h"

#include <sys/prctl.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		feature_setup_failed("PR_SET_THP_DISABLE");

	feature_suspend_here();

	int now = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	CHECK(now == 1, "PR_GET_THP_DISABLE %d", now);
	char line[128];
	int enabled = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		sscanf(line, "THP_enabled: %d", &enabled);
	if (f)
		fclose(f);
	CHECK(enabled == 0, "THP_enabled: %d", enabled);
	return feature_done();
}
