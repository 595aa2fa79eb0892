/*
 * c_workload: a C program that opts in through the C API
 * (libsuspend_client) and checks itself. Same stdin protocol as the Rust
 * workload: decide ready|busy|refuse, enter, leave, check, exit.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <suspend.h>

#define WORDS (1 << 16)

static atomic_int decision = SUSPEND_READY;
static atomic_int suspend_calls, resume_calls;
static atomic_int last_reason = -1;
static unsigned long long memory[WORDS];

static unsigned long long pattern(size_t i)
{
	return (i * 0x9e3779b97f4a7c15ULL) ^ 0x5eedULL;
}

static int on_suspend(const struct suspend_request *request, void *data)
{
	(void)request;
	atomic_fetch_add((atomic_int *)data, 1);
	return atomic_load(&decision);
}

static void on_resume(const struct suspend_resume_info *info, void *data)
{
	(void)data;
	/* The reason first: the count tells a reader this resume is done. */
	atomic_store(&last_reason, (int)info->reason);
	atomic_fetch_add(&resume_calls, 1);
}

static int memory_intact(void)
{
	for (size_t i = 0; i < WORDS; i++)
		if (memory[i] != pattern(i))
			return 0;
	return 1;
}

static const char *reason_name(int reason)
{
	switch (reason) {
	case SUSPEND_RESTORED: return "restored";
	case SUSPEND_CONTINUED: return "continued";
	case SUSPEND_ABORTED: return "aborted";
	default: return "none";
	}
}

int main(void)
{
	char line[256];
	struct suspend_handlers handlers = {
		.on_suspend = on_suspend,
		.on_resume = on_resume,
		.data = &suspend_calls,
	};
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < WORDS; i++)
		memory[i] = pattern(i);
	rc = suspend_register(&handlers);
	if (rc < 0) {
		printf("register failed: %s (%d)\n", suspend_strerror(rc), rc);
		return 1;
	}
	printf("registered rc=%d signal=%d\n", rc, suspend_signal_number());
	printf("ready pid=%d\n", (int)getpid());

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		if (strcmp(line, "decide ready") == 0) {
			atomic_store(&decision, SUSPEND_READY);
			puts("ok");
		} else if (strcmp(line, "decide busy") == 0) {
			atomic_store(&decision, SUSPEND_BUSY);
			puts("ok");
		} else if (strcmp(line, "decide refuse") == 0) {
			atomic_store(&decision, SUSPEND_REFUSE);
			puts("ok");
		} else if (strcmp(line, "enter") == 0) {
			suspend_critical_enter();
			puts("ok");
		} else if (strcmp(line, "leave") == 0) {
			suspend_critical_leave();
			puts("ok");
		} else if (strcmp(line, "check") == 0) {
			/* Counts before the reason (arguments have no order). */
			int suspends = atomic_load(&suspend_calls);
			int resumes = atomic_load(&resume_calls);
			int reason = atomic_load(&last_reason);
			printf("state suspend=%d resume=%d reason=%s registered=%d memory=%s\n",
			       suspends, resumes, reason_name(reason), suspend_is_registered(),
			       memory_intact() ? "intact" : "changed");
		} else if (strcmp(line, "exit") == 0) {
			int ok = memory_intact() && atomic_load(&resume_calls) <= atomic_load(&suspend_calls);
			printf("exit %s\n", ok ? "ok" : "FAIL");
			return ok ? 0 : 1;
		} else {
			printf("unknown command: %s\n", line);
		}
	}
	return 0;
}
