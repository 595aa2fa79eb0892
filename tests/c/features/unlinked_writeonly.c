/* A deleted file it has open only for writing: its bytes are not its to
 * read, so an image cannot carry them: refused by name before the freeze;
 * held, a write through it goes on at its offset. */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("refused only has open for writing");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-unlinked-wo-%d", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "first", 5) != 5)
		feature_setup_failed(path);
	unlink(path);

	feature_suspend_here();

	CHECK(lseek(fd, 0, SEEK_CUR) == 5, "offset %ld", (long)lseek(fd, 0, SEEK_CUR));
	CHECK(write(fd, "+more", 5) == 5, "write");
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == 10, "size %ld", (long)st.st_size);
	return feature_done();
}
