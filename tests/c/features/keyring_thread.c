/* A thread keyring (KEY_SPEC_THREAD_KEYRING, made on first use) holding a
 * key, in a second thread: no image holds one, so a suspend that kills
 * refuses it before freezing (the task iterator reads the thread's
 * credentials); held, the thread keeps its keyring and its key. */
#include "feature.h"

#include <linux/keyctl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static atomic_int ready, stop, failed;
static long ring, key;

static void *worker(void *arg)
{
	(void)arg;
	ring = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1);
	if (ring >= 0) {
		const char secret[] = "feature-thread-key";
		key = syscall(SYS_add_key, "user", "feature:thread", secret, sizeof secret,
			      KEY_SPEC_THREAD_KEYRING);
	}
	ready = ring < 0 ? -errno : (key < 0 ? -1 : 1);
	while (!stop)
		usleep(1000);
	long now = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0);
	long found = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_THREAD_KEYRING, "user",
			     "feature:thread", 0);
	if (now != ring) {
		fprintf(stderr, "FAIL the thread keyring is %ld, was %ld\n", now, ring);
		failed = 1;
	}
	if (found != key) {
		fprintf(stderr, "FAIL the key is %ld, was %ld\n", found, key);
		failed = 1;
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		feature_setup_failed("pthread_create");
	while (!ready)
		usleep(1000);
	if (ready == -ENOSYS || ready == -EOPNOTSUPP)
		feature_skip("no keys in this kernel (CONFIG_KEYS)");
	if (ready < 0)
		feature_setup_failed("a thread keyring and its key");
	/* The main thread has none: only the worker's is named. */
	long mine = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0);
	if (mine >= 0)
		feature_setup_failed("the main thread has a thread keyring");
	feature_begin("refused thread keyring");

	feature_suspend_here();

	stop = 1;
	pthread_join(t, NULL);
	CHECK(!failed, "the worker's keyring or key changed");
	return feature_done();
}
