/* A /dev/shm file mapped shared twice and then unlinked, no fd left on it
 * (what a multiprocessing.Lock's POSIX semaphore is): it comes back as one
 * object with its bytes, each mapping seeing the other's writes. */
#include "feature.h"

#include <fcntl.h>
#include <sys/mman.h>

#define SIZE (3 * 4096)

int main(void)
{
	feature_begin("restored");
	char path[64];
	snprintf(path, sizeof path, "/dev/shm/feature-shm-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SIZE))
		feature_setup_failed(path);
	unsigned char *a = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	unsigned char *b = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		feature_setup_failed("mmap");
	close(fd);
	unlink(path);
	for (int i = 0; i < SIZE; i++)
		a[i] = (unsigned char)(i * 13 + 1);

	feature_suspend_here();

	int intact = 1;
	for (int i = 0; i < SIZE; i++)
		intact &= a[i] == (unsigned char)(i * 13 + 1) && b[i] == a[i];
	CHECK(intact, "the mappings lost their bytes");
	a[100] = 0xaa;
	b[SIZE - 1] = 0x55;
	CHECK(b[100] == 0xaa && a[SIZE - 1] == 0x55,
	      "a write through one mapping is not seen through the other");
	return feature_done();
}
