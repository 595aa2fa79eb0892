/* A memory protection key on a mapping (pkey_mprotect): an image cannot
 * hold it, so it is refused before the freeze; held, it stays. */
#include "feature.h"

#include <sys/mman.h>
#include <sys/syscall.h>

int main(void)
{
	feature_begin("refused memory protection keys");
	int key = (int)syscall(SYS_pkey_alloc, 0, 0);
	if (key < 0)
		feature_skip("no memory protection keys on this CPU or kernel");
	char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED || syscall(SYS_pkey_mprotect, page, 4096, PROT_READ | PROT_WRITE, key) < 0)
		feature_setup_failed("pkey_mprotect");

	feature_suspend_here();

	CHECK(syscall(SYS_pkey_free, key) == 0, "the key is not allocated any more");
	return feature_done();
}
