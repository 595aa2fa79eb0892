/* Each thread's robust list, and a robust mutex held by a second thread: after
 * the resume the lists' heads and lengths are the same, and when that thread
 * exits (a bare exit: only the kernel walks its list) a lock gets EOWNERDEAD. */
#include "feature.h"

#include <pthread.h>
#include <sys/syscall.h>

static pthread_mutex_t lock;
static atomic_int go, tid;

static void *holder(void *arg)
{
	(void)arg;
	if (pthread_mutex_lock(&lock))
		feature_setup_failed("pthread_mutex_lock");
	atomic_store(&tid, gettid());
	while (!atomic_load(&go))
		usleep(1000);
	syscall(SYS_exit, 0); /* glibc's thread exit would not see the mutex */
	return NULL;
}

static int robust_list_of(pid_t t, void **head, size_t *len)
{
	return (int)syscall(SYS_get_robust_list, t, head, len);
}

int main(void)
{
	feature_begin("restored");
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_t t;
	if (pthread_mutex_init(&lock, &attr) || pthread_create(&t, NULL, holder, NULL))
		feature_setup_failed("a robust mutex and its holder");
	while (!atomic_load(&tid))
		usleep(1000);
	void *main_was, *holder_was;
	size_t main_len, holder_len;
	if (robust_list_of(0, &main_was, &main_len) ||
	    robust_list_of(atomic_load(&tid), &holder_was, &holder_len))
		feature_setup_failed("get_robust_list");

	feature_suspend_here();

	void *head = NULL;
	size_t len = 0;
	CHECK(robust_list_of(0, &head, &len) == 0 && head == main_was && len == main_len,
	      "the main thread's %p (%zu bytes), was %p (%zu)", head, len, main_was, main_len);
	CHECK(robust_list_of(atomic_load(&tid), &head, &len) == 0 && head == holder_was &&
		      len == holder_len,
	      "the holder's %p (%zu bytes), was %p (%zu)", head, len, holder_was, holder_len);
	atomic_store(&go, 1);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	int got = pthread_mutex_timedlock(&lock, &until);
	CHECK(got == EOWNERDEAD, "locking the dead holder's mutex: %s", strerror(got));
	if (got == EOWNERDEAD) {
		pthread_mutex_consistent(&lock);
		pthread_mutex_unlock(&lock);
		pthread_join(t, NULL);
	}
	return feature_done();
}
