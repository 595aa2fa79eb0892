/* /dev/zero open O_RDONLY|O_NONBLOCK and /dev/null O_WRONLY|O_APPEND: after the
 * resume F_GETFL keeps those flags, and each device still works. */
#include "feature.h"

#include <fcntl.h>

#define MASK (O_ACCMODE | O_NONBLOCK | O_APPEND)

int main(void)
{
	feature_begin("restored");
	int zero = open("/dev/zero", O_RDONLY | O_NONBLOCK);
	int null = open("/dev/null", O_WRONLY | O_APPEND);
	if (zero < 0 || null < 0)
		feature_setup_failed("open");

	feature_suspend_here();

	int flags = fcntl(zero, F_GETFL);
	CHECK(flags != -1 && (flags & MASK) == (O_RDONLY | O_NONBLOCK), "/dev/zero's flags %#x",
	      flags);
	flags = fcntl(null, F_GETFL);
	CHECK(flags != -1 && (flags & MASK) == (O_WRONLY | O_APPEND), "/dev/null's flags %#x",
	      flags);
	char buf[16];
	memset(buf, 1, sizeof buf);
	CHECK(read(zero, buf, sizeof buf) == sizeof buf && !buf[0] && !buf[15],
	      "reading /dev/zero");
	CHECK(write(null, buf, sizeof buf) == sizeof buf, "writing /dev/null: %s", strerror(errno));
	return feature_done();
}
