/* An epoll A watching an epoll B watching an eventfd: after the resume,
 * nothing is ready until the eventfd is written; then A reports B, and B
 * reports the eventfd. */
#include "feature.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/* What ep reports now (its data), 0 if nothing, -1 on an error. */
static long ready(int ep)
{
	struct epoll_event ev;
	int n;
	while ((n = epoll_wait(ep, &ev, 1, 0)) < 0 && errno == EINTR)
		;
	return n < 0 ? -1 : n == 0 ? 0 : (long)ev.data.u64;
}

int main(void)
{
	feature_begin("restored");
	int a = epoll_create1(0), b = epoll_create1(0), efd = eventfd(0, EFD_NONBLOCK);
	struct epoll_event watch_efd = { .events = EPOLLIN, .data.u64 = 11 };
	struct epoll_event watch_b = { .events = EPOLLIN, .data.u64 = 22 };
	if (a < 0 || b < 0 || efd < 0 || epoll_ctl(b, EPOLL_CTL_ADD, efd, &watch_efd) ||
	    epoll_ctl(a, EPOLL_CTL_ADD, b, &watch_b))
		feature_setup_failed("epoll in epoll");

	feature_suspend_here();

	long got = ready(a);
	CHECK(got == 0, "A reports %ld before any write", got);
	uint64_t one = 1;
	if (write(efd, &one, sizeof one) != sizeof one)
		feature_setup_failed("writing the eventfd");
	CHECK((got = ready(a)) == 22, "A reports %ld, not B (22)", got);
	CHECK((got = ready(b)) == 11, "B reports %ld, not the eventfd (11)", got);
	return feature_done();
}
