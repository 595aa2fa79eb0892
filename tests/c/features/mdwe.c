/* PR_SET_MDWE (memory-deny-write-execute, Linux 6.3): it stays, and an
 * mprotect to writable+executable is still refused. */
#include "feature.h"

#include <sys/mman.h>
#include <sys/prctl.h>

int main(void)
{
	feature_begin("restored");
	if (prctl(65 /* PR_SET_MDWE */, 1 /* PR_MDWE_REFUSE_EXEC_GAIN */, 0, 0, 0) < 0)
		feature_skip("no PR_SET_MDWE on this kernel (before 6.3)");
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		feature_setup_failed("mmap");

	feature_suspend_here();

	CHECK(prctl(66 /* PR_GET_MDWE */, 0, 0, 0, 0) == 1, "PR_GET_MDWE %d",
	      prctl(66, 0, 0, 0, 0));
	CHECK(mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) < 0,
	      "a writable page could be made executable");
	return feature_done();
}
