/* A timerfd every 50 ms left unread for 1 s: the expirations it missed
 * (about 20, counted only when asked) come back, not just one. */
#include "feature.h"

#include <stdint.h>
#include <sys/timerfd.h>

int main(void)
{
	feature_begin("restored");
	struct itimerspec every = { .it_interval = { 0, 50000000 }, .it_value = { 0, 50000000 } };
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &every, NULL))
		feature_setup_failed("timerfd");
	usleep(1000000);

	feature_suspend_here();

	uint64_t missed = 0;
	CHECK(read(tfd, &missed, 8) == 8 && missed >= 15, "%llu expirations, not about 20",
	      (unsigned long long)missed);
	return feature_done();
}
