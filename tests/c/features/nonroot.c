/* A root process that drops to uid and gid 2001 (groups {2001}), keeping open
 * O_RDWR a file of uid 2001 at offset 5: after the resume the ids and groups
 * are exactly those, and the file is still open, read-write, at its offset. */
#include "feature.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>

#define ID 2001

int main(void)
{
	feature_begin("restored");
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-nonroot-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || fchown(fd, ID, ID) || write(fd, "0123456789", 10) != 10 ||
	    lseek(fd, 5, SEEK_SET) != 5)
		feature_setup_failed("a file of uid 2001");
	gid_t group = ID;
	if (setgroups(1, &group) || setresgid(ID, ID, ID) || setresuid(ID, ID, ID))
		feature_setup_failed("dropping to 2001");
	/* Dumpable, as a process started as 2001 is (a drop leaves it at 0). */
	if (prctl(PR_SET_DUMPABLE, 1))
		feature_setup_failed("PR_SET_DUMPABLE");

	feature_suspend_here();

	uid_t r, e, s;
	gid_t rg, eg, sg, groups[8];
	CHECK(getresuid(&r, &e, &s) == 0 && r == ID && e == ID && s == ID, "uids %d %d %d",
	      (int)r, (int)e, (int)s);
	CHECK(getresgid(&rg, &eg, &sg) == 0 && rg == ID && eg == ID && sg == ID,
	      "gids %d %d %d", (int)rg, (int)eg, (int)sg);
	int n = getgroups(8, groups);
	CHECK(n == 1 && groups[0] == ID, "%d groups, the first %d", n, n > 0 ? (int)groups[0] : -1);
	CHECK(lseek(fd, 0, SEEK_CUR) == 5, "offset %ld, not 5", (long)lseek(fd, 0, SEEK_CUR));
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "flags %#x", fcntl(fd, F_GETFL));
	char got[5] = { 0 };
	CHECK(read(fd, got, 5) == 5 && !memcmp(got, "56789", 5), "read %.5s (%s)", got,
	      strerror(errno));
	unlink(path);
	return feature_done();
}
