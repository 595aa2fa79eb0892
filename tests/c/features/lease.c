/* A read lease (F_SETLEASE F_RDLCK) on a file of ours in /tmp: an image
 * cannot hold it, so a suspend that kills refuses it; held, F_GETLEASE still
 * says F_RDLCK. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	feature_begin("refused lease");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-lease-%d", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "leased", 6) != 6 || close(fd))
		feature_setup_failed("a file");
	fd = open(path, O_RDONLY);
	if (fd < 0 || fcntl(fd, F_SETLEASE, F_RDLCK))
		feature_setup_failed("F_SETLEASE F_RDLCK");

	feature_suspend_here();

	int lease = fcntl(fd, F_GETLEASE);
	CHECK(lease == F_RDLCK, "F_GETLEASE %d, not F_RDLCK (%s)", lease, strerror(errno));
	fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
	unlink(path);
	return feature_done();
}
