/* Leases (F_SETLEASE), in a directory of our own under /tmp: a read lease on
 * one file and a write lease on another, each opened read-only (the write
 * leased one opened nowhere else). After: F_GETLEASE says the same of each,
 * the lease made us each file's signal owner, and a break still reaches us:
 * a child's open for writing of the read-leased file fails (EWOULDBLOCK)
 * and SIGIO comes. */
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
	char dir[] = "/tmp/feature-lease-XXXXXX";
	if (!mkdtemp(dir))
		feature_setup_failed("mkdtemp");
	char read_path[64], write_path[64];
	snprintf(read_path, sizeof read_path, "%s/read", dir);
	snprintf(write_path, sizeof write_path, "%s/write", dir);
	for (int i = 0; i < 2; i++) {
		int fd = open(i ? write_path : read_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, "leased", 6) != 6 || close(fd))
			feature_setup_failed("a file");
	}
	struct sigaction on = { .sa_handler = on_io };
	sigemptyset(&on.sa_mask);
	if (sigaction(SIGIO, &on, NULL))
		feature_setup_failed("sigaction SIGIO");
	int r = open(read_path, O_RDONLY);
	if (r < 0 || fcntl(r, F_SETLEASE, F_RDLCK))
		feature_setup_failed("F_SETLEASE F_RDLCK");
	int w = open(write_path, O_RDONLY);
	if (w < 0 || fcntl(w, F_SETLEASE, F_WRLCK))
		feature_setup_failed("F_SETLEASE F_WRLCK");

	feature_suspend_here();

	int lease = fcntl(r, F_GETLEASE);
	CHECK(lease == F_RDLCK, "read lease: F_GETLEASE %d, not F_RDLCK (%s)", lease,
	      strerror(errno));
	lease = fcntl(w, F_GETLEASE);
	CHECK(lease == F_WRLCK, "write lease: F_GETLEASE %d, not F_WRLCK (%s)", lease,
	      strerror(errno));
	CHECK(fcntl(r, F_GETOWN) == getpid(), "the read-leased file's owner %d",
	      fcntl(r, F_GETOWN));
	CHECK(fcntl(w, F_GETOWN) == getpid(), "the write-leased file's owner %d",
	      fcntl(w, F_GETOWN));

	pid_t child = fork();
	if (child < 0)
		feature_setup_failed("fork");
	if (child == 0) {
		int fd = open(read_path, O_WRONLY | O_NONBLOCK);
		_exit(fd < 0 && errno == EWOULDBLOCK ? 0 : 1);
	}
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child's open for writing of the read-leased file did not fail with "
	      "EWOULDBLOCK (status %#x)",
	      status);
	for (int i = 0; i < 5000 && !got; i++)
		usleep(1000);
	CHECK(got > 0, "no SIGIO for the lease break");

	fcntl(r, F_SETLEASE, F_UNLCK);
	fcntl(w, F_SETLEASE, F_UNLCK);
	close(r);
	close(w);
	unlink(read_path);
	unlink(write_path);
	rmdir(dir);
	return feature_done();
}
