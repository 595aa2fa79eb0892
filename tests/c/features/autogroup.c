/* The nice value of its autogroup (/proc/self/autogroup; the process leads
 * its session, so the group is its own) comes back. */
#include "feature.h"

#include <fcntl.h>

static int group_nice(void)
{
	char buf[64] = { 0 };
	int fd = open("/proc/self/autogroup", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return -100;
	close(fd);
	char *nice = strstr(buf, "nice ");
	return nice ? atoi(nice + 5) : -100;
}

int main(void)
{
	feature_begin("restored");
	int fd = open("/proc/self/autogroup", O_WRONLY);
	if (fd < 0)
		feature_skip("no autogroups (CONFIG_SCHED_AUTOGROUP) on this kernel");
	int tries = 0;
	while (write(fd, "7", 1) != 1) {
		if (errno != EAGAIN || ++tries > 50)
			feature_setup_failed("writing /proc/self/autogroup");
		usleep(10000);
	}
	close(fd);
	CHECK(group_nice() == 7, "set: nice %d", group_nice());

	feature_suspend_here();

	CHECK(group_nice() == 7, "autogroup nice %d, not 7", group_nice());
	return feature_done();
}
