/* A local descriptor table (modify_ldt): an image cannot hold it, so a
 * suspend that kills refuses it before freezing (the task iterator sees
 * it); held,
 * it keeps it. */
#include "feature.h"

#include <asm/ldt.h>
#include <sys/syscall.h>

int main(void)
{
	feature_begin("refused local descriptor table");
	struct user_desc desc = { .entry_number = 0, .base_addr = 0, .limit = 0xfff,
				  .seg_32bit = 1, .useable = 1 };
	if (syscall(SYS_modify_ldt, 1, &desc, sizeof desc) < 0)
		feature_skip("modify_ldt is not allowed here");

	feature_suspend_here();

	struct user_desc got[1];
	CHECK(syscall(SYS_modify_ldt, 0, got, sizeof got) > 0, "the LDT is gone");
	return feature_done();
}
