/* A process moved into a cgroup of its own (cgroup2): it comes back in that
 * cgroup, not in the resume command's. */
#include "feature.h"
#include "feature_cgroup.h"

#include <mntent.h>
#include <sys/stat.h>

static char dir[1200], parent[1024];

int main(void)
{
	feature_begin("restored");
	const char *mount = NULL;
	FILE *mounts = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	static char found[256];
	while (mounts && (m = getmntent(mounts)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(found, sizeof found, "%s", m->mnt_dir);
			mount = found;
		}
	if (mounts)
		endmntent(mounts);
	if (!mount)
		feature_skip("no cgroup2 hierarchy mounted");
	char here[512];
	own_cgroup("0::", here, sizeof here);
	snprintf(parent, sizeof parent, "%s%s", mount, here);
	snprintf(dir, sizeof dir, "%s/feature-cgroup-%d", parent, (int)getpid());
	if (mkdir(dir, 0755) < 0)
		feature_setup_failed("mkdir in the cgroup2 hierarchy");
	if (!write_pid(dir)) {
		rmdir(dir);
		feature_skip("this process cannot move into a new cgroup2 cgroup here");
	}
	char want[512];
	own_cgroup("0::", want, sizeof want);

	feature_suspend_here();

	char now[512];
	own_cgroup("0::", now, sizeof now);
	CHECK(!strcmp(now, want), "cgroup %s, not %s", now, want);
	write_pid(parent);
	rmdir(dir);
	return feature_done();
}
