/* PR_SET_TSC PR_TSC_SIGSEGV on one thread (rdtsc, and so the vDSO's clocks,
 * fault there): it comes back on that thread, and only there. */
#include "feature.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>

static atomic_int stop, set, other_tsc;

static void *other(void *arg)
{
	(void)arg;
	atomic_store(&set, prctl(PR_SET_TSC, PR_TSC_SIGSEGV) == 0 ? 1 : -1);
	while (!atomic_load(&stop))
		usleep(1000); /* nanosleep: no vDSO, no rdtsc */
	int tsc = 0;
	prctl(PR_GET_TSC, &tsc);
	atomic_store(&other_tsc, tsc);
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	pthread_t t;
	pthread_create(&t, NULL, other, NULL);
	while (!atomic_load(&set))
		usleep(1000);
	if (atomic_load(&set) < 0)
		feature_skip("PR_SET_TSC is not supported here");

	feature_suspend_here();

	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	CHECK(atomic_load(&other_tsc) == PR_TSC_SIGSEGV, "the other thread's tsc %d",
	      atomic_load(&other_tsc));
	int tsc = 0;
	CHECK(prctl(PR_GET_TSC, &tsc) == 0 && tsc == PR_TSC_ENABLE, "this thread's tsc %d", tsc);
	return feature_done();
}
