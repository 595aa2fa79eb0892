/*
 * suspend.h — opt in to suspend (C API of libsuspend_client).
 *
 * A process that calls suspend_register() can be suspended by the suspend
 * agent ("suspend-agent suspend PID"), and only then: a process that never
 * registered is never touched. It is asked first — on_suspend returns
 * SUSPEND_READY, SUSPEND_BUSY (not now) or SUSPEND_REFUSE — and told after
 * how it ended: on_resume gets SUSPEND_RESTORED, SUSPEND_CONTINUED or
 * SUSPEND_ABORTED.
 *
 * Callbacks run on a helper thread of the library (SUSPEND_CONTEXT_THREAD,
 * the default: they may lock, allocate and do I/O), or inside the signal
 * handler (SUSPEND_CONTEXT_SIGNAL: no helper thread; async-signal-safe work
 * only).
 *
 * Link with -lsuspend_client (pkg-config --libs suspend-client).
 */
#ifndef SUSPEND_H
#define SUSPEND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* on_suspend's answers. */
#define SUSPEND_READY 0   /* suspend me now */
#define SUSPEND_BUSY 1    /* not now, try later */
#define SUSPEND_REFUSE 2  /* do not suspend me */

/* on_resume's reasons. */
#define SUSPEND_RESTORED 0  /* restored from an image */
#define SUSPEND_CONTINUED 1 /* never stopped (dry run, or left running) */
#define SUSPEND_ABORTED 2   /* the suspension failed after READY */

/* struct suspend_request.flags */
#define SUSPEND_REQUEST_WAIT 1u          /* requester waits for critical sections */
#define SUSPEND_REQUEST_DRY_RUN 2u       /* handshake only */
#define SUSPEND_REQUEST_LEAVE_RUNNING 4u /* keep running after the image */

/* struct suspend_options.context */
#define SUSPEND_CONTEXT_THREAD 0u
#define SUSPEND_CONTEXT_SIGNAL 1u

/* Default signals: 44 (suspend) and 43 (resume), SIGRTMIN+10 and +9 with
 * glibc: the middle of the real-time range, which runtimes leave alone (the
 * JVM's networking takes 62). */
#define SUSPEND_DEFAULT_SUSPEND_SIGNAL 44
#define SUSPEND_DEFAULT_RESUME_SIGNAL 43

struct suspend_request {
	uint64_t id;         /* also in the matching suspend_resume_info */
	uint32_t flags;      /* SUSPEND_REQUEST_* */
	uint32_t timeout_ms; /* how long the requester waits in all */
};

struct suspend_resume_info {
	uint64_t request_id;
	uint32_t reason;     /* SUSPEND_RESTORED, _CONTINUED or _ABORTED */
	uint32_t reserved;
};

struct suspend_handlers {
	/* Returns SUSPEND_READY, SUSPEND_BUSY or SUSPEND_REFUSE. NULL: always ready. */
	int (*on_suspend)(const struct suspend_request *request, void *data);
	/* Runs after every suspension this process agreed to. May be NULL. */
	void (*on_resume)(const struct suspend_resume_info *info, void *data);
	void *data; /* passed to both */
};

struct suspend_options {
	int suspend_signal; /* 0: SUSPEND_DEFAULT_SUSPEND_SIGNAL; else 34..64 */
	int resume_signal;  /* 0: SUSPEND_DEFAULT_RESUME_SIGNAL; else 34..64 */
	uint32_t context;   /* SUSPEND_CONTEXT_THREAD or SUSPEND_CONTEXT_SIGNAL */
	uint32_t reserved;  /* zero */
};

/*
 * Registers this process. Returns 0 when the agent acknowledged, 1 when no
 * agent runs now (it picks the registration up when it starts), or a
 * negative errno: -EINVAL bad signals, -EALREADY registered already,
 * -EPROTO the agent refused, other values from a failed system call.
 */
int suspend_register(const struct suspend_handlers *handlers);
int suspend_register_with(const struct suspend_handlers *handlers,
			  const struct suspend_options *options);

/* Withdraws the registration: 0, or -ENOENT when not registered. */
int suspend_unregister(void);

/* 1 when this process is registered (a forked child is not). */
int suspend_is_registered(void);

/* The suspend signal this process registered with, 0 when not registered. */
int suspend_signal_number(void);

/*
 * Critical sections: while one is active anywhere in the process, requests
 * are answered SUSPEND_BUSY (or held until the last one ends, when the
 * requester waits). Nestable and async-signal-safe.
 */
void suspend_critical_enter(void);
void suspend_critical_leave(void);

/* A static description of a value returned by this library. */
const char *suspend_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* SUSPEND_H */
