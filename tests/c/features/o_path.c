/* /tmp opened O_PATH (a location, not a file to read): after the resume the fd
 * is still O_PATH, fstat gives the same directory, and a read is refused. */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("restored");
	int fd = open("/tmp", O_PATH);
	struct stat was;
	if (fd < 0 || fstat(fd, &was))
		feature_setup_failed("open /tmp O_PATH");

	feature_suspend_here();

	int flags = fcntl(fd, F_GETFL);
	CHECK(flags != -1 && (flags & O_PATH), "flags %#x (%s)", flags, strerror(errno));
	struct stat now;
	CHECK(fstat(fd, &now) == 0, "fstat: %s", strerror(errno));
	CHECK(now.st_dev == was.st_dev && now.st_ino == was.st_ino && S_ISDIR(now.st_mode),
	      "another file: inode %lu, was %lu", (unsigned long)now.st_ino,
	      (unsigned long)was.st_ino);
	char c;
	CHECK(read(fd, &c, 1) == -1 && errno == EBADF, "a read: %s", strerror(errno));
	return feature_done();
}
