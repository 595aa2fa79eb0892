/* A directory of 5 files open O_DIRECTORY, read 2 entries in (getdents64):
 * after the resume its offset is the same, and reading on gives the entries
 * a second fd read from that offset before the suspension. */
#include "feature.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* The names (each then '/') of the entries read from fd's offset on. */
static void rest_of(int fd, char *names, size_t size)
{
	char buf[4096];
	long n;
	names[0] = 0;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
		for (long at = 0; at < n; at += ((struct dirent64 *)(buf + at))->d_reclen)
			snprintf(names + strlen(names), size - strlen(names), "%s/",
				 ((struct dirent64 *)(buf + at))->d_name);
}

int main(void)
{
	feature_begin("restored");
	char dir[64], path[96];
	snprintf(dir, sizeof dir, "/tmp/feature-dir-%d", (int)getpid());
	if (mkdir(dir, 0700))
		feature_setup_failed("mkdir");
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/file-%d", dir, i);
		int f = open(path, O_CREAT | O_WRONLY, 0600);
		if (f < 0)
			feature_setup_failed("a file");
		close(f);
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY), again = open(dir, O_RDONLY | O_DIRECTORY);
	char buf[4096];
	long n = fd < 0 ? -1 : syscall(SYS_getdents64, fd, buf, sizeof buf);
	if (again < 0 || n <= 0)
		feature_setup_failed("getdents64");
	struct dirent64 *second = (struct dirent64 *)(buf + ((struct dirent64 *)buf)->d_reclen);
	off_t was = lseek(fd, second->d_off, SEEK_SET); /* two entries read */
	char rest[1024], rest_now[1024];
	lseek(again, was, SEEK_SET);
	rest_of(again, rest, sizeof rest);
	close(again);
	if (was < 0 || !rest[0])
		feature_setup_failed("the entries after the second");

	feature_suspend_here();

	off_t now = lseek(fd, 0, SEEK_CUR);
	CHECK(now == was, "offset %lld, was %lld", (long long)now, (long long)was);
	rest_of(fd, rest_now, sizeof rest_now);
	CHECK(!strcmp(rest_now, rest), "read on: %s, not %s", rest_now, rest);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "%s/file-%d", dir, i);
		unlink(path);
	}
	rmdir(dir);
	return feature_done();
}
