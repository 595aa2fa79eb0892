/* A process moved into a cgroup of its own (cgroup2): it comes back in that
 * cgroup, not in the resume command's. */
#include "feature.h"

#include <fcntl.h>
#include <mntent.h>
#include <sys/stat.h>

static char dir[1200], parent[1024];

static int write_pid(const char *cgroup)
{
	char path[600], pid[16];
	snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
	int fd = open(path, O_WRONLY);
	int n = snprintf(pid, sizeof pid, "%d", (int)getpid());
	int ok = fd >= 0 && write(fd, pid, n) == n;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The unified (cgroup2) line of /proc/self/cgroup, its path only. */
static void own_cgroup(char *out, size_t len)
{
	char line[480];
	out[0] = 0;
	FILE *f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s", line + 3);
		}
	if (f)
		fclose(f);
}

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
	own_cgroup(here, sizeof here);
	snprintf(parent, sizeof parent, "%s%s", mount, here);
	snprintf(dir, sizeof dir, "%s/feature-cgroup-%d", parent, (int)getpid());
	if (mkdir(dir, 0755) < 0)
		feature_setup_failed("mkdir in the cgroup2 hierarchy");
	if (!write_pid(dir)) {
		rmdir(dir);
		feature_skip("this process cannot move into a new cgroup2 cgroup here");
	}
	char want[512];
	own_cgroup(want, sizeof want);

	feature_suspend_here();

	char now[512];
	own_cgroup(now, sizeof now);
	CHECK(!strcmp(now, want), "cgroup %s, not %s", now, want);
	write_pid(parent);
	rmdir(dir);
	return feature_done();
}
