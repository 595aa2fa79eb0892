/* A 64 KiB memfd mapped MAP_SHARED, its fd kept open: an image cannot hold
 * an open memfd yet (refused by name); held, after the resume the mapping holds
 * the pattern, pread on the memfd sees the same bytes, and writes through either
 * are seen through the other (shared, not a private copy). */
#include "feature.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define SIZE (64 * 1024)

int main(void)
{
	feature_begin("refused /memfd:feature-memfd");
	static unsigned char got[SIZE];
	int fd = memfd_create("feature-memfd", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, SIZE))
		feature_setup_failed("memfd_create");
	unsigned char *map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		feature_setup_failed("mmap");
	for (int i = 0; i < SIZE; i++)
		map[i] = (unsigned char)(i * 31 + 5);

	feature_suspend_here();

	int intact = 1;
	for (int i = 0; i < SIZE; i++)
		intact &= map[i] == (unsigned char)(i * 31 + 5);
	CHECK(intact, "the mapping lost its pattern");
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == SIZE, "memfd size %ld", (long)st.st_size);
	CHECK(pread(fd, got, SIZE, 0) == SIZE && !memcmp(got, map, SIZE),
	      "the memfd differs from the mapping");
	map[4321] ^= 0xff;
	CHECK(pread(fd, got, 1, 4321) == 1 && got[0] == map[4321],
	      "a write to the mapping is not in the memfd");
	unsigned char b = 0x5a;
	CHECK(pwrite(fd, &b, 1, 60000) == 1 && map[60000] == 0x5a,
	      "a write to the memfd is not in the mapping");
	char link[64], want[64];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, want, sizeof want - 1);
	want[n > 0 ? n : 0] = 0;
	CHECK(!strcmp(want, "/memfd:feature-memfd (deleted)"), "fd is %s", want);
	return feature_done();
}
