/* A memfd it maps shared while its parent holds only an fd of it (no
 * mapping): a resume from the image would give it a copy of its own, so a
 * suspend refuses it before freezing, naming the parent; held, a write
 * through its mapping is read by the parent through the fd. */
#include "feature.h"

#include <sys/mman.h>

int main(void)
{
	int fd = memfd_create("feature-memfd-fd", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 4096) || pwrite(fd, "before", 6, 0) != 6)
		feature_setup_failed("memfd_create");
	int code;
	if (!feature_in_child(&code)) {
		char got[6] = "";
		if (code == 0 && (pread(fd, got, 5, 0) != 5 || memcmp(got, "after", 5))) {
			printf("FAIL the parent reads %.5s\n", got);
			return 1;
		}
		return code;
	}
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		feature_setup_failed("mmap");
	close(fd);
	printf("expect refused shared with pid %d\n", (int)getppid());
	fflush(stdout);
	if (setsid() < 0)
		feature_setup_failed("setsid");

	feature_suspend_here();

	CHECK(!memcmp(map, "before", 6), "it maps %.6s", map);
	memcpy(map, "after", 5);
	return feature_done();
}
