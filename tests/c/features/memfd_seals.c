/* A memfd sealed against shrinking and growing (F_SEAL_SHRINK|F_SEAL_GROW),
 * mapped shared, its fd closed (the mapping only): after the resume the data
 * is intact. (The seals cannot be read without the fd.) */
#include "feature.h"

#include <fcntl.h>
#include <sys/mman.h>

#define SIZE (16 * 4096)

int main(void)
{
	feature_begin("restored");
	unsigned char data[SIZE];
	for (int i = 0; i < SIZE; i++)
		data[i] = (unsigned char)(i * 11 + 9);
	int fd = memfd_create("feature-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || write(fd, data, SIZE) != SIZE)
		feature_setup_failed("a memfd");
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		feature_setup_failed("F_ADD_SEALS");
	unsigned char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		feature_setup_failed("mmap");
	close(fd);

	feature_suspend_here();

	CHECK(!memcmp(m, data, SIZE), "the mapping's data changed");
	return feature_done();
}
