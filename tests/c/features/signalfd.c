/* A signalfd for SIGUSR1 (blocked): it comes back with its mask; a raised
 * SIGUSR1 is read from it after the resume. */
#include "feature.h"

#include <signal.h>
#include <sys/signalfd.h>

int main(void)
{
	feature_begin("restored");
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	int sfd;
	if (sigprocmask(SIG_BLOCK, &mask, NULL) || (sfd = signalfd(-1, &mask, SFD_NONBLOCK)) < 0)
		feature_setup_failed("signalfd");

	feature_suspend_here();

	struct signalfd_siginfo si = { 0 };
	CHECK(read(sfd, &si, sizeof si) == -1 && errno == EAGAIN, "a signal before any was sent");
	raise(SIGUSR1);
	ssize_t n = read(sfd, &si, sizeof si);
	CHECK(n == sizeof si && si.ssi_signo == SIGUSR1 && si.ssi_pid == (uint32_t)getpid(),
	      "read %zd: signal %u from %u (%s)", n, si.ssi_signo, si.ssi_pid, strerror(errno));
	return feature_done();
}
