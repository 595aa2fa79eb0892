/* A unix stream socketpair with 5 unread bytes: an image cannot hold it; after a
 * held suspension the bytes read back. */
#include "feature.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

int main(void)
{
	feature_begin("refused socket");
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || write(sv[0], "hello", 5) != 5)
		feature_setup_failed("socketpair");

	feature_suspend_here();

	int queued = -1;
	CHECK(ioctl(sv[1], FIONREAD, &queued) == 0 && queued == 5, "%d bytes queued", queued);
	char got[8] = "";
	ssize_t n = recv(sv[1], got, sizeof got, MSG_DONTWAIT);
	CHECK(n == 5 && !memcmp(got, "hello", 5), "read %zd bytes \"%.*s\"", n,
	      n > 0 ? (int)n : 0, got);
	return feature_done();
}
