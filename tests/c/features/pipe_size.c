/* A pipe (both ends ours) grown to 1 MiB (F_SETPIPE_SZ) holding 100 KiB
 * unread: after the resume F_GETPIPE_SZ is 1 MiB and the 100 KiB read back
 * exact, then nothing. */
#include "feature.h"

#include <fcntl.h>

#define SIZE (1024 * 1024)
#define UNREAD (100 * 1024)

int main(void)
{
	feature_begin("restored");
	static unsigned char data[UNREAD], got[UNREAD + 1];
	for (int i = 0; i < UNREAD; i++)
		data[i] = (unsigned char)(i * 17 + i / 251);
	int p[2];
	if (pipe2(p, O_NONBLOCK) || fcntl(p[1], F_SETPIPE_SZ, SIZE) != SIZE)
		feature_setup_failed("a pipe of 1 MiB");
	if (write(p[1], data, UNREAD) != UNREAD)
		feature_setup_failed("writing 100 KiB");

	feature_suspend_here();

	int size = fcntl(p[0], F_GETPIPE_SZ);
	CHECK(size == SIZE, "F_GETPIPE_SZ %d, not %d", size, SIZE);
	ssize_t n, total = 0;
	while (total <= UNREAD && (n = read(p[0], got + total, UNREAD + 1 - total)) > 0)
		total += n;
	CHECK(total == UNREAD, "read %zd bytes back, not %d (%s)", total, UNREAD,
	      strerror(errno));
	CHECK(!memcmp(got, data, UNREAD), "the bytes read back differ");
	return feature_done();
}
