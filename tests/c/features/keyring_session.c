/* A session keyring of its own (KEYCTL_JOIN_SESSION_KEYRING) holding a
 * key: an image holds no key, and a resumed process would have the resume
 * command's session keyring, so a suspend that kills refuses it once
 * frozen (only the process can read its keyrings); held, the key stays
 * where it was. */
#include "feature.h"

#include <linux/keyctl.h>
#include <sys/syscall.h>

static long keyctl(long op, long a, long b, long c, long d)
{
	return syscall(SYS_keyctl, op, a, b, c, d);
}

int main(void)
{
	long session = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
	if (session < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
		feature_skip("no keys in this kernel (CONFIG_KEYS)");
	if (session < 0)
		feature_setup_failed("KEYCTL_JOIN_SESSION_KEYRING");
	const char secret[] = "feature-keyring-secret";
	long key = syscall(SYS_add_key, "user", "feature:secret", secret, sizeof secret,
			   KEY_SPEC_SESSION_KEYRING);
	if (key < 0)
		feature_setup_failed("add_key");
	feature_begin("refused-late session keyring");

	feature_suspend_here();

	long now = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0, 0);
	CHECK(now == session, "the session keyring is %ld, was %ld", now, session);
	long found = keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, (long)"user",
			    (long)"feature:secret", 0);
	CHECK(found == key, "the key is %ld in the session keyring, was %ld (%s)", found, key,
	      found < 0 ? strerror(errno) : "");
	char back[64] = "";
	long n = keyctl(KEYCTL_READ, key, (long)back, sizeof back, 0);
	CHECK(n == (long)sizeof secret && !memcmp(back, secret, sizeof secret),
	      "the key reads %ld bytes", n);
	return feature_done();
}
