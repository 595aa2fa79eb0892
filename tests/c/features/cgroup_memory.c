/* A process in a memory cgroup of its own (cgroup2 with the memory
 * controller, or the v1 memory hierarchy) holding 16 MiB it wrote: after the
 * resume its memory is charged to that cgroup again (memory.current or
 * memory.usage_in_bytes), not to the resume command's. */
#include "feature.h"
#include "feature_cgroup.h"

#include <fcntl.h>
#include <mntent.h>
#include <sys/stat.h>

static char dir[1200], parent[1024];

static const char *usage_file = "memory.current";

static long long memory_current(void)
{
	char path[1300], text[64] = "";
	snprintf(path, sizeof path, "%s/%s", dir, usage_file);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	return n > 0 ? atoll(text) : -1;
}

#define SIZE (16 << 20)

int main(void)
{
	feature_begin("restored");
	/* The v1 memory hierarchy where there is one, else cgroup2. */
	const char *mount = NULL, *key = "0::";
	FILE *mounts = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	static char found[256];
	while (mounts && (m = getmntent(mounts))) {
		if (!strcmp(m->mnt_type, "cgroup") && hasmntopt(m, "memory")) {
			snprintf(found, sizeof found, "%s", m->mnt_dir);
			mount = found;
			key = ":memory:";
			usage_file = "memory.usage_in_bytes";
			break;
		}
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(found, sizeof found, "%s", m->mnt_dir);
			mount = found;
		}
	}
	if (mounts)
		endmntent(mounts);
	if (!mount)
		feature_skip("no memory cgroup hierarchy mounted");
	char here[512];
	own_cgroup(key, here, sizeof here);
	snprintf(parent, sizeof parent, "%s%s", mount, here);
	snprintf(dir, sizeof dir, "%s/feature-cgroup-memory-%d", parent, (int)getpid());
	if (mkdir(dir, 0755) < 0)
		feature_setup_failed("mkdir in the memory cgroup hierarchy");
	/* In cgroup2's root (a test VM's init), the controller may only need
	 * enabling for the children (the root takes no part in the
	 * no-internal-process rule). */
	if (memory_current() < 0 && !strcmp(key, "0::") && !strcmp(here, "/")) {
		char control[600];
		snprintf(control, sizeof control, "%s/cgroup.subtree_control", mount);
		int fd = open(control, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "+memory", 7) != 7)
				perror("enabling the memory controller");
			close(fd);
		}
	}
	if (memory_current() < 0) {
		rmdir(dir);
		feature_skip("no memory controller for a new cgroup here");
	}
	if (!write_pid(dir)) {
		rmdir(dir);
		feature_skip("this process cannot move into a new memory cgroup here");
	}
	unsigned char *mem = malloc(SIZE);
	if (!mem)
		feature_setup_failed("malloc");
	for (size_t i = 0; i < SIZE; i++)
		mem[i] = (unsigned char)(i * 7 + i / 4096);
	long long before = memory_current();
	if (before < SIZE)
		feature_setup_failed("memory.current below what it wrote");

	feature_suspend_here();

	for (size_t i = 0; i < SIZE; i++)
		if (mem[i] != (unsigned char)(i * 7 + i / 4096)) {
			CHECK(0, "byte %zu differs", i);
			break;
		}
	long long now = memory_current();
	CHECK(now >= SIZE, "%s %lld after the resume (%lld before): its pages are charged elsewhere",
	      usage_file, now, before);
	write_pid(parent);
	rmdir(dir);
	return feature_done();
}
