/* The main thread's nice value set to 5: after the resume getpriority gives 5. */
#include "feature.h"

#include <sys/resource.h>

int main(void)
{
	feature_begin("restored");
	if (setpriority(PRIO_PROCESS, 0, 5))
		feature_setup_failed("setpriority");

	feature_suspend_here();

	errno = 0;
	int now = getpriority(PRIO_PROCESS, 0);
	CHECK(errno == 0 && now == 5, "nice %d (%s)", now, strerror(errno));
	return feature_done();
}
