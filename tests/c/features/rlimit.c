/* RLIMIT_NOFILE's soft limit lowered to 777, RLIMIT_CORE 0 (soft and hard):
 * after the resume getrlimit gives what was set (RLIMIT_STACK unchanged) and
 * no descriptor can be had at 777 or above. */
#include "feature.h"

#include <fcntl.h>
#include <sys/resource.h>

static int same(struct rlimit a, struct rlimit b)
{
	return a.rlim_cur == b.rlim_cur && a.rlim_max == b.rlim_max;
}

int main(void)
{
	feature_begin("restored");
	struct rlimit nofile, core = { 0, 0 }, stack;
	if (getrlimit(RLIMIT_NOFILE, &nofile) || getrlimit(RLIMIT_STACK, &stack))
		feature_setup_failed("getrlimit");
	nofile.rlim_cur = 777;
	if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_CORE, &core))
		feature_setup_failed("setrlimit");
	int fd = open("/dev/null", O_RDONLY);
	if (fd < 0)
		feature_setup_failed("open /dev/null");

	feature_suspend_here();

	struct rlimit now;
	CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0 && same(now, nofile), "RLIMIT_NOFILE %llu/%llu",
	      (unsigned long long)now.rlim_cur, (unsigned long long)now.rlim_max);
	CHECK(getrlimit(RLIMIT_CORE, &now) == 0 && same(now, core), "RLIMIT_CORE %llu/%llu",
	      (unsigned long long)now.rlim_cur, (unsigned long long)now.rlim_max);
	CHECK(getrlimit(RLIMIT_STACK, &now) == 0 && same(now, stack), "RLIMIT_STACK %llu/%llu",
	      (unsigned long long)now.rlim_cur, (unsigned long long)now.rlim_max);
	int high = fcntl(fd, F_DUPFD, 776);
	CHECK(high == 776, "F_DUPFD 776 gave %d: %s", high, strerror(errno));
	CHECK(fcntl(fd, F_DUPFD, 777) == -1 && errno == EINVAL, "a descriptor at 777 or above");
	return feature_done();
}
