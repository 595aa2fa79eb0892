/* An eventfd shared with another process (its parent): one counter for
 * both. A resume would give the process a counter of its own, so a suspend
 * that kills refuses it; held, it stays shared. */
#include "feature.h"

#include <stdint.h>
#include <sys/eventfd.h>

int main(void)
{
	setsid();
	int fd = eventfd(0, EFD_NONBLOCK);
	if (fd < 0)
		feature_setup_failed("eventfd");
	int code;
	if (!feature_in_child(&code)) {
		uint64_t got = 0;
		int seen = read(fd, &got, 8) == 8 && got == 5;
		if (!seen)
			printf("FAIL the parent did not see the child's 5\n");
		return seen ? code : 1;
	}
	setsid(); /* its own session: only the shared file is refused */
	printf("expect refused its open file is shared with pid\n");
	fflush(stdout);

	feature_suspend_here();

	uint64_t five = 5;
	CHECK(write(fd, &five, 8) == 8, "write: %s", strerror(errno));
	return feature_done();
}
