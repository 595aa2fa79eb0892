/* The main thread under SCHED_BATCH: after the resume its policy is
 * SCHED_BATCH (no reset-on-fork). */
#include "feature.h"

#include <sched.h>

int main(void)
{
	feature_begin("restored");
	struct sched_param param = { .sched_priority = 0 };
	if (sched_setscheduler(0, SCHED_BATCH, &param))
		feature_setup_failed("sched_setscheduler");

	feature_suspend_here();

	int now = sched_getscheduler(0);
	CHECK(now == SCHED_BATCH, "policy %#x", now);
	CHECK(sched_getparam(0, &param) == 0 && param.sched_priority == 0, "priority %d",
	      param.sched_priority);
	return feature_done();
}
