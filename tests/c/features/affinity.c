/* The main thread bound to CPU 0: after the resume its affinity mask is exactly
 * {0}, and it runs on CPU 0. */
#include "feature.h"

#include <sched.h>

int main(void)
{
	feature_begin("restored");
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof set, &set))
		feature_setup_failed("sched_setaffinity");

	feature_suspend_here();

	cpu_set_t now;
	CPU_ZERO(&now);
	CHECK(sched_getaffinity(0, sizeof now, &now) == 0, "%s", strerror(errno));
	CHECK(CPU_EQUAL(&now, &set), "%d CPUs, CPU 0 %s", CPU_COUNT(&now),
	      CPU_ISSET(0, &now) ? "in" : "not in");
	CHECK(sched_getcpu() == 0, "running on CPU %d", sched_getcpu());
	return feature_done();
}
