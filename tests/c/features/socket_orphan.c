/* A unix stream socket whose peer is gone (one end of a socketpair whose
 * other end the process closed, as every JVM's NIO keeps one), non-blocking:
 * it comes back as such a socket — reads give end of file, writes EPIPE,
 * its type and flags as they were, its peer credentials the process's. */
#include "feature.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

int main(void)
{
	feature_begin("restored");
	int ends[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, ends))
		feature_setup_failed("socketpair");
	close(ends[1]);
	signal(SIGPIPE, SIG_IGN);
	int fd = ends[0];

	feature_suspend_here();

	char c;
	ssize_t n = read(fd, &c, 1);
	CHECK(n == 0, "read gave %zd (%s), not end of file", n, strerror(errno));
	n = write(fd, "x", 1);
	CHECK(n < 0 && errno == EPIPE, "write gave %zd (%s), not EPIPE", n, strerror(errno));
	int type = 0;
	socklen_t len = sizeof type;
	CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM,
	      "SO_TYPE %d", type);
	int flags = fcntl(fd, F_GETFL);
	CHECK(flags >= 0 && (flags & O_NONBLOCK), "status flags %#x: O_NONBLOCK lost", flags);
	struct ucred peer;
	len = sizeof peer;
	CHECK(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0, "SO_PEERCRED: %s",
	      strerror(errno));
	CHECK(peer.pid == getpid() && peer.uid == geteuid() && peer.gid == getegid(),
	      "its peer is pid %d uid %u gid %u, not the process (%d, %u, %u)", peer.pid,
	      peer.uid, peer.gid, getpid(), geteuid(), getegid());
	return feature_done();
}
