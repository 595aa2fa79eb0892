/* The audit login uid (/proc/self/loginuid, set once by a login): it comes
 * back as it was, not as the resume command's. */
#include "feature.h"

#include <fcntl.h>

static long read_loginuid(void)
{
	char buf[32] = { 0 };
	int fd = open("/proc/self/loginuid", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

int main(void)
{
	feature_begin("restored");
	int fd = open("/proc/self/loginuid", O_WRONLY);
	if (fd < 0)
		feature_skip("no /proc/self/loginuid (a kernel without audit)");
	if (write(fd, "4242", 4) != 4)
		feature_setup_failed("writing /proc/self/loginuid");
	close(fd);
	CHECK(read_loginuid() == 4242, "set: %ld", read_loginuid());

	feature_suspend_here();

	CHECK(read_loginuid() == 4242, "login uid %ld, not 4242", read_loginuid());
	return feature_done();
}
