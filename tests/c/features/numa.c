/* A NUMA memory policy (set_mempolicy MPOL_BIND to node 0): an image cannot
 * hold it yet, so it is refused by name; held, it stays. */
#include "feature.h"

#include <sys/syscall.h>

int main(void)
{
	feature_begin("refused NUMA memory policy");
	unsigned long nodes = 1;
	if (syscall(SYS_set_mempolicy, 2 /* MPOL_BIND */, &nodes, 8 * sizeof nodes) < 0)
		feature_skip("no NUMA memory policies on this kernel");
	int mode = -1;
	unsigned long got = 0;

	feature_suspend_here();

	CHECK(syscall(SYS_get_mempolicy, &mode, &got, 8 * sizeof got, NULL, 0) == 0 && mode == 2 &&
		      got == 1,
	      "policy %d nodes %#lx", mode, got);
	return feature_done();
}
