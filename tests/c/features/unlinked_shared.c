/* A deleted file its parent has open too (the fd inherited across a fork):
 * a resume would give it a copy of its own, so a suspend refuses it by
 * name before the freeze; held, a write through it is read by the parent. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-unlinked-shared-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "before", 6) != 6)
		feature_setup_failed(path);
	unlink(path);
	int code;
	if (!feature_in_child(&code)) {
		char got[6] = "";
		if (code == 0 && (pread(fd, got, 5, 0) != 5 || memcmp(got, "after", 5))) {
			printf("FAIL the parent reads %.5s\n", got);
			return 1;
		}
		return code;
	}
	printf("expect refused pid %d\n", (int)getppid());
	fflush(stdout);
	if (setsid() < 0)
		feature_setup_failed("setsid");

	feature_suspend_here();

	char got[7] = "";
	CHECK(pread(fd, got, 6, 0) == 6 && !memcmp(got, "before", 6), "it reads %s", got);
	CHECK(pwrite(fd, "after", 5, 0) == 5, "pwrite");
	return feature_done();
}
