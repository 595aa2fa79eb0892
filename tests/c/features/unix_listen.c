/* A listening AF_UNIX socket bound to /tmp/feature-sock-PID: an image cannot
 * hold a socket, so a suspend that kills refuses it; held, it still listens
 * (a client connects and is accepted). */
#include "feature.h"

#include <sys/socket.h>
#include <sys/un.h>

int main(void)
{
	feature_begin("refused unix /tmp/feature-sock");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof addr.sun_path, "/tmp/feature-sock-%d", (int)getpid());
	int listener = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) ||
	    listen(listener, 4))
		feature_setup_failed("a listening unix socket");

	feature_suspend_here();

	int client = socket(AF_UNIX, SOCK_STREAM, 0);
	int connected = client >= 0 && connect(client, (struct sockaddr *)&addr, sizeof addr) == 0;
	CHECK(connected, "connect: %s", strerror(errno));
	if (connected) {
		int served = accept(listener, NULL, NULL);
		char c = 0;
		CHECK(served >= 0 && write(client, "!", 1) == 1 && read(served, &c, 1) == 1 &&
			      c == '!',
		      "accept and a byte across: %s", strerror(errno));
	}
	unlink(addr.sun_path);
	return feature_done();
}
