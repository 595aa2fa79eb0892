/* A session keyring of its own (keyctl join) holding a key: no image
 * holds one, and a resume gives the process a new session keyring, so a
 * suspend that kills refuses it before freezing (the task iterator reads
 * the thread's credentials and the keyring's links); held, the keyring and
 * its key stay. */
#include "feature.h"

#include <linux/keyctl.h>
#include <sys/syscall.h>

int main(void)
{
	long ring = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "feature-session");
	if (ring < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
		feature_skip("no keys in this kernel (CONFIG_KEYS)");
	if (ring < 0)
		feature_setup_failed("KEYCTL_JOIN_SESSION_KEYRING");
	const char secret[] = "feature-session-key";
	long key = syscall(SYS_add_key, "user", "feature:session", secret, sizeof secret,
			   KEY_SPEC_SESSION_KEYRING);
	if (key < 0)
		feature_setup_failed("add_key");
	feature_begin("refused session keyring of its own");

	feature_suspend_here();

	long now = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
	CHECK(now == ring, "the session keyring is %ld, was %ld", now, ring);
	long found = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user",
			     "feature:session", 0);
	CHECK(found == key, "the key is %ld, was %ld", found, key);
	return feature_done();
}
