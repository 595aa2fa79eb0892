/*
 * One-feature workloads: each program of tests/c/features sets up one kind
 * of kernel state, is suspended and resumed, then checks that state and
 * exits non-zero on any difference (the harness is tests/tests/features.rs;
 * `cargo xtask build` compiles each NAME.c into feature_NAME).
 *
 * Protocol, on stdout, one line each:
 *   expect restored            the state must come back exactly, or
 *   expect refused WORDS       a suspend that kills must refuse, naming WORDS
 *                              (a held suspension must then keep it);
 *   ready PID                  set up, registered: suspend me now;
 *   ok | FAIL ...              after the resume: the verdict (exit 0 | 1).
 *   skip REASON                this kernel cannot have the state (exit 77):
 *                              the harness says so loudly, never passes it.
 *
 * FEATURE_NO_SUSPEND=1 in the environment checks right away, unsuspended:
 * the check must pass on the state as it was set up.
 */
#ifndef FEATURE_H
#define FEATURE_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <suspend.h>

static atomic_int feature_restored;
static int feature_failures;

static void feature_on_resume(const struct suspend_resume_info *info, void *data)
{
	(void)data;
	if (info->reason == SUSPEND_RESTORED)
		atomic_store(&feature_restored, 1);
}

/* Leads its own session and process group (what a resume can give back
 * exactly), then says what the harness is to expect: "restored" or
 * "refused WORDS". */
static inline void feature_begin(const char *expect)
{
	setsid();
	printf("expect %s\n", expect);
	fflush(stdout);
}

/* This kernel cannot have the state: say so and leave (exit 77). */
static inline void feature_skip(const char *why)
{
	printf("skip %s\n", why);
	fflush(stdout);
	exit(77);
}

/* Set up failed (not the thing under test): exit 2 with what failed. */
static inline void feature_setup_failed(const char *what)
{
	printf("FAIL setting up: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(2);
}

/* Forks, for a program whose process under test is a child. Returns 1 in
 * the child, which carries on; the parent only waits for it, and gets 0
 * once it has ended, with *code its exit status (1 if it did not exit). */
static inline int feature_in_child(int *code)
{
	pid_t child = fork();
	if (child < 0)
		feature_setup_failed("fork");
	if (child == 0)
		return 1;
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	*code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	return 0;
}

/* Where the client runs the callbacks: its helper thread (the default) or
 * the signal handler (SUSPEND_CONTEXT_SIGNAL: no helper thread). A program
 * whose state a thread blocking every signal would change sets it before
 * feature_suspend_here(). */
static uint32_t feature_context = SUSPEND_CONTEXT_THREAD;

/* Registers with the agent, says "ready PID", and waits (up to 120 s) until
 * on_resume says "restored" (an aborted suspension is waited past). */
static inline void feature_suspend_here(void)
{
	const char *now = getenv("FEATURE_NO_SUSPEND");
	if (now && *now == '1')
		return;
	struct suspend_handlers handlers = {
		.on_suspend = NULL,
		.on_resume = feature_on_resume,
		.data = NULL,
	};
	struct suspend_options options = { .context = feature_context };
	int rc = suspend_register_with(&handlers, &options);
	if (rc != 0) {
		printf("FAIL register: %s (%d)\n", suspend_strerror(rc), rc);
		exit(2);
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < 120000 && !atomic_load(&feature_restored); i++) {
		struct timespec tick = { 0, 1000000 };
		nanosleep(&tick, NULL);
	}
	if (!atomic_load(&feature_restored)) {
		printf("FAIL never resumed within 120 s\n");
		exit(3);
	}
}

/* A check: on failure, prints where and what, and the program fails. */
#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                              \
			printf("\n");                                     \
			feature_failures++;                               \
		}                                                         \
	} while (0)

/* The verdict, as main's return value. */
static inline int feature_done(void)
{
	if (feature_failures)
		return 1;
	printf("ok\n");
	fflush(stdout);
	return 0;
}

#endif
