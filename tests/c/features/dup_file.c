/* Two fds of one open file (dup): after the resume they still share one
 * offset (a seek through one moves the other), not two opens. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	feature_begin("restored");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-dup-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "0123456789", 10) != 10)
		feature_setup_failed("a file of 10 bytes");
	int twin = dup(fd);
	if (twin < 0 || lseek(fd, 3, SEEK_SET) != 3)
		feature_setup_failed("dup");

	feature_suspend_here();

	CHECK(lseek(twin, 0, SEEK_CUR) == 3, "the twin is at %ld, not 3",
	      (long)lseek(twin, 0, SEEK_CUR));
	lseek(fd, 7, SEEK_SET);
	CHECK(lseek(twin, 0, SEEK_CUR) == 7, "a seek through one fd did not move the other");
	unlink(path);
	return feature_done();
}
