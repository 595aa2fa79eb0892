/* A thread that turned speculative store bypass off for itself
 * (PR_SET_SPECULATION_CTRL), another that left it on: each comes back
 * with its own setting. Where the kernel does not let a task choose
 * (mitigation off, forced on, or a CPU not affected) it cannot have this
 * state, and says so. */
#include "feature.h"

#include <pthread.h>
#include <sys/prctl.h>

#ifndef PR_SPEC_STORE_BYPASS
#define PR_GET_SPECULATION_CTRL 52
#define PR_SET_SPECULATION_CTRL 53
#define PR_SPEC_STORE_BYPASS 0
#define PR_SPEC_PRCTL (1UL << 0)
#define PR_SPEC_ENABLE (1UL << 1)
#define PR_SPEC_DISABLE (1UL << 2)
#endif

static int other_state = -1;
static pthread_barrier_t suspended;

static int state(void)
{
	return prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
}

static void *other(void *arg)
{
	(void)arg;
	/* Waits out the suspension, then reads its own state. */
	pthread_barrier_wait(&suspended);
	other_state = state();
	pthread_barrier_wait(&suspended);
	return NULL;
}

int main(void)
{
	int before = state();
	if (before < 0 || !(before & PR_SPEC_PRCTL))
		feature_skip("this kernel does not let a task set its store-bypass control "
			     "(PR_GET_SPECULATION_CTRL without PR_SPEC_PRCTL)");
	feature_begin("restored");
	pthread_t t;
	if (pthread_barrier_init(&suspended, NULL, 2) || pthread_create(&t, NULL, other, NULL))
		feature_setup_failed("pthread_create");
	/* Only this thread: the other was made before, with the default. */
	if (prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, PR_SPEC_DISABLE, 0, 0))
		feature_setup_failed("PR_SET_SPECULATION_CTRL");
	int mine = state();

	feature_suspend_here();

	pthread_barrier_wait(&suspended);
	pthread_barrier_wait(&suspended);
	CHECK(state() == mine, "this thread's store-bypass control is %#x, was %#x", state(), mine);
	CHECK(mine & PR_SPEC_DISABLE, "the control was not set (%#x)", mine);
	CHECK(other_state == before, "the other thread's control is %#x, was %#x", other_state,
	      before);
	pthread_join(t, NULL);
	return feature_done();
}
