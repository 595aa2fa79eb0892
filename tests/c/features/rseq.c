/* glibc's rseq registration of the main thread (glibc 2.35+): after the
 * resume the kernel still updates its area: cpu_id is a valid CPU, and moves
 * to another CPU this thread pins itself to. */
#include "feature.h"

#include <sched.h>
#include <sys/rseq.h>

static volatile struct rseq *area(void)
{
	return (volatile struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

int main(void)
{
	feature_begin("restored");
	if (__rseq_size == 0)
		feature_skip("glibc did not register rseq (disabled, or the kernel has none)");
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof allowed, &allowed))
		feature_setup_failed("sched_getaffinity");
	if ((int)area()->cpu_id != sched_getcpu())
		feature_setup_failed("rseq's cpu_id is not this CPU");

	feature_suspend_here();

	int now = (int)area()->cpu_id;
	CHECK(now >= 0 && CPU_ISSET(now, &allowed), "cpu_id %d", now);
	/* Pinned to another CPU (the first allowed but this one), cpu_id follows. */
	int target = now;
	for (int cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--)
		if (CPU_ISSET(cpu, &allowed) && cpu != now)
			target = cpu;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(target, &one);
	CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "pinning to CPU %d: %s", target,
	      strerror(errno));
	int moved = -1;
	for (int i = 0; i < 500 && (moved = (int)area()->cpu_id) != target; i++) {
		sched_yield();
		usleep(10000);
	}
	CHECK(moved == target, "pinned to CPU %d (from %d), rseq's cpu_id says %d", target, now,
	      moved);
	CHECK((int)area()->cpu_id_start == target, "cpu_id_start %d, not %d",
	      (int)area()->cpu_id_start, target);
	sched_setaffinity(0, sizeof allowed, &allowed);
	return feature_done();
}
