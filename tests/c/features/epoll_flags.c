/* An epoll watching one eventfd EPOLLIN|EPOLLONESHOT, another EPOLLIN|EPOLLEXCLUSIVE:
 * after the resume the one-shot one reports once, then not until re-armed
 * (EPOLL_CTL_MOD); the exclusive one reports, and refuses EPOLL_CTL_MOD. */
#include "feature.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/* Which of the two (bit 1: one-shot, bit 2: exclusive) epoll reports now. */
static int ready(int ep)
{
	struct epoll_event ev[4];
	int n, which = 0;
	while ((n = epoll_wait(ep, ev, 4, 0)) < 0 && errno == EINTR)
		;
	for (int i = 0; i < n; i++)
		which |= (int)ev[i].data.u64;
	return n < 0 ? -1 : which;
}

int main(void)
{
	feature_begin("restored");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int oneshot = eventfd(0, EFD_NONBLOCK), exclusive = eventfd(0, EFD_NONBLOCK);
	struct epoll_event a = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 1 };
	struct epoll_event b = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = 2 };
	if (ep < 0 || oneshot < 0 || exclusive < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, oneshot, &a) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, exclusive, &b))
		feature_setup_failed("an epoll of two eventfds");

	feature_suspend_here();

	int which = ready(ep);
	CHECK(which == 0, "ready before any write: %d", which);
	uint64_t one = 1;
	if (write(oneshot, &one, sizeof one) != sizeof one ||
	    write(exclusive, &one, sizeof one) != sizeof one)
		feature_setup_failed("writing the eventfds");
	CHECK((which = ready(ep)) == 3, "both readable: reported %d, not 3", which);
	CHECK((which = ready(ep)) == 2, "again: reported %d, not 2 (one-shot lost)", which);
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, oneshot, &a) == 0, "re-arming: %s", strerror(errno));
	CHECK((which = ready(ep)) == 3, "re-armed: reported %d, not 3", which);
	struct epoll_event in = { .events = EPOLLIN, .data.u64 = 2 };
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, exclusive, &in) == -1 && errno == EINVAL,
	      "EPOLL_CTL_MOD of the exclusive one: %s (EPOLLEXCLUSIVE lost)", strerror(errno));
	return feature_done();
}
