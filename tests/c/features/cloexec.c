/* /dev/null open twice, once O_CLOEXEC: after the resume F_GETFD says
 * FD_CLOEXEC on exactly that one. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	feature_begin("restored");
	int plain = open("/dev/null", O_RDONLY), cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (plain < 0 || cloexec < 0)
		feature_setup_failed("open /dev/null");

	feature_suspend_here();

	int flags = fcntl(plain, F_GETFD);
	CHECK(flags == 0, "fd %d's fd flags %#x", plain, flags);
	flags = fcntl(cloexec, F_GETFD);
	CHECK(flags == FD_CLOEXEC, "fd %d's fd flags %#x", cloexec, flags);
	return feature_done();
}
