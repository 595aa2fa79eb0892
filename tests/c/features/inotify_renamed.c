/* An inotify watch (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF) on a file x renamed
 * to y before the suspension (its IN_MOVE_SELF read): after the resume the
 * watch, same wd, is still on that file, now y, and not on a new x. */
#include "feature.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static char dir[] = "/tmp/feature-inotify-XXXXXX", x[64], y[64];

/* The events that come within ms, then until none for 200 ms: how many;
 * each must be for wd with mask. */
static int events(int ifd, int ms, int wd, uint32_t mask)
{
	struct inotify_event buf[64];
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };
	int n = 0;
	ssize_t got;
	for (; poll(&pfd, 1, ms) == 1 && (got = read(ifd, buf, sizeof buf)) > 0; ms = 200) {
		for (char *p = (char *)buf; p < (char *)buf + got; n++) {
			struct inotify_event *e = (struct inotify_event *)p;
			CHECK(e->wd == wd && e->mask == mask,
			      "event wd %d mask %#x, not wd %d mask %#x", e->wd, e->mask, wd, mask);
			p += sizeof *e + e->len;
		}
	}
	return n;
}

/* Appends a byte to path (creating it): open, write, close. */
static void append(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd))
		feature_setup_failed(path);
}

int main(void)
{
	feature_begin("restored");
	int ifd = inotify_init1(IN_NONBLOCK);
	if (!mkdtemp(dir) || ifd < 0)
		feature_setup_failed("a directory and an inotify");
	snprintf(x, sizeof x, "%s/x", dir);
	snprintf(y, sizeof y, "%s/y", dir);
	append(x);
	int wd = inotify_add_watch(ifd, x, IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF);
	if (wd < 0 || rename(x, y))
		feature_setup_failed("a watch on x, renamed y");
	struct inotify_event ev;
	if (read(ifd, &ev, sizeof ev) != sizeof ev || ev.wd != wd || ev.mask != IN_MOVE_SELF)
		feature_setup_failed("the IN_MOVE_SELF of the rename");

	feature_suspend_here();

	append(y);
	int n = events(ifd, 5000, wd, IN_MODIFY);
	CHECK(n == 1, "%d events for y written", n);
	CHECK(chmod(y, 0640) == 0, "chmod: %s", strerror(errno));
	n = events(ifd, 5000, wd, IN_ATTRIB);
	CHECK(n == 1, "%d events for y chmod-ed", n);
	append(x);
	n = events(ifd, 200, -1, 0);
	CHECK(n == 0, "%d events for a new x written", n);
	unlink(x);
	unlink(y);
	rmdir(dir);
	return feature_done();
}
