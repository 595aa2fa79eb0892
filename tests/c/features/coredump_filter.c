/* The core dump filter (/proc/self/coredump_filter) comes back as set. */
#include "feature.h"

#include <fcntl.h>

static unsigned long read_filter(void)
{
	char buf[32] = { 0 };
	int fd = open("/proc/self/coredump_filter", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return 0;
	close(fd);
	return strtoul(buf, NULL, 16);
}

int main(void)
{
	feature_begin("restored");
	int fd = open("/proc/self/coredump_filter", O_WRONLY);
	if (fd < 0)
		feature_skip("no /proc/self/coredump_filter");
	if (write(fd, "0x7d", 4) != 4)
		feature_setup_failed("writing coredump_filter");
	close(fd);

	feature_suspend_here();

	CHECK(read_filter() == 0x7d, "coredump_filter %#lx, not 0x7d", read_filter());
	return feature_done();
}
