/* Signal-driven I/O: a self-pipe whose read end has O_ASYNC, this process
 * as its owner (F_SETOWN_EX) and a real-time signal (F_SETSIG); and an fd
 * with an owner but no O_ASYNC. After: all read back, and a write into the
 * pipe does send the signal. */
#include "feature.h"

#include <fcntl.h>
#include <signal.h>

static volatile sig_atomic_t got;

static void on_io(int sig)
{
	(void)sig;
	got++;
}

int main(void)
{
	feature_begin("restored");
	int sig = SIGRTMIN + 2;
	signal(sig, on_io);
	int fds[2], other[2];
	if (pipe2(fds, O_NONBLOCK) < 0 || pipe(other) < 0)
		feature_setup_failed("pipe");
	struct f_owner_ex me = { F_OWNER_PID, getpid() };
	if (fcntl(fds[0], F_SETOWN_EX, &me) < 0 || fcntl(fds[0], F_SETSIG, sig) < 0 ||
	    fcntl(fds[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0)
		feature_setup_failed("F_SETOWN_EX, F_SETSIG, O_ASYNC");
	if (fcntl(other[0], F_SETOWN, getpid()) < 0)
		feature_setup_failed("F_SETOWN without O_ASYNC");

	feature_suspend_here();

	struct f_owner_ex owner = { 0 };
	CHECK(fcntl(fds[0], F_GETOWN_EX, &owner) == 0 && owner.type == F_OWNER_PID &&
		      owner.pid == getpid(),
	      "owner %d %d", owner.type, owner.pid);
	CHECK(fcntl(fds[0], F_GETSIG) == sig, "signal %d", fcntl(fds[0], F_GETSIG));
	int flags = fcntl(fds[0], F_GETFL);
	CHECK((flags & (O_ASYNC | O_NONBLOCK)) == (O_ASYNC | O_NONBLOCK), "flags %#x", flags);
	CHECK(fcntl(other[0], F_GETOWN) == getpid(), "the other pipe's owner %d",
	      fcntl(other[0], F_GETOWN));
	CHECK((fcntl(other[0], F_GETFL) & O_ASYNC) == 0, "the other pipe has O_ASYNC");
	if (write(fds[1], "x", 1) != 1)
		feature_setup_failed("writing to the pipe");
	for (int i = 0; i < 5000 && !got; i++)
		usleep(1000);
	CHECK(got > 0, "no signal %d after a write", sig);
	return feature_done();
}
