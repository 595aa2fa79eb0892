/* A sealed mapping (mseal, Linux 6.10) stays sealed: munmap and mprotect
 * of it fail with EPERM. */
#include "feature.h"

#include <sys/mman.h>
#include <sys/syscall.h>

int main(void)
{
	feature_begin("restored");
	char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		feature_setup_failed("mmap");
	page[0] = 42;
	if (syscall(462 /* mseal */, page, 4096, 0) < 0)
		feature_skip("no mseal on this kernel (before 6.10)");

	feature_suspend_here();

	CHECK(page[0] == 42, "the sealed page lost its byte");
	CHECK(mprotect(page, 4096, PROT_READ) < 0 && errno == EPERM, "mprotect of a sealed page: %s",
	      strerror(errno));
	CHECK(munmap(page, 4096) < 0 && errno == EPERM, "munmap of a sealed page: %s",
	      strerror(errno));
	return feature_done();
}
