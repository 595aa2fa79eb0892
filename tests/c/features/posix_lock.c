/* A POSIX record (write) lock on bytes 0..99 of /tmp/feature-posix-PID: it
 * comes back (a child's F_GETLK sees us holding it after the resume). */
#include "feature.h"

#include <fcntl.h>
#include <sys/wait.h>

int main(void)
{
	feature_begin("restored");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-posix-%d", (int)getpid());
	struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	int fd = open(path, O_CREAT | O_RDWR, 0600);
	if (fd < 0 || fcntl(fd, F_SETLK, &lock))
		feature_setup_failed(path);

	feature_suspend_here();

	int p[2];
	if (pipe(p))
		feature_setup_failed("pipe");
	pid_t child = fork();
	if (child < 0)
		feature_setup_failed("fork");
	if (child == 0) {
		struct flock probe = {
			.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1
		};
		int other = open(path, O_RDWR);
		if (other < 0 || fcntl(other, F_GETLK, &probe))
			probe.l_type = -1;
		_exit(write(p[1], &probe, sizeof probe) == sizeof probe ? 0 : 1);
	}
	struct flock seen = { .l_type = -2 };
	CHECK(read(p[0], &seen, sizeof seen) == sizeof seen, "nothing from the child");
	waitpid(child, NULL, 0);
	CHECK(seen.l_type == F_WRLCK && seen.l_start == 0 && seen.l_len == 100 &&
		      seen.l_pid == getpid(),
	      "the child sees a lock of type %d on %ld + %ld, pid %d", seen.l_type,
	      (long)seen.l_start, (long)seen.l_len, (int)seen.l_pid);
	unlink(path);
	return feature_done();
}
