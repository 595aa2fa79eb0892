/* Shared anonymous memory its parent maps too (mapped before a fork): a
 * resume from the image would give it a copy of its own, so a suspend
 * refuses it before freezing, naming the parent; held, a write through it
 * is still seen by the parent. */
#include "feature.h"

#include <sys/mman.h>

int main(void)
{
	setsid();
	volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		feature_setup_failed("mmap");
	shared[0] = 41;
	int code;
	if (!feature_in_child(&code)) {
		/* The parent: the child's write after its resume is seen here. */
		if (code == 0 && shared[0] != 42) {
			printf("FAIL the parent sees %d, not 42\n", shared[0]);
			return 1;
		}
		return code;
	}
	printf("expect refused shared with pid %d\n", (int)getppid());
	fflush(stdout);
	if (setpgid(0, 0) < 0)
		feature_setup_failed("setpgid");

	feature_suspend_here();

	CHECK(shared[0] == 41, "shared memory holds %d", shared[0]);
	shared[0] = 42;
	return feature_done();
}
