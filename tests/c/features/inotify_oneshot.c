/* An inotify watch IN_MODIFY | IN_ONESHOT on a file: after the resume fdinfo
 * shows the same mask, and two writes give one IN_MODIFY, then the watch's
 * IN_IGNORED (it is gone), then nothing. */
#include "feature.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>

static char path[64];

/* The mask /proc/self/fdinfo shows for ifd's watch wd, 0 if none. */
static unsigned int fdinfo_mask(int ifd, int wd)
{
	char line[512];
	unsigned int mask = 0, m;
	int w;
	snprintf(line, sizeof line, "/proc/self/fdinfo/%d", ifd);
	FILE *f = fopen(line, "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "inotify wd:%x ino:%*x sdev:%*x mask:%x", &w, &m) == 2 && w == wd)
			mask = m;
	if (f)
		fclose(f);
	return mask;
}

/* Appends a byte to path, then reads the events that come within ms, then
 * until none for 200 ms: how many; the first two in ev. */
static int written(int ifd, int ms, struct inotify_event ev[2])
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };
	int fd = open(path, O_WRONLY | O_APPEND), n = 0;
	ssize_t got;
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd))
		feature_setup_failed(path);
	memset(ev, 0, 2 * sizeof *ev);
	for (; poll(&pfd, 1, ms) == 1 && (got = read(ifd, buf, sizeof buf)) > 0; ms = 200) {
		for (char *p = buf; p < buf + got; n++) {
			if (n < 2)
				ev[n] = *(struct inotify_event *)p;
			p += sizeof *ev + ((struct inotify_event *)p)->len;
		}
	}
	return n;
}

int main(void)
{
	feature_begin("restored");
	snprintf(path, sizeof path, "/tmp/feature-inotify-oneshot-%d", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ifd = inotify_init1(IN_NONBLOCK);
	if (fd < 0 || close(fd) || ifd < 0)
		feature_setup_failed("a file and an inotify");
	int wd = inotify_add_watch(ifd, path, IN_MODIFY | IN_ONESHOT);
	unsigned int mask = wd < 0 ? 0 : fdinfo_mask(ifd, wd);
	if (!(mask & IN_MODIFY))
		feature_setup_failed("an IN_MODIFY | IN_ONESHOT watch, in fdinfo");
	if (!(mask & IN_ONESHOT))
		feature_skip("this kernel's fdinfo does not show IN_ONESHOT");

	feature_suspend_here();

	unsigned int now = fdinfo_mask(ifd, wd);
	CHECK(now == mask, "fdinfo shows mask %#x, not %#x", now, mask);
	struct inotify_event ev[2];
	int n = written(ifd, 5000, ev);
	CHECK(n == 2 && ev[0].wd == wd && ev[0].mask == IN_MODIFY && ev[1].wd == wd &&
		      ev[1].mask == IN_IGNORED,
	      "%d events: wd %d mask %#x, wd %d mask %#x", n, ev[0].wd, ev[0].mask, ev[1].wd,
	      ev[1].mask);
	n = written(ifd, 200, ev);
	CHECK(n == 0, "%d events after the IN_IGNORED: wd %d mask %#x", n, ev[0].wd, ev[0].mask);
	unlink(path);
	return feature_done();
}
