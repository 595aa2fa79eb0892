/* An inotify watching a directory of its own for IN_CREATE: after the resume,
 * creating a file there gives its event, under the same watch. */
#include "feature.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>

int main(void)
{
	feature_begin("restored");
	char dir[] = "/tmp/feature-inotify-XXXXXX";
	if (!mkdtemp(dir))
		feature_setup_failed("mkdtemp");
	int ifd = inotify_init1(IN_NONBLOCK);
	int wd = ifd < 0 ? -1 : inotify_add_watch(ifd, dir, IN_CREATE);
	if (wd < 0)
		feature_setup_failed("inotify");

	feature_suspend_here();

	char name[64], path[80];
	snprintf(name, sizeof name, "created-%d", (int)getpid());
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		feature_setup_failed(path);
	close(fd);
	int seen = 0;
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };
	while (!seen && poll(&pfd, 1, 5000) == 1) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t n = read(ifd, buf, sizeof buf);
		for (char *e = buf; n > 0 && e < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)e;
			seen |= ev->wd == wd && (ev->mask & IN_CREATE) && ev->len &&
				!strcmp(ev->name, name);
			e += sizeof *ev + ev->len;
		}
	}
	CHECK(seen, "no IN_CREATE event for %s", path);
	unlink(path);
	rmdir(dir);
	return feature_done();
}
