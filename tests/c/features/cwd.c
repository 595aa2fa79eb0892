/* The working directory is /tmp/feature-cwd-PID: after the resume getcwd gives
 * it and "." is the same directory (same inode). */
#include "feature.h"

#include <sys/stat.h>

int main(void)
{
	feature_begin("restored");
	char dir[64];
	snprintf(dir, sizeof dir, "/tmp/feature-cwd-%d", (int)getpid());
	struct stat was;
	if (mkdir(dir, 0700) || chdir(dir) || stat(".", &was))
		feature_setup_failed(dir);

	feature_suspend_here();

	char now[4096];
	struct stat st;
	CHECK(getcwd(now, sizeof now) && !strcmp(now, dir), "cwd %s", now);
	CHECK(stat(".", &st) == 0 && st.st_ino == was.st_ino && st.st_dev == was.st_dev,
	      "\".\" is inode %lu, was %lu", (unsigned long)st.st_ino, (unsigned long)was.st_ino);
	if (chdir("/") || rmdir(dir))
		printf("cannot remove %s: %s\n", dir, strerror(errno));
	return feature_done();
}
