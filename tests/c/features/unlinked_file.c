/* Files only its fds reach: one deleted after it was written (mode 0640,
 * opened twice: two opens of one file, each with its own offset), and one
 * made with O_TMPFILE. After the resume each has its bytes, its offset and
 * its mode, is still deleted (no name reaches it), and the two opens are
 * one file again (a write through one is read through the other). */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

#define SIZE (100 * 1024)

static unsigned char expected(int i)
{
	return (unsigned char)(i * 29 + i / 4096);
}

int main(void)
{
	feature_begin("restored");
	static unsigned char buf[SIZE];
	for (int i = 0; i < SIZE; i++)
		buf[i] = expected(i);
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-unlinked-%d", (int)getpid());
	int a = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (a < 0 || write(a, buf, SIZE) != SIZE || fchmod(a, 0640))
		feature_setup_failed(path);
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", a);
	int b = open(self, O_RDONLY);
	int t = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (b < 0 || t < 0 || write(t, "tmpfile", 7) != 7)
		feature_setup_failed("second open or O_TMPFILE");
	unlink(path);
	lseek(a, 5000, SEEK_SET);
	lseek(b, 777, SEEK_SET);

	feature_suspend_here();

	static unsigned char got[SIZE];
	CHECK(pread(a, got, SIZE, 0) == SIZE && !memcmp(got, buf, SIZE), "its bytes differ");
	CHECK(lseek(a, 0, SEEK_CUR) == 5000, "offset %ld", (long)lseek(a, 0, SEEK_CUR));
	CHECK(lseek(b, 0, SEEK_CUR) == 777, "second offset %ld", (long)lseek(b, 0, SEEK_CUR));
	struct stat sa, sb;
	CHECK(fstat(a, &sa) == 0 && fstat(b, &sb) == 0, "fstat");
	CHECK(sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev, "the two opens are two files");
	CHECK(sa.st_nlink == 0, "a name reaches it (%lu links)", (unsigned long)sa.st_nlink);
	CHECK((sa.st_mode & 07777) == 0640, "mode %o", sa.st_mode & 07777);
	CHECK(sa.st_size == SIZE, "size %ld", (long)sa.st_size);
	CHECK((fcntl(b, F_GETFL) & O_ACCMODE) == O_RDONLY, "the second open is not read-only");
	CHECK(access(path, F_OK) != 0, "%s exists again", path);
	CHECK(pwrite(a, "Z", 1, 10) == 1, "pwrite");
	char z = 0;
	CHECK(pread(b, &z, 1, 10) == 1 && z == 'Z', "a write through one open is not read through the other");
	char tbuf[8] = "";
	CHECK(pread(t, tbuf, 7, 0) == 7 && !memcmp(tbuf, "tmpfile", 7), "the O_TMPFILE file lost its bytes");
	struct stat st;
	CHECK(fstat(t, &st) == 0 && st.st_nlink == 0, "the O_TMPFILE file has a name");
	return feature_done();
}
