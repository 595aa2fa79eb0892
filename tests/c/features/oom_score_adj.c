/* oom_score_adj set to 500: after the resume /proc/self/oom_score_adj reads 500. */
#include "feature.h"

#include <fcntl.h>

static int read_adj(void)
{
	char text[16] = "";
	int fd = open("/proc/self/oom_score_adj", O_RDONLY);
	if (fd < 0 || read(fd, text, sizeof text - 1) <= 0)
		text[0] = 'x';
	if (fd >= 0)
		close(fd);
	return text[0] == 'x' ? -9999 : atoi(text);
}

int main(void)
{
	feature_begin("restored");
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "500", 3) != 3)
		feature_setup_failed("writing /proc/self/oom_score_adj");
	close(fd);
	int was = read_adj();
	if (was != 500)
		feature_setup_failed("oom_score_adj reads back otherwise");

	feature_suspend_here();

	int now = read_adj();
	CHECK(now == was, "oom_score_adj %d", now);
	return feature_done();
}
