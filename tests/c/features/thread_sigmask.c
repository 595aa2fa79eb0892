/* A second thread blocks SIGUSR2 in itself only, the main thread SIGUSR1 only:
 * after the resume each thread's mask is the one it had (the second thread
 * reads its own and reports it). */
#include "feature.h"

#include <pthread.h>
#include <signal.h>

static atomic_int go, said;
static unsigned long long worker_was, worker_now;

/* The calling thread's mask of signals 1..64, as the kernel shows it. */
static unsigned long long own_mask(void)
{
	sigset_t cur;
	unsigned long long mask = 0;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int sig = 1; sig <= 64; sig++)
		if (sigismember(&cur, sig) == 1)
			mask |= 1ULL << (sig - 1);
	return mask;
}

static void *worker(void *arg)
{
	(void)arg;
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	worker_was = own_mask();
	atomic_store(&said, 1);
	while (!atomic_load(&go))
		usleep(1000);
	worker_now = own_mask();
	atomic_store(&said, 2);
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		feature_setup_failed("pthread_create");
	while (atomic_load(&said) < 1)
		usleep(1000);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	unsigned long long main_was = own_mask();
	unsigned long long bit1 = 1ULL << (SIGUSR1 - 1), bit2 = 1ULL << (SIGUSR2 - 1);
	if ((main_was & (bit1 | bit2)) != bit1 || (worker_was & (bit1 | bit2)) != bit2)
		feature_setup_failed("the masks read back otherwise");

	feature_suspend_here();

	unsigned long long main_now = own_mask();
	CHECK(main_now == main_was, "the main thread's mask %#llx, was %#llx", main_now, main_was);
	atomic_store(&go, 1);
	for (int i = 0; i < 500 && atomic_load(&said) < 2; i++)
		usleep(10000);
	CHECK(atomic_load(&said) == 2, "the second thread did not say within 5 s");
	CHECK(worker_now == worker_was, "the second thread's mask %#llx, was %#llx", worker_now,
	      worker_was);
	if (atomic_load(&said) == 2)
		pthread_join(t, NULL);
	return feature_done();
}
