/* A FIFO in /tmp opened O_RDWR (both ends in one fd), 10 bytes written and
 * unread: an image cannot hold a FIFO yet (refused, named); held, the 10
 * bytes read back, then nothing. */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("refused /tmp/feature-fifo");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-fifo-%d", (int)getpid());
	if (mkfifo(path, 0600))
		feature_setup_failed("mkfifo");
	int fd = open(path, O_RDWR | O_NONBLOCK);
	if (fd < 0 || write(fd, "0123456789", 10) != 10)
		feature_setup_failed("a FIFO with 10 bytes in it");

	feature_suspend_here();

	char got[16] = { 0 };
	ssize_t n = read(fd, got, sizeof got);
	CHECK(n == 10 && !memcmp(got, "0123456789", 10), "read %zd bytes: %.16s (%s)", n, got,
	      strerror(errno));
	CHECK(read(fd, got, sizeof got) == -1 && errno == EAGAIN, "more to read: %s",
	      strerror(errno));
	unlink(path);
	return feature_done();
}
