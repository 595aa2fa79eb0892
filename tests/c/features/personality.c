/* ADDR_NO_RANDOMIZE added to the personality: after the resume the personality
 * is the value set. */
#include "feature.h"

#include <sys/personality.h>

int main(void)
{
	feature_begin("restored");
	int was = personality(0xffffffff);
	if (was == -1 || personality(was | ADDR_NO_RANDOMIZE) == -1)
		feature_setup_failed("personality");
	int set = personality(0xffffffff);
	if (set != (was | ADDR_NO_RANDOMIZE))
		feature_setup_failed("personality reads back otherwise");

	feature_suspend_here();

	int now = personality(0xffffffff);
	CHECK(now == set, "personality %#x, set %#x", now, set);
	return feature_done();
}
