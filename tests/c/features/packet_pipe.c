/* A packet-mode pipe (pipe2 with O_DIRECT: each write is one packet): an
 * image cannot hold it yet, so it is refused by name; held, the packets
 * keep their boundaries. */
#include "feature.h"

#include <fcntl.h>

int main(void)
{
	feature_begin("refused pipe:[");
	int fds[2];
	if (pipe2(fds, O_DIRECT) < 0)
		feature_setup_failed("pipe2(O_DIRECT)");
	if (write(fds[1], "abc", 3) != 3 || write(fds[1], "de", 2) != 2)
		feature_setup_failed("writing two packets");

	feature_suspend_here();

	char buf[16];
	CHECK(read(fds[0], buf, sizeof buf) == 3, "the first packet is not 3 bytes");
	CHECK(read(fds[0], buf, sizeof buf) == 2, "the second packet is not 2 bytes");
	CHECK(fcntl(fds[1], F_GETFL) & O_DIRECT, "the write end has no O_DIRECT");
	return feature_done();
}
