/* An exclusive flock on /tmp/feature-flock-PID: it comes back (another open
 * file cannot take it after the resume). */
#include "feature.h"

#include <fcntl.h>
#include <sys/file.h>

int main(void)
{
	feature_begin("restored");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-flock-%d", (int)getpid());
	int fd = open(path, O_CREAT | O_RDWR, 0600);
	if (fd < 0 || flock(fd, LOCK_EX))
		feature_setup_failed(path);

	feature_suspend_here();

	int other = open(path, O_RDWR);
	CHECK(other >= 0, "open again: %s", strerror(errno));
	int rc = flock(other, LOCK_EX | LOCK_NB);
	CHECK(rc == -1 && errno == EWOULDBLOCK, "another open file: %s",
	      rc == 0 ? "took the lock" : strerror(errno));
	close(other);
	unlink(path);
	return feature_done();
}
