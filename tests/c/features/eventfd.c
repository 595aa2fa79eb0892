/* An eventfd at 5 in semaphore mode, non-blocking: after the resume five reads
 * give 1 each, the sixth fails with EAGAIN, and O_NONBLOCK is still set. */
#include "feature.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>

int main(void)
{
	feature_begin("restored");
	int efd = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);
	if (efd < 0)
		feature_setup_failed("eventfd");

	feature_suspend_here();

	int flags = fcntl(efd, F_GETFL);
	CHECK(flags != -1 && (flags & (O_ACCMODE | O_NONBLOCK)) == (O_RDWR | O_NONBLOCK),
	      "flags %#x", flags);
	for (int i = 1; i <= 5; i++) {
		uint64_t got = 0;
		ssize_t n = read(efd, &got, sizeof got);
		CHECK(n == sizeof got && got == 1, "read %d: %zd, %llu (%s)", i, n,
		      (unsigned long long)got, strerror(errno));
	}
	uint64_t got;
	CHECK(read(efd, &got, sizeof got) == -1 && errno == EAGAIN, "a sixth read: %s",
	      strerror(errno));
	return feature_done();
}
