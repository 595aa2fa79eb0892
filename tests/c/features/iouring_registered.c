/* An io_uring nothing in /proc shows: made with IORING_SETUP_NO_MMAP (its
 * rings in the process's own pages, so no [io_uring] mapping), its fd
 * registered with IORING_REGISTER_RING_FDS and closed (no fd), used only
 * through IORING_ENTER_REGISTERED_RING with NOPs (no iou-* worker). A
 * resume from an image would come back without it, and held its requests
 * would write into memory released meanwhile: refused both ways, by the
 * task iterator's reading of the thread's io_uring_task. Unsuspended
 * (FEATURE_NO_SUSPEND=1), the check shows the ring still works.
 *
 * Raw system calls and the uapi layouts written out here: no liburing,
 * and the build host's headers may predate NO_MMAP (6.5). */
#include "feature.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define SETUP_NO_MMAP (1U << 14)
#define ENTER_GETEVENTS (1U << 0)
#define ENTER_REGISTERED_RING (1U << 4)
#define REGISTER_RING_FDS 20
#define OP_NOP 0
#define ENTRIES 4

struct sq_offsets {
	uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
	uint64_t user_addr;
};

struct cq_offsets {
	uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
	uint64_t user_addr;
};

struct params {
	uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
	uint32_t resv[3];
	struct sq_offsets sq_off;
	struct cq_offsets cq_off;
};

struct sqe {
	uint8_t opcode, flags;
	uint16_t ioprio;
	int32_t fd;
	uint64_t off, addr;
	uint32_t len, op_flags;
	uint64_t user_data;
	uint64_t rest[3];
};

struct cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

struct rsrc_update {
	uint32_t offset, resv;
	uint64_t data;
};

_Static_assert(sizeof(struct params) == 120, "io_uring_params");
_Static_assert(sizeof(struct sqe) == 64, "io_uring_sqe");
_Static_assert(sizeof(struct cqe) == 16, "io_uring_cqe");

static struct params p;
static unsigned char *rings;
static struct sqe *sqes;
static unsigned ring_index;

static uint32_t *at(uint32_t offset)
{
	return (uint32_t *)(rings + offset);
}

/* Submits a NOP with `tag` through the registered ring and waits for its
 * completion: 0, or -1 with the errno of io_uring_enter, or -2 where the
 * completion is not the NOP's. */
static int nop(uint64_t tag)
{
	uint32_t tail = *at(p.sq_off.tail);
	uint32_t slot = tail & *at(p.sq_off.ring_mask);
	memset(&sqes[slot], 0, sizeof sqes[slot]);
	sqes[slot].opcode = OP_NOP;
	sqes[slot].user_data = tag;
	at(p.sq_off.array)[slot] = slot;
	__atomic_store_n(at(p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	long n = syscall(__NR_io_uring_enter, ring_index, 1, 1,
			 ENTER_GETEVENTS | ENTER_REGISTERED_RING, NULL, 0);
	if (n != 1)
		return -1;
	uint32_t head = *at(p.cq_off.head);
	if (head == __atomic_load_n(at(p.cq_off.tail), __ATOMIC_ACQUIRE))
		return -2;
	struct cqe *c = (struct cqe *)(rings + p.cq_off.cqes) + (head & *at(p.cq_off.ring_mask));
	int good = c->user_data == tag && c->res == 0;
	__atomic_store_n(at(p.cq_off.head), head + 1, __ATOMIC_RELEASE);
	return good ? 0 : -2;
}

/* Whether the process has an fd, mapping or thread that shows an io_uring. */
static int shows_in_proc(void)
{
	char line[512];
	int shown = 0;
	FILE *maps = fopen("/proc/self/maps", "r");
	while (maps && fgets(line, sizeof line, maps))
		shown |= strstr(line, "io_uring") != NULL;
	if (maps)
		fclose(maps);
	for (int fd = 0; fd < 1024; fd++) {
		char path[64], target[256];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n > 0) {
			target[n] = 0;
			shown |= strstr(target, "io_uring") != NULL;
		}
	}
	return shown;
}

int main(void)
{
	FILE *disabled = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int off = 0;
	if (disabled) {
		if (fscanf(disabled, "%d", &off) != 1)
			off = 0;
		fclose(disabled);
	}
	if (off == 2)
		feature_skip("io_uring is disabled here (kernel.io_uring_disabled=2)");

	/* One page each: a NO_MMAP ring's memory must not span pages of
	 * different folios (6.5–6.12). */
	long page = sysconf(_SC_PAGESIZE);
	void *mem = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		feature_setup_failed("mmap");
	rings = mem;
	sqes = (struct sqe *)((unsigned char *)mem + page);
	p.flags = SETUP_NO_MMAP;
	p.sq_off.user_addr = (uint64_t)(uintptr_t)sqes;
	p.cq_off.user_addr = (uint64_t)(uintptr_t)rings;
	int fd = (int)syscall(__NR_io_uring_setup, ENTRIES, &p);
	if (fd < 0 && errno == ENOSYS)
		feature_skip("no io_uring in this kernel (ENOSYS)");
	if (fd < 0 && errno == EPERM)
		feature_skip("io_uring is not allowed here (EPERM: kernel.io_uring_disabled)");
	if (fd < 0 && errno == EINVAL)
		feature_skip("no IORING_SETUP_NO_MMAP in this kernel (EINVAL; 6.5+)");
	if (fd < 0)
		feature_setup_failed("io_uring_setup");
	feature_begin("refused-always an io_uring ring it registered");

	struct rsrc_update reg = { .offset = UINT32_MAX, .data = (uint64_t)fd };
	if (syscall(__NR_io_uring_register, fd, REGISTER_RING_FDS, &reg, 1) != 1)
		feature_setup_failed("IORING_REGISTER_RING_FDS");
	ring_index = reg.offset;
	if (close(fd))
		feature_setup_failed("closing the ring's fd");
	int done = nop(1);
	if (done == -1)
		feature_setup_failed("a NOP through the registered ring");
	if (done == -2) {
		errno = EPROTO;
		feature_setup_failed("the NOP's completion");
	}
	if (shows_in_proc()) {
		errno = EEXIST;
		feature_setup_failed("the ring still shows in /proc (fd or mapping)");
	}

	feature_suspend_here();

	done = nop(2);
	CHECK(done == 0, "a NOP through registered ring %u after the resume: %s", ring_index,
	      done == -1 ? strerror(errno) : "not its completion");
	return feature_done();
}
