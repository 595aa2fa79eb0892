/* A 4096-byte file open O_RDWR|O_APPEND at offset 1234 and O_RDONLY at 99:
 * after the resume the offsets, flags, inode and contents are as they were,
 * and a write through the O_APPEND one lands at the end. */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("restored");
	char path[64], sent[4096], got[4096];
	snprintf(path, sizeof path, "/tmp/feature-file-%d", (int)getpid());
	for (int i = 0; i < 4096; i++)
		sent[i] = (char)(i * 13 + 1);
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0 || write(fd, sent, sizeof sent) != sizeof sent || close(fd))
		feature_setup_failed(path);
	int rw = open(path, O_RDWR | O_APPEND), ro = open(path, O_RDONLY);
	struct stat was;
	if (rw < 0 || ro < 0 || lseek(rw, 1234, SEEK_SET) != 1234 ||
	    lseek(ro, 99, SEEK_SET) != 99 || fstat(rw, &was))
		feature_setup_failed("open, lseek");

	feature_suspend_here();

	CHECK(lseek(rw, 0, SEEK_CUR) == 1234, "O_RDWR offset %ld", (long)lseek(rw, 0, SEEK_CUR));
	CHECK(lseek(ro, 0, SEEK_CUR) == 99, "O_RDONLY offset %ld", (long)lseek(ro, 0, SEEK_CUR));
	int flags = fcntl(rw, F_GETFL);
	CHECK((flags & (O_ACCMODE | O_APPEND)) == (O_RDWR | O_APPEND), "flags %#x", flags);
	flags = fcntl(ro, F_GETFL);
	CHECK((flags & (O_ACCMODE | O_APPEND)) == O_RDONLY, "flags %#x", flags);
	struct stat st;
	CHECK(fstat(ro, &st) == 0 && st.st_ino == was.st_ino && st.st_dev == was.st_dev &&
		      st.st_size == 4096,
	      "inode %lu size %ld", (unsigned long)st.st_ino, (long)st.st_size);
	CHECK(pread(ro, got, sizeof got, 0) == sizeof got && !memcmp(got, sent, sizeof got),
	      "contents changed");
	CHECK(write(rw, "z", 1) == 1 && lseek(rw, 0, SEEK_CUR) == 4097,
	      "an append left the offset at %ld", (long)lseek(rw, 0, SEEK_CUR));
	CHECK(pread(ro, got, 1, 4096) == 1 && got[0] == 'z', "the append is not at the end");
	unlink(path);
	return feature_done();
}
