/* An open file shared with another process (its parent, which opened it
 * and forked): one offset for both. A resume would give the process a file
 * of its own, so a suspend that kills refuses it; held, it stays shared. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	setsid();
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-shared-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "0123456789", 10) != 10 || lseek(fd, 4, SEEK_SET) != 4)
		feature_setup_failed("a file of 10 bytes");
	int code;
	if (!feature_in_child(&code)) {
		/* The parent keeps the file open, and checks the shared offset. */
		int moved = lseek(fd, 0, SEEK_CUR) == 8;
		unlink(path);
		if (!moved)
			printf("FAIL the parent's offset did not move with the child's\n");
		return moved ? code : 1;
	}
	setsid(); /* its own session: only the shared file is refused */
	printf("expect refused its open file is shared with pid\n");
	fflush(stdout);

	feature_suspend_here();

	CHECK(lseek(fd, 0, SEEK_CUR) == 4, "offset %ld, not 4", (long)lseek(fd, 0, SEEK_CUR));
	lseek(fd, 8, SEEK_SET);
	return feature_done();
}
