/* A process keyring (KEY_SPEC_PROCESS_KEYRING, made on first use) holding
 * a key: no image holds one, so a suspend that kills refuses it before
 * freezing (the task iterator reads it); held, the keyring and its key stay. */
#include "feature.h"

#include <linux/keyctl.h>
#include <sys/syscall.h>

int main(void)
{
	long ring = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1);
	if (ring < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
		feature_skip("no keys in this kernel (CONFIG_KEYS)");
	if (ring < 0)
		feature_setup_failed("KEYCTL_GET_KEYRING_ID (process keyring)");
	const char secret[] = "feature-process-key";
	long key = syscall(SYS_add_key, "user", "feature:process", secret, sizeof secret,
			   KEY_SPEC_PROCESS_KEYRING);
	if (key < 0)
		feature_setup_failed("add_key");
	feature_begin("refused process keyring");

	feature_suspend_here();

	long now = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0);
	CHECK(now == ring, "the process keyring is %ld, was %ld", now, ring);
	long found = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_PROCESS_KEYRING, "user",
			     "feature:process", 0);
	CHECK(found == key, "the key is %ld, was %ld", found, key);
	return feature_done();
}
