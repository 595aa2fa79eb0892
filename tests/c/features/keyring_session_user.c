/* A session keyring of its own that links only the user keyring, as
 * pam_keyinit makes one for a login: a resume gives the process a new
 * session keyring with the user's session keyring (which links the user
 * keyring) linked in, so what it searched it still finds — a key in the
 * user keyring, found through the session keyring. */
#include "feature.h"

#include <linux/keyctl.h>
#include <sys/syscall.h>

int main(void)
{
	long ring = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL);
	if (ring < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
		feature_skip("no keys in this kernel (CONFIG_KEYS)");
	if (ring < 0)
		feature_setup_failed("KEYCTL_JOIN_SESSION_KEYRING");
	if (syscall(SYS_keyctl, KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING) < 0)
		feature_setup_failed("KEYCTL_LINK @u @s");
	const char secret[] = "feature-user-key";
	long key = syscall(SYS_add_key, "user", "feature:user", secret, sizeof secret,
			   KEY_SPEC_USER_KEYRING);
	if (key < 0)
		feature_setup_failed("add_key");
	feature_begin("restored");

	feature_suspend_here();

	long found = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user",
			     "feature:user", 0);
	int searched = errno;
	/* The key lives in the user keyring, which outlives the process. */
	syscall(SYS_keyctl, KEYCTL_UNLINK, key, KEY_SPEC_USER_KEYRING);
	CHECK(found == key, "the user keyring's key through the session keyring: %ld (%s), was %ld",
	      found, strerror(searched), key);
	return feature_done();
}
