/* umask 027: after the resume umask() gives 027, and a file created 0666
 * comes out 0640. */
#include "feature.h"

#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
	feature_begin("restored");
	umask(027);

	feature_suspend_here();

	mode_t now = umask(0);
	umask(now);
	CHECK(now == 027, "umask %03o", (unsigned)now);
	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-umask-%d", (int)getpid());
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0666);
	if (fd < 0)
		feature_setup_failed(path);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0640, "created %04o",
	      (unsigned)(st.st_mode & 07777));
	close(fd);
	unlink(path);
	return feature_done();
}
