/* Three hundred regular files open at once, each at its own offset: a
 * resume reopens every one (past the 256 the restore once kept room for),
 * each at its number and offset. */
#include "feature.h"

#include <fcntl.h>

#define FILES 300

int main(void)
{
	feature_begin("restored");
	char dir[] = "/tmp/feature-many-XXXXXX";
	if (!mkdtemp(dir))
		feature_setup_failed("mkdtemp");
	int fds[FILES];
	char path[64];
	for (int i = 0; i < FILES; i++) {
		snprintf(path, sizeof path, "%s/%d", dir, i);
		fds[i] = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		char line[32];
		int n = snprintf(line, sizeof line, "file %d\n", i);
		/* Written, then left at an offset of its own. */
		if (fds[i] < 0 || write(fds[i], line, n) != n || lseek(fds[i], i % 7, SEEK_SET) < 0)
			feature_setup_failed(path);
	}

	feature_suspend_here();

	for (int i = 0; i < FILES; i++) {
		off_t at = lseek(fds[i], 0, SEEK_CUR);
		CHECK(at == i % 7, "fd %d (file %d) is at %ld, was at %d", fds[i], i, (long)at, i % 7);
		char line[32] = "", want[32];
		int n = snprintf(want, sizeof want, "file %d\n", i);
		CHECK(pread(fds[i], line, sizeof line, 0) == n && !memcmp(line, want, n),
		      "fd %d reads %.*s", fds[i], n, line);
	}
	for (int i = 0; i < FILES; i++) {
		snprintf(path, sizeof path, "%s/%d", dir, i);
		unlink(path);
	}
	rmdir(dir);
	return feature_done();
}
