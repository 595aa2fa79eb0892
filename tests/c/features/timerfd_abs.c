/* Timerfds with what only a restore can get wrong: one on CLOCK_REALTIME
 * with an absolute deadline 30 s away (TFD_TIMER_ABSTIME and
 * TFD_TIMER_CANCEL_ON_SET), which keeps its deadline, not the time left;
 * and one that expired twice unread (its count of expirations). */
#include "feature.h"

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>

static int64_t ns(struct timespec t)
{
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void)
{
	feature_begin("restored");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec at = { .it_value = { now.tv_sec + 30, now.tv_nsec } };
	int abs = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	if (abs < 0 ||
	    timerfd_settime(abs, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &at, NULL))
		feature_setup_failed("an absolute timerfd");
	int64_t deadline = ns(at.it_value);
	struct itimerspec soon = { .it_interval = { 3600, 0 }, .it_value = { 0, 1000000 } };
	int twice = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (twice < 0 || timerfd_settime(twice, 0, &soon, NULL))
		feature_setup_failed("a timerfd");
	usleep(20000);
	/* Expired once; a second expiry is set by hand: 2 unread. */
	uint64_t two = 2;
	if (ioctl(twice, 0x40085400 /* TFD_IOC_SET_TICKS */, &two) < 0)
		feature_skip("no TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE) here");

	feature_suspend_here();

	struct itimerspec left;
	clock_gettime(CLOCK_REALTIME, &now);
	CHECK(timerfd_gettime(abs, &left) == 0, "timerfd_gettime: %s", strerror(errno));
	int64_t off = ns(now) + ns(left.it_value) - deadline;
	CHECK(off > -100000000 && off < 100000000, "the deadline moved by %lld ns", (long long)off);
	uint64_t ticks = 0;
	CHECK(read(twice, &ticks, 8) == 8 && ticks == 2, "%llu expirations unread, not 2",
	      (unsigned long long)ticks);
	return feature_done();
}
