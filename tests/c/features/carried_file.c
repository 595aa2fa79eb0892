/* A file the process writes, open O_RDWR|O_APPEND at offset 1234 and
 * O_RDONLY at 99, mode 0640, with an mtime set to the nanosecond: the file
 * `suspend --carry` carries in the image (it exists only on the machine a
 * process leaves, as a log does). After the resume the offsets, flags,
 * size, mode, mtime and contents are as they were (not the inode: moved,
 * it is another file, made by the resume), and a write through the
 * O_APPEND one lands at the end. Resumed where the file is still there, it
 * is that file. */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("restored");
	char path[64], sent[5000], got[5000];
	snprintf(path, sizeof path, "/tmp/feature-carried-%d", (int)getpid());
	for (int i = 0; i < (int)sizeof sent; i++)
		sent[i] = (char)(i * 7 + 3);
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	if (fd < 0 || write(fd, sent, sizeof sent) != sizeof sent || close(fd))
		feature_setup_failed(path);
	struct timespec times[2] = { { 1600000000, 123456789 }, { 1600000000, 987654321 } };
	if (chmod(path, 0640) || utimensat(AT_FDCWD, path, times, 0))
		feature_setup_failed("chmod, utimensat");
	int rw = open(path, O_RDWR | O_APPEND), ro = open(path, O_RDONLY);
	if (rw < 0 || ro < 0 || lseek(rw, 1234, SEEK_SET) != 1234 ||
	    lseek(ro, 99, SEEK_SET) != 99)
		feature_setup_failed("open, lseek");

	feature_suspend_here();

	CHECK(lseek(rw, 0, SEEK_CUR) == 1234, "O_RDWR offset %ld", (long)lseek(rw, 0, SEEK_CUR));
	CHECK(lseek(ro, 0, SEEK_CUR) == 99, "O_RDONLY offset %ld", (long)lseek(ro, 0, SEEK_CUR));
	int flags = fcntl(rw, F_GETFL);
	CHECK((flags & (O_ACCMODE | O_APPEND)) == (O_RDWR | O_APPEND), "flags %#x", flags);
	flags = fcntl(ro, F_GETFL);
	CHECK((flags & (O_ACCMODE | O_APPEND)) == O_RDONLY, "flags %#x", flags);
	struct stat st, named;
	CHECK(fstat(ro, &st) == 0 && st.st_size == (off_t)sizeof sent, "size %ld",
	      (long)st.st_size);
	CHECK((st.st_mode & 07777) == 0640, "mode %o", (unsigned)(st.st_mode & 07777));
	CHECK(st.st_mtim.tv_sec == 1600000000 && st.st_mtim.tv_nsec == 987654321,
	      "mtime %ld.%09ld", (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	CHECK(stat(path, &named) == 0 && named.st_ino == st.st_ino && named.st_dev == st.st_dev,
	      "%s is not the file open", path);
	CHECK(fstat(rw, &named) == 0 && named.st_ino == st.st_ino, "two files open, not one");
	CHECK(pread(ro, got, sizeof got, 0) == sizeof got && !memcmp(got, sent, sizeof got),
	      "contents changed");
	CHECK(write(rw, "z", 1) == 1 && lseek(rw, 0, SEEK_CUR) == (off_t)sizeof sent + 1,
	      "an append left the offset at %ld", (long)lseek(rw, 0, SEEK_CUR));
	CHECK(pread(ro, got, 1, sizeof sent) == 1 && got[0] == 'z', "the append is not at the end");
	unlink(path);
	return feature_done();
}
