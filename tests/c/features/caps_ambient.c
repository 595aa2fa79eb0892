/* A root process keeping only CAP_NET_BIND_SERVICE (effective, permitted,
 * inheritable: capset v3) and raising it ambient: after the resume capget
 * gives the same sets, and it alone is ambient. */
#include "feature.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int caps(int set, struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return (int)syscall(set ? SYS_capset : SYS_capget, &hdr, data);
}

/* The capabilities ambient now, as a mask (bit 63: a read failed). */
static unsigned long long ambient(void)
{
	unsigned long long mask = 0;
	for (int cap = 0; cap <= 63; cap++) {
		int is = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
		if (is < 0 && errno == EINVAL)
			break; /* past the last capability */
		if (is != 0)
			mask |= is == 1 ? 1ULL << cap : 1ULL << 63;
	}
	return mask;
}

int main(void)
{
	feature_begin("restored");
	struct __user_cap_data_struct was[2] = { 0 };
	was[0].effective = was[0].permitted = was[0].inheritable =
		CAP_TO_MASK(CAP_NET_BIND_SERVICE);
	if (caps(1, was) ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
		feature_setup_failed("capset and PR_CAP_AMBIENT_RAISE");
	if (caps(0, was) || ambient() != 1ULL << CAP_NET_BIND_SERVICE)
		feature_setup_failed("the sets read back otherwise");

	feature_suspend_here();

	struct __user_cap_data_struct now[2];
	CHECK(caps(0, now) == 0, "capget: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		CHECK(now[i].effective == was[i].effective &&
			      now[i].permitted == was[i].permitted &&
			      now[i].inheritable == was[i].inheritable,
		      "word %d: eff %#x prm %#x inh %#x, were %#x %#x %#x", i, now[i].effective,
		      now[i].permitted, now[i].inheritable, was[i].effective, was[i].permitted,
		      was[i].inheritable);
	unsigned long long amb = ambient();
	CHECK(amb == 1ULL << CAP_NET_BIND_SERVICE, "ambient %#llx, not CAP_NET_BIND_SERVICE",
	      amb);
	return feature_done();
}
