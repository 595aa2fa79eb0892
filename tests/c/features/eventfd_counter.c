/* A plain (not semaphore) eventfd at 12345: after the resume one read gives
 * 12345, and the next finds it at 0 (EAGAIN). */
#include "feature.h"

#include <stdint.h>
#include <sys/eventfd.h>

int main(void)
{
	feature_begin("restored");
	int efd = eventfd(12345, EFD_NONBLOCK);
	if (efd < 0)
		feature_setup_failed("eventfd");

	feature_suspend_here();

	uint64_t got = 0;
	ssize_t n = read(efd, &got, sizeof got);
	CHECK(n == sizeof got && got == 12345, "read: %zd, %llu (%s)", n,
	      (unsigned long long)got, strerror(errno));
	CHECK(read(efd, &got, sizeof got) == -1 && errno == EAGAIN, "a second read: %llu (%s)",
	      (unsigned long long)got, strerror(errno));
	return feature_done();
}
