/* A 3-page file in /tmp mapped MAP_PRIVATE read-write, its fd closed, page 1
 * changed in memory only: after the resume page 1 has the change, pages 0 and
 * 2 the file's bytes, and the file on disk is unchanged. */
#include "feature.h"

#include <fcntl.h>
#include <sys/mman.h>

#define BYTE(i) ((unsigned char)((i) * 7 + 1))

int main(void)
{
	feature_begin("restored");
	long page = sysconf(_SC_PAGESIZE), size = 3 * page;
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-private-%d", (int)getpid());
	unsigned char *bytes = malloc(size), *disk = malloc(size);
	for (long i = 0; i < size; i++)
		bytes[i] = BYTE(i);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!bytes || !disk || fd < 0 || write(fd, bytes, size) != size)
		feature_setup_failed("a file of 3 pages");
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		feature_setup_failed("mmap");
	close(fd);
	for (long i = page; i < 2 * page; i++)
		m[i] = (unsigned char)~BYTE(i);

	feature_suspend_here();

	long wrong = -1;
	for (long i = 0; i < size && wrong < 0; i++)
		if (m[i] != (i / page == 1 ? (unsigned char)~BYTE(i) : BYTE(i)))
			wrong = i;
	CHECK(wrong < 0, "the mapping differs at byte %ld (page %ld): %#x", wrong, wrong / page,
	      wrong < 0 ? 0 : m[wrong]);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, disk, size, 0) == size && !memcmp(disk, bytes, size),
	      "the file on disk changed (%s)", strerror(errno));
	unlink(path);
	return feature_done();
}
