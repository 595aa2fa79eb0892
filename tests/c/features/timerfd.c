/* A timerfd firing every 50 ms: it comes back with its interval, and a read
 * gives at least one expiration after the resume. */
#include "feature.h"

#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>

int main(void)
{
	feature_begin("restored");
	struct itimerspec every = { .it_interval = { 0, 50000000 }, .it_value = { 0, 50000000 } };
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &every, NULL))
		feature_setup_failed("timerfd");

	feature_suspend_here();

	struct itimerspec now;
	CHECK(timerfd_gettime(tfd, &now) == 0 && now.it_interval.tv_sec == 0 &&
		      now.it_interval.tv_nsec == 50000000,
	      "interval %ld.%09ld s", (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
	struct pollfd pfd = { .fd = tfd, .events = POLLIN };
	CHECK(poll(&pfd, 1, 5000) == 1, "no expiration within 1 s");
	uint64_t expirations = 0;
	CHECK(read(tfd, &expirations, sizeof expirations) == sizeof expirations && expirations >= 1,
	      "read %llu expirations (%s)", (unsigned long long)expirations, strerror(errno));
	return feature_done();
}
