/* A 64 KiB alternate signal stack and a SA_ONSTACK SIGUSR1 handler: after the
 * resume sigaltstack reads back the same stack, and the handler runs on it. */
#include "feature.h"

#include <signal.h>
#include <stdint.h>

#define SIZE (64 * 1024)

static volatile uintptr_t handler_local;
static volatile int handler_onstack;

static void on_usr1(int sig)
{
	volatile int local = sig;
	stack_t cur;
	handler_local = (uintptr_t)&local;
	handler_onstack = sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_ONSTACK);
}

int main(void)
{
	feature_begin("restored");
	stack_t ss = { .ss_sp = malloc(SIZE), .ss_size = SIZE, .ss_flags = 0 };
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	if (!ss.ss_sp || sigaltstack(&ss, NULL) || sigaction(SIGUSR1, &sa, NULL))
		feature_setup_failed("sigaltstack");

	feature_suspend_here();

	stack_t now;
	CHECK(sigaltstack(NULL, &now) == 0, "%s", strerror(errno));
	CHECK(now.ss_sp == ss.ss_sp && now.ss_size == ss.ss_size && now.ss_flags == 0,
	      "stack %p + %zu flags %#x, was %p + %zu", now.ss_sp, now.ss_size, now.ss_flags,
	      ss.ss_sp, ss.ss_size);
	raise(SIGUSR1);
	uintptr_t base = (uintptr_t)ss.ss_sp;
	CHECK(handler_local > base && handler_local < base + SIZE,
	      "the handler's local at %#lx, the stack %#lx + %d", (unsigned long)handler_local,
	      (unsigned long)base, SIZE);
	CHECK(handler_onstack, "sigaltstack in the handler does not say SS_ONSTACK");
	return feature_done();
}
