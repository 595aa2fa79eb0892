/* A seccomp filter (after no_new_privs) making getppid fail with errno 42 and
 * allowing the rest: after the resume getppid still fails with 42, and other
 * calls work. */
#include "feature.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

int main(void)
{
	feature_begin("restored");
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 42),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof code / sizeof code[0], .filter = code };
	pid_t parent = getppid();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		feature_setup_failed("a seccomp filter");
	if (syscall(SYS_getppid) != -1 || errno != 42)
		feature_setup_failed("the filter does not answer 42");

	feature_suspend_here();

	/* Through syscall(2): glibc's getppid() never sets errno (it returns -42). */
	errno = 0;
	long got = syscall(SYS_getppid);
	CHECK(got == -1 && errno == 42, "getppid: %ld (%s), not -1 with errno 42", got,
	      strerror(errno));
	CHECK(getpid() > 0 && getpid() != parent, "getpid: %d", (int)getpid());
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs is not set");
	CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2, "PR_GET_SECCOMP %d, not 2 (filter)",
	      prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	return feature_done();
}
