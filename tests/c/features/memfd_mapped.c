/* A memfd mapped MAP_SHARED twice, its fd closed: after the resume both
 * mappings hold the pattern and are still one memory (a write through one
 * is read through the other), with the memfd's name. */
#include "feature.h"

#include <sys/mman.h>

#define SIZE (64 * 1024)

static int maps_name(const void *addr)
{
	char line[512], want[32];
	snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
	FILE *maps = fopen("/proc/self/maps", "r");
	int found = 0;
	while (maps && fgets(line, sizeof line, maps))
		if (!strncmp(line, want, strlen(want)))
			found = strstr(line, "/memfd:feature-mapped") != NULL;
	if (maps)
		fclose(maps);
	return found;
}

int main(void)
{
	feature_begin("restored");
	int fd = memfd_create("feature-mapped", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, SIZE))
		feature_setup_failed("memfd_create");
	unsigned char *a = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned char *b = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		feature_setup_failed("mmap");
	close(fd);
	for (int i = 0; i < SIZE; i++)
		a[i] = (unsigned char)(i * 31 + 5);

	feature_suspend_here();

	int intact = 1;
	for (int i = 0; i < SIZE; i++)
		intact &= a[i] == (unsigned char)(i * 31 + 5) && b[i] == a[i];
	CHECK(intact, "a mapping lost its pattern");
	a[4321] ^= 0xff;
	CHECK(b[4321] == a[4321], "a write through one mapping is not in the other");
	CHECK(maps_name(a) && maps_name(b), "the mappings are not of /memfd:feature-mapped");
	return feature_done();
}
