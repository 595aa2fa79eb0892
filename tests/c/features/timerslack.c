/* The main thread's timer slack set to 123456 ns: after the resume
 * PR_GET_TIMERSLACK gives 123456. */
#include "feature.h"

#include <sys/prctl.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(PR_SET_TIMERSLACK, 123456UL, 0, 0, 0))
		feature_setup_failed("PR_SET_TIMERSLACK");

	feature_suspend_here();

	int now = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	CHECK(now == 123456, "timer slack %d ns", now);
	return feature_done();
}
