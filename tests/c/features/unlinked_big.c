/* A deleted file of 40 MiB, more than an image carries by default (16 MiB):
 * refused by name before the freeze; held, it keeps its bytes. */
#include "feature.h"

#include <fcntl.h>

#define SIZE (40 << 20)

int main(void)
{
	feature_begin("refused --unlinked-max");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-unlinked-big-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SIZE) || pwrite(fd, "end", 3, SIZE - 3) != 3)
		feature_setup_failed(path);
	unlink(path);

	feature_suspend_here();

	char end[4] = "";
	CHECK(pread(fd, end, 3, SIZE - 3) == 3 && !memcmp(end, "end", 3), "its bytes differ");
	return feature_done();
}
