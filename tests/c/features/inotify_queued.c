/* An inotify with an IN_MODIFY event queued and not read: a resume could not
 * give it back, so a suspend that kills refuses it; held, the event is still
 * there to read (its wd and mask), then nothing, and the watch still works. */
#include "feature.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>

static char path[64];

/* Appends a byte to path: open, write, close. */
static void append(void)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd))
		feature_setup_failed(path);
}

int main(void)
{
	feature_begin("refused events not yet read");
	snprintf(path, sizeof path, "/tmp/feature-inotify-queued-%d", (int)getpid());
	append();
	int ifd = inotify_init1(IN_NONBLOCK);
	int wd = ifd < 0 ? -1 : inotify_add_watch(ifd, path, IN_MODIFY);
	if (wd < 0)
		feature_setup_failed("inotify");
	append();
	int queued = 0;
	if (ioctl(ifd, FIONREAD, &queued) || queued != sizeof(struct inotify_event))
		feature_setup_failed("an event queued");

	feature_suspend_here();

	struct inotify_event ev = { .wd = -1 };
	ssize_t n = read(ifd, &ev, sizeof ev);
	CHECK(n == sizeof ev && ev.wd == wd && ev.mask == IN_MODIFY && ev.len == 0,
	      "read %zd: wd %d mask %#x len %u (%s)", n, ev.wd, ev.mask, ev.len, strerror(errno));
	CHECK(read(ifd, &ev, sizeof ev) == -1 && errno == EAGAIN, "more to read: wd %d mask %#x",
	      ev.wd, ev.mask);
	append();
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };
	n = poll(&pfd, 1, 5000) == 1 ? read(ifd, &ev, sizeof ev) : 0;
	CHECK(n == sizeof ev && ev.wd == wd && ev.mask == IN_MODIFY, "then %zd: wd %d mask %#x", n,
	      ev.wd, ev.mask);
	unlink(path);
	return feature_done();
}
