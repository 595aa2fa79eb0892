/* A thread's I/O priority (ioprio_set: idle class; best effort, level 2 on
 * another thread) comes back per thread. */
#include "feature.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define PRIO(class, data) (((class) << 13) | (data))

static atomic_int stop, other_tid;

static void *other(void *arg)
{
	(void)arg;
	atomic_store(&other_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&stop))
		usleep(1000);
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	pthread_t t;
	pthread_create(&t, NULL, other, NULL);
	while (!atomic_load(&other_tid))
		usleep(1000);
	if (syscall(SYS_ioprio_set, 1, 0, PRIO(3, 0)) < 0 ||
	    syscall(SYS_ioprio_set, 1, atomic_load(&other_tid), PRIO(2, 2)) < 0)
		feature_setup_failed("ioprio_set");

	feature_suspend_here();

	long mine = syscall(SYS_ioprio_get, 1, 0);
	long theirs = syscall(SYS_ioprio_get, 1, atomic_load(&other_tid));
	CHECK(mine == PRIO(3, 0), "this thread's ioprio %#lx, not idle", mine);
	CHECK(theirs == PRIO(2, 2), "the other thread's ioprio %#lx, not best effort 2", theirs);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	return feature_done();
}
