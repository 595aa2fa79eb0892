/* A pipe holding 1000 unread bytes, O_NONBLOCK on the write end, FD_CLOEXEC on
 * the read end: after the resume the bytes read back exactly, then the pipe is
 * empty, and each end keeps its own flags. */
#include "feature.h"

#include <fcntl.h>
#include <sys/ioctl.h>

int main(void)
{
	feature_begin("restored");
	int p[2];
	unsigned char sent[1000], got[1000];
	for (int i = 0; i < 1000; i++)
		sent[i] = (unsigned char)(i * 7 + 3);
	if (pipe2(p, 0) || fcntl(p[1], F_SETFL, O_NONBLOCK) || fcntl(p[0], F_SETFD, FD_CLOEXEC))
		feature_setup_failed("pipe");
	if (write(p[1], sent, sizeof sent) != sizeof sent)
		feature_setup_failed("write");

	feature_suspend_here();

	int rfl = fcntl(p[0], F_GETFL), wfl = fcntl(p[1], F_GETFL);
	CHECK((rfl & (O_ACCMODE | O_NONBLOCK)) == O_RDONLY, "read end's flags %#x", rfl);
	CHECK((wfl & (O_ACCMODE | O_NONBLOCK)) == (O_WRONLY | O_NONBLOCK),
	      "write end's flags %#x", wfl);
	CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC, "read end's fd flags %#x", fcntl(p[0], F_GETFD));
	CHECK(fcntl(p[1], F_GETFD) == 0, "write end's fd flags %#x", fcntl(p[1], F_GETFD));
	int queued = -1;
	CHECK(ioctl(p[0], FIONREAD, &queued) == 0 && queued == 1000, "%d bytes queued", queued);
	if (queued > 0) {
		ssize_t n = read(p[0], got, sizeof got);
		CHECK(n == (ssize_t)sizeof got && !memcmp(got, sent, sizeof got),
		      "read %zd bytes, %s", n,
		      n == (ssize_t)sizeof got ? "not the ones written" : "not 1000");
	}
	CHECK(ioctl(p[0], FIONREAD, &queued) == 0 && queued == 0, "%d bytes left", queued);
	return feature_done();
}
