/* The name (comm) "feat-comm": after the resume PR_GET_NAME and /proc/self/comm
 * give it. */
#include "feature.h"

#include <sys/prctl.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(PR_SET_NAME, "feat-comm"))
		feature_setup_failed("PR_SET_NAME");

	feature_suspend_here();

	char name[17] = "";
	CHECK(prctl(PR_GET_NAME, name) == 0 && !strcmp(name, "feat-comm"), "name \"%s\"", name);
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	CHECK(f && fgets(comm, sizeof comm, f) && !strcmp(comm, "feat-comm\n"),
	      "/proc/self/comm \"%s\"", comm);
	if (f)
		fclose(f);
	return feature_done();
}
