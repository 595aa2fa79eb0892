/* CAP_NET_RAW dropped from the bounding set and from the effective and permitted
 * sets: after the resume it is out of the bounding set, capget gives the sets
 * as they were, and a raw socket is refused. */
#include "feature.h"

#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static int caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return syscall(SYS_capget, &hdr, data);
}

int main(void)
{
	feature_begin("restored");
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct was[2];
	if (prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) || caps_get(was))
		feature_setup_failed("PR_CAPBSET_DROP");
	was[0].effective &= ~CAP_TO_MASK(CAP_NET_RAW);
	was[0].permitted &= ~CAP_TO_MASK(CAP_NET_RAW);
	if (syscall(SYS_capset, &hdr, was) || caps_get(was))
		feature_setup_failed("capset");

	feature_suspend_here();

	int bounding = prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0);
	CHECK(bounding == 0, "PR_CAPBSET_READ CAP_NET_RAW %d", bounding);
	struct __user_cap_data_struct now[2];
	CHECK(caps_get(now) == 0, "capget: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		CHECK(now[i].effective == was[i].effective &&
			      now[i].permitted == was[i].permitted &&
			      now[i].inheritable == was[i].inheritable,
		      "word %d: eff %#x prm %#x inh %#x, were %#x %#x %#x", i, now[i].effective,
		      now[i].permitted, now[i].inheritable, was[i].effective, was[i].permitted,
		      was[i].inheritable);
	int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	CHECK(raw == -1 && errno == EPERM, "a raw socket: %s", raw < 0 ? strerror(errno) : "made");
	if (raw >= 0)
		close(raw);
	return feature_done();
}
