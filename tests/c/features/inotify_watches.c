/* An inotify (IN_NONBLOCK | IN_CLOEXEC) watching files a (IN_MODIFY), c
 * (IN_CLOSE_WRITE) and their directory (IN_CREATE), b's watch removed (wds
 * 1, 3, 4): after the resume the same fd, flags and wds, nothing queued, each
 * watch reports its event, b none, and a new watch gets a wd of its own. */
#include "feature.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>

static char dir[] = "/tmp/feature-inotify-XXXXXX", path[64];

/* Appends a byte to dir/name, path (creating it): open, write, close. */
static void touch(const char *name)
{
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd))
		feature_setup_failed(path);
}

/* Touches name: then one event must come, for wd with mask (and evname),
 * and no other; none at all if wd is -1. */
static void touched(int ifd, const char *name, int wd, uint32_t mask, const char *evname)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };
	int n = 0, want = 0, last_wd = 0;
	uint32_t last_mask = 0;
	ssize_t got;
	touch(name);
	for (int ms = wd == -1 ? 200 : 5000;
	     poll(&pfd, 1, ms) == 1 && (got = read(ifd, buf, sizeof buf)) > 0; ms = 200) {
		for (char *p = buf; p < buf + got; n++) {
			struct inotify_event *e = (struct inotify_event *)p;
			want += e->wd == wd && e->mask == mask &&
				!strcmp(e->len ? e->name : "", evname);
			last_wd = e->wd;
			last_mask = e->mask;
			p += sizeof *e + e->len;
		}
	}
	CHECK(n == want && n == (wd != -1), "%s: %d events, %d for wd %d; the last wd %d mask %#x",
	      name, n, want, wd, last_wd, last_mask);
}

int main(void)
{
	feature_begin("restored");
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!mkdtemp(dir) || ifd < 0)
		feature_setup_failed("a directory and an inotify");
	touch("a");
	int wd_a = inotify_add_watch(ifd, path, IN_MODIFY);
	touch("b");
	int wd_b = inotify_add_watch(ifd, path, IN_MODIFY);
	touch("c");
	int wd_c = inotify_add_watch(ifd, path, IN_CLOSE_WRITE);
	int wd_dir = inotify_add_watch(ifd, dir, IN_CREATE);
	if (wd_a < 0 || wd_b < 0 || wd_c < 0 || wd_dir < 0 || inotify_rm_watch(ifd, wd_b))
		feature_setup_failed("inotify watches");
	struct inotify_event ev;
	if (read(ifd, &ev, sizeof ev) != sizeof ev || ev.wd != wd_b || ev.mask != IN_IGNORED)
		feature_setup_failed("the IN_IGNORED of the removed watch");

	feature_suspend_here();

	char link[64] = { 0 };
	snprintf(path, sizeof path, "/proc/self/fd/%d", ifd);
	CHECK(readlink(path, link, sizeof link - 1) > 0 && !strcmp(link, "anon_inode:inotify"),
	      "fd %d is %s", ifd, link);
	int fl = fcntl(ifd, F_GETFL), fd_fl = fcntl(ifd, F_GETFD), queued = -1;
	CHECK(fl != -1 && (fl & O_NONBLOCK) && fd_fl == FD_CLOEXEC, "flags %#x, fd flags %#x",
	      fl, fd_fl);
	CHECK(ioctl(ifd, FIONREAD, &queued) == 0 && queued == 0, "%d bytes queued", queued);
	touched(ifd, "a", wd_a, IN_MODIFY, "");
	touched(ifd, "d", wd_dir, IN_CREATE, "d");
	touched(ifd, "c", wd_c, IN_CLOSE_WRITE, "");
	touched(ifd, "b", -1, 0, "");
	int wd = inotify_add_watch(ifd, path, IN_MODIFY); /* on b, touched last */
	CHECK(wd > 0 && wd != wd_a && wd != wd_c && wd != wd_dir, "a new watch got wd %d", wd);
	for (const char *name = "abcd"; *name; name++) {
		snprintf(path, sizeof path, "%s/%c", dir, *name);
		unlink(path);
	}
	rmdir(dir);
	return feature_done();
}
