/* One page locked in memory (mlock): an image cannot hold it; after a held
 * suspension VmLck is what it was (non-zero) and the page holds its byte. */
#include "feature.h"

#include <sys/mman.h>

/* VmLck of /proc/self/status, in kB (-1 if not found). */
static long vm_locked(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		sscanf(line, "VmLck: %ld", &kb);
	if (f)
		fclose(f);
	return kb;
}

int main(void)
{
	feature_begin("refused locked memory");
	size_t page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mlock(p, page))
		feature_setup_failed("mlock");
	p[7] = 'L';
	long was = vm_locked();

	feature_suspend_here();

	long now = vm_locked();
	CHECK(now > 0 && now == was, "VmLck %ld kB, was %ld kB", now, was);
	CHECK(p[7] == 'L', "the locked page holds %#x", p[7]);
	return feature_done();
}
