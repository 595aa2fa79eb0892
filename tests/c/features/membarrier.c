/* membarrier registrations: a process registered for private expedited
 * barriers can still issue them (unregistered, they fail with EPERM). */
#include "feature.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>

static int membarrier(int cmd)
{
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

int main(void)
{
	feature_begin("restored");
	int supported = membarrier(MEMBARRIER_CMD_QUERY);
	if (supported < 0 || !(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		feature_skip("no private expedited membarrier on this kernel");
	CHECK(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) < 0 && errno == EPERM,
	      "a barrier before registering did not fail with EPERM");
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) < 0)
		feature_setup_failed("MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED");
	int before = membarrier(1 << 9); /* MEMBARRIER_CMD_GET_REGISTRATIONS, 6.3 */

	feature_suspend_here();

	CHECK(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0,
	      "a private expedited barrier fails: %s", strerror(errno));
	if (before >= 0) {
		int after = membarrier(1 << 9);
		CHECK(after == before, "registrations %#x, were %#x", after, before);
	}
	return feature_done();
}
