/* An epoll instance watching an eventfd registered under an fd number that
 * was closed since (the file lives on as a dup): a resume would register
 * by number, so it is refused by name; held, the watch stays. */
#include "feature.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

int main(void)
{
	feature_begin("refused which is closed or another file now");
	int ep = epoll_create1(0);
	int ev = eventfd(0, EFD_NONBLOCK);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0xabc };
	if (ep < 0 || ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0)
		feature_setup_failed("epoll on an eventfd");
	int kept = dup(ev);
	close(ev);

	feature_suspend_here();

	uint64_t one = 1;
	CHECK(write(kept, &one, 8) == 8, "write: %s", strerror(errno));
	struct epoll_event got = { 0 };
	CHECK(epoll_wait(ep, &got, 1, 5000) == 1 && got.data.u64 == 0xabc,
	      "the watch registered under the closed fd is gone");
	return feature_done();
}
