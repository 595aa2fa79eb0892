/* A file mapped privately and then deleted (a library upgraded under a
 * running program): an image cannot map it again, so a suspend refuses it
 * before freezing, naming it; held, the mapping keeps its bytes. */
#include "feature.h"

#include <fcntl.h>
#include <sys/mman.h>

#define SIZE (2 * 4096)

int main(void)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-deleted-%d", (int)getpid());
	printf("expect refused %s\n", path);
	fflush(stdout);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	unsigned char bytes[SIZE];
	for (int i = 0; i < SIZE; i++)
		bytes[i] = (unsigned char)(i * 7 + 3);
	if (fd < 0 || write(fd, bytes, SIZE) != SIZE)
		feature_setup_failed(path);
	unsigned char *map = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		feature_setup_failed("mmap");
	close(fd);
	unlink(path);

	feature_suspend_here();

	CHECK(!memcmp(map, bytes, SIZE), "the mapping lost its bytes");
	return feature_done();
}
