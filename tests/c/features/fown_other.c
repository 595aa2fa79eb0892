/* A file whose I/O signals go to another process (F_SETOWN to init, which
 * ignores them):
 * an image cannot make that process its owner again, so it is refused;
 * held, the owner stays. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	feature_begin("refused I/O signals go to process");
	int fds[2];
	if (pipe(fds) < 0)
		feature_setup_failed("pipe");
	pid_t parent = 1;
	if (fcntl(fds[0], F_SETOWN, parent) < 0)
		feature_setup_failed("F_SETOWN");

	feature_suspend_here();

	CHECK(fcntl(fds[0], F_GETOWN) == parent, "owner %d, not %d", fcntl(fds[0], F_GETOWN),
	      (int)parent);
	return feature_done();
}
