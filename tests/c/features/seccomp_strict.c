/* A second thread in strict seccomp mode, waiting on a pipe, all signals blocked:
 * a resume cannot set strict mode, so a suspend that kills refuses it; held,
 * the thread is still strict and leaves when told through the pipe. */
#include "feature.h"

#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static int told[2], said[2];

static void *strict(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int tid = gettid();
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
		tid = -1;
	/* Raw calls only from here: a wrapper may make others. */
	syscall(SYS_write, said[1], &tid, sizeof tid);
	char c;
	while (syscall(SYS_read, told[0], &c, 1) != 1 || c != 'x')
		;
	syscall(SYS_exit, 0);
	return NULL;
}

/* The Seccomp: field of thread t's status (-1 unread). */
static int seccomp_of(pid_t t)
{
	char path[64], line[128];
	int mode = -1;
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)t);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Seccomp:", 8))
			mode = atoi(line + 8);
	if (f)
		fclose(f);
	return mode;
}

int main(void)
{
	feature_begin("refused-always strict seccomp mode");
	pthread_t t;
	int tid = -1;
	if (pipe(told) || pipe(said) || pthread_create(&t, NULL, strict, NULL))
		feature_setup_failed("a thread and its pipes");
	if (read(said[0], &tid, sizeof tid) != sizeof tid || tid < 0 || seccomp_of(tid) != 1)
		feature_setup_failed("PR_SET_SECCOMP strict");

	feature_suspend_here();

	CHECK(seccomp_of(tid) == 1, "the thread's Seccomp: %d, not 1 (strict)", seccomp_of(tid));
	CHECK(seccomp_of(getpid()) == 0, "the main thread's Seccomp: %d", seccomp_of(getpid()));
	CHECK(write(told[1], "x", 1) == 1, "telling the thread: %s", strerror(errno));
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	int joined = pthread_timedjoin_np(t, NULL, &until);
	CHECK(joined == 0, "joining the strict thread: %s", strerror(joined));
	return feature_done();
}
