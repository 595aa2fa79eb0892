/* An epoll watching an eventfd (EPOLLIN, data 0xfeed) and a pipe's read end
 * (EPOLLIN|EPOLLET, data 0xbeef): after the resume each reports, with its own
 * data, once written to; the eventfd level-triggered, the pipe edge-triggered. */
#include "feature.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/* What one epoll_wait reports: the data of the one event, 0 if none, or ~0 if more. */
static uint64_t waited(int ep, int timeout_ms)
{
	struct epoll_event ev[2];
	int n = epoll_wait(ep, ev, 2, timeout_ms);
	if (n == 1 && ev[0].events == EPOLLIN)
		return ev[0].data.u64;
	return n == 0 ? 0 : ~0ULL;
}

int main(void)
{
	feature_begin("restored");
	int ep = epoll_create1(EPOLL_CLOEXEC), efd = eventfd(0, EFD_NONBLOCK), p[2];
	if (ep < 0 || efd < 0 || pipe(p))
		feature_setup_failed("epoll, eventfd, pipe");
	struct epoll_event on_efd = { .events = EPOLLIN, .data.u64 = 0xfeed };
	struct epoll_event on_pipe = { .events = EPOLLIN | EPOLLET, .data.u64 = 0xbeef };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &on_efd) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &on_pipe))
		feature_setup_failed("epoll_ctl");

	feature_suspend_here();

	unsigned long long got, one = 1;
	CHECK((got = waited(ep, 0)) == 0, "nothing written yet, reported %#llx", got);
	CHECK(write(efd, &one, sizeof one) == sizeof one, "write eventfd: %s", strerror(errno));
	CHECK((got = waited(ep, 5000)) == 0xfeed, "eventfd reported %#llx", got);
	CHECK((got = waited(ep, 0)) == 0xfeed, "eventfd (level) again %#llx", got);
	CHECK(read(efd, &one, sizeof one) == sizeof one, "read eventfd: %s", strerror(errno));
	CHECK((got = waited(ep, 0)) == 0, "eventfd read, reported %#llx", got);
	CHECK(write(p[1], "x", 1) == 1, "write pipe: %s", strerror(errno));
	CHECK((got = waited(ep, 5000)) == 0xbeef, "pipe reported %#llx", got);
	CHECK((got = waited(ep, 0)) == 0, "pipe (edge) again %#llx", got);
	return feature_done();
}
