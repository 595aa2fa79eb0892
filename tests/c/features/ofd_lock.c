/* An OFD write lock on bytes 0..99 of /tmp/feature-ofd-PID: it comes back
 * (another open file's F_OFD_GETLK reports it after the resume). */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	feature_begin("restored");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-ofd-%d", (int)getpid());
	struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	int fd = open(path, O_CREAT | O_RDWR, 0600);
	if (fd < 0 || fcntl(fd, F_OFD_SETLK, &lock))
		feature_setup_failed(path);

	feature_suspend_here();

	int other = open(path, O_RDWR);
	struct flock probe = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1 };
	CHECK(other >= 0 && fcntl(other, F_OFD_GETLK, &probe) == 0, "F_OFD_GETLK: %s",
	      strerror(errno));
	CHECK(probe.l_type == F_WRLCK && probe.l_start == 0 && probe.l_len == 100 &&
		      probe.l_pid == -1,
	      "a lock of type %d on %ld + %ld, pid %d", probe.l_type, (long)probe.l_start,
	      (long)probe.l_len, (int)probe.l_pid);
	close(other);
	unlink(path);
	return feature_done();
}
