/* no_new_privs set: after the resume PR_GET_NO_NEW_PRIVS gives 1 (and
 * /proc/self/status says NoNewPrivs: 1). */
#include "feature.h"

#include <sys/prctl.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		feature_setup_failed("PR_SET_NO_NEW_PRIVS");

	feature_suspend_here();

	int now = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	CHECK(now == 1, "PR_GET_NO_NEW_PRIVS %d", now);
	char line[128];
	int shown = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		sscanf(line, "NoNewPrivs: %d", &shown);
	if (f)
		fclose(f);
	CHECK(shown == 1, "NoNewPrivs: %d", shown);
	return feature_done();
}
