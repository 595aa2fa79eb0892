/* Three pages: read-only, PROT_NONE, read-write, each holding a known byte:
 * after the resume /proc/self/maps shows those protections there, and the bytes
 * (the PROT_NONE one too, once readable) are intact. */
#include "feature.h"

#include <sys/mman.h>

/* The permissions ("r--p", ...) of the mapping holding ADDR, in PERMS. */
static void perms_of(void *addr, char perms[5])
{
	char line[512];
	unsigned long start, end;
	strcpy(perms, "????");
	FILE *f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx %4s", &start, &end, perms) == 3 &&
		    start <= (unsigned long)addr && (unsigned long)addr < end)
			break;
		else
			strcpy(perms, "????");
	if (f)
		fclose(f);
}

int main(void)
{
	feature_begin("restored");
	size_t page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		feature_setup_failed("mmap");
	p[0] = 'r', p[page + 1] = 'n', p[2 * page + 2] = 'w';
	if (mprotect(p, page, PROT_READ) || mprotect(p + page, page, PROT_NONE))
		feature_setup_failed("mprotect");

	feature_suspend_here();

	const char *want[3] = { "r--p", "---p", "rw-p" };
	char perms[5];
	for (int i = 0; i < 3; i++) {
		perms_of(p + i * page, perms);
		CHECK(!strcmp(perms, want[i]), "page %d is %s, not %s", i, perms, want[i]);
	}
	CHECK(p[0] == 'r', "page 0 holds %#x", p[0]);
	CHECK(p[2 * page + 2] == 'w', "page 2 holds %#x", p[2 * page + 2]);
	CHECK(mprotect(p + page, page, PROT_READ) == 0 && p[page + 1] == 'n', "page 1 holds %#x",
	      p[page + 1]);
	return feature_done();
}
