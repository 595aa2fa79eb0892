/* A NUMA memory policy of one thread only (set_mempolicy in a second
 * thread: it shows in no numa_maps but that thread's): refused before
 * freezing, by name (the task iterator reads it); held, the thread keeps it. */
#include "feature.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static atomic_int set, stop, mode_after = -1;

static void *worker(void *arg)
{
	(void)arg;
	unsigned long nodes = 1;
	atomic_store(&set, syscall(SYS_set_mempolicy, 1 /* MPOL_PREFERRED */, &nodes,
				   8 * sizeof nodes) == 0 ? 1 : -1);
	while (!atomic_load(&stop))
		usleep(1000);
	int mode = -1;
	syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0);
	atomic_store(&mode_after, mode);
	return NULL;
}

int main(void)
{
	feature_begin("refused NUMA memory policy");
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	while (!atomic_load(&set))
		usleep(1000);
	if (atomic_load(&set) < 0)
		feature_skip("no NUMA memory policies on this kernel");

	feature_suspend_here();

	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	CHECK(atomic_load(&mode_after) == 1, "the thread's policy is %d, not MPOL_PREFERRED",
	      atomic_load(&mode_after));
	return feature_done();
}
