/* A shared anonymous mapping of 4 pages with a pattern, its middle two made
 * read-only (three VMAs of one object): after the resume the pattern and the
 * protections are as set, and it is still shared (a child's write is seen). */
#include "feature.h"

#include <sys/mman.h>
#include <sys/wait.h>

/* The permissions /proc/self/maps gives the mapping starting at addr. */
static void perms_at(const void *addr, char out[5])
{
	char line[512], want[32];
	snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
	strcpy(out, "none");
	FILE *maps = fopen("/proc/self/maps", "r");
	while (maps && fgets(line, sizeof line, maps))
		if (!strncmp(line, want, strlen(want)))
			sscanf(strchr(line, ' ') + 1, "%4s", out);
	if (maps)
		fclose(maps);
}

int main(void)
{
	feature_begin("restored");
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		feature_setup_failed("mmap");
	for (long i = 0; i < 4 * page; i++)
		m[i] = (unsigned char)(i * 13 + 7);
	if (mprotect(m + page, 2 * page, PROT_READ))
		feature_setup_failed("mprotect");

	feature_suspend_here();

	int intact = 1;
	for (long i = 0; i < 4 * page; i++)
		intact &= m[i] == (unsigned char)(i * 13 + 7);
	CHECK(intact, "the pattern changed");
	const char *want[3] = { "rw-s", "r--s", "rw-s" };
	unsigned char *starts[3] = { m, m + page, m + 3 * page };
	for (int i = 0; i < 3; i++) {
		char perms[5];
		perms_at(starts[i], perms);
		CHECK(!strcmp(perms, want[i]), "part %d at %p is %s, not %s", i, starts[i], perms,
		      want[i]);
	}
	pid_t child = fork();
	if (child == 0) {
		m[5] = 0xa5;
		m[3 * page + 5] = 0x5a;
		_exit(0);
	}
	int status = 0;
	CHECK(child > 0 && waitpid(child, &status, 0) == child && status == 0,
	      "a child: %s, status %#x", strerror(errno), status);
	CHECK(m[5] == 0xa5 && m[3 * page + 5] == 0x5a, "the child's writes are not seen: %#x %#x",
	      m[5], m[3 * page + 5]);
	return feature_done();
}
