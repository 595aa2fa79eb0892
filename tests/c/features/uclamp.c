/* A thread's utilization clamps (sched_setattr with SCHED_FLAG_UTIL_CLAMP):
 * they come back as set, on a kernel that has them. */
#include "feature.h"

#include <stdint.h>
#include <sys/syscall.h>

struct attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

int main(void)
{
	feature_begin("restored");
	if (access("/proc/sys/kernel/sched_util_clamp_max", F_OK) != 0)
		feature_skip("no utilization clamping (CONFIG_UCLAMP_TASK) on this kernel");
	struct attr set = { .size = sizeof set, .flags = 0x08 | 0x10 | 0x20 | 0x40,
			    .util_min = 128, .util_max = 512 };
	if (syscall(SYS_sched_setattr, 0, &set, 0) < 0)
		feature_setup_failed("sched_setattr with clamps");

	feature_suspend_here();

	struct attr got = { 0 };
	CHECK(syscall(SYS_sched_getattr, 0, &got, sizeof got, 0) == 0, "sched_getattr: %s",
	      strerror(errno));
	CHECK(got.util_min == 128 && got.util_max == 512, "clamps %u-%u, not 128-512",
	      got.util_min, got.util_max);
	return feature_done();
}
