/*
 * Helpers of the cgroup feature workloads (cgroup.c, cgroup_memory.c):
 * finding the process's own cgroup in a hierarchy, and moving it into one.
 */
#ifndef FEATURE_CGROUP_H
#define FEATURE_CGROUP_H

#include "feature.h"

#include <fcntl.h>

/* Writes this process's pid into CGROUP/cgroup.procs: 1 once it is there. */
static inline int write_pid(const char *cgroup)
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

/* The path of our cgroup in the hierarchy whose /proc/self/cgroup lines
 * contain `key` ("0::" for cgroup2, ":memory:" for v1). */
static inline void own_cgroup(const char *key, char *out, size_t len)
{
	char line[480];
	out[0] = 0;
	FILE *f = fopen("/proc/self/cgroup", "r");
	while (f && fgets(line, sizeof line, f)) {
		char *at = strstr(line, key);
		if (at) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s", at + strlen(key));
		}
	}
	if (f)
		fclose(f);
}

#endif
