/* The main thread's FS base (its TLS) and a __thread value, and a GS base of
 * 0x12345000 set by a second thread (ARCH_SET_GS): after the resume the FS base
 * and the value are the same, and the second thread reads back its GS base. */
#include "feature.h"

#include <asm/prctl.h>
#include <pthread.h>
#include <sys/syscall.h>

#define GS 0x12345000UL

static __thread long mine = 4242;
static atomic_int go, said;
static unsigned long gs_now;

static void *worker(void *arg)
{
	(void)arg;
	unsigned long gs = 0;
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, GS) ||
	    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) || gs != GS)
		feature_setup_failed("ARCH_SET_GS");
	atomic_store(&said, 1);
	while (!atomic_load(&go))
		usleep(1000);
	if (syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_now))
		gs_now = 1;
	atomic_store(&said, 2);
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	unsigned long fs_was = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_was) || !fs_was)
		feature_setup_failed("ARCH_GET_FS");
	mine = 77777;
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		feature_setup_failed("pthread_create");
	while (atomic_load(&said) < 1)
		usleep(1000);

	feature_suspend_here();

	unsigned long fs_now = 0;
	CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_now) == 0, "%s", strerror(errno));
	CHECK(fs_now == fs_was, "FS base %#lx, was %#lx", fs_now, fs_was);
	CHECK(mine == 77777, "the __thread value is %ld, not 77777", mine);
	atomic_store(&go, 1);
	for (int i = 0; i < 500 && atomic_load(&said) < 2; i++)
		usleep(10000);
	CHECK(atomic_load(&said) == 2, "the second thread did not say within 5 s");
	CHECK(gs_now == GS, "the second thread's GS base %#lx, not %#lx", gs_now, GS);
	if (atomic_load(&said) == 2)
		pthread_join(t, NULL);
	return feature_done();
}
