/* A process that keeps writing while it is saved: 64 MiB written once,
 * then a thread that rewrites eight pages a millisecond, in order (every
 * sixteenth step discards its page instead, MADV_DONTNEED), noting each
 * step — or, given `fast`, as fast as it can (every page is written again
 * after the pre-copy copied it, and must be copied again at the freeze). Saved with --leave-running, its memory is pre-copied while it
 * runs; after a resume every page must hold what the last step that
 * touched it left: none older (a page saved before it was written again),
 * none zero unless it was discarded, none with data if it was. */
#include "feature.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGES 16384
#define WORDS (4096 / 8)

static uint64_t *region;
static _Atomic uint64_t last;
static atomic_int stop;
static int fast;

static uint64_t word(uint64_t step, uint64_t i)
{
	uint64_t x = (step + 1) * 0x9E3779B97F4A7C15ull ^ (i * 0xBF58476D1CE4E5B9ull);
	return x ^ (x >> 31);
}

static int discards(uint64_t step)
{
	return step >= PAGES && step % 16 == 0;
}

static void step(uint64_t j)
{
	uint64_t *page = region + (j % PAGES) * WORDS;
	if (discards(j)) {
		madvise(page, 4096, MADV_DONTNEED);
	} else {
		for (uint64_t i = 0; i < WORDS; i++)
			page[i] = word(j, i);
	}
	atomic_store(&last, j);
}

static void *writer(void *arg)
{
	(void)arg;
	for (uint64_t j = atomic_load(&last) + 1; !atomic_load(&stop); j++) {
		step(j);
		if (!fast && j % 8 == 0) {
			struct timespec tick = { 0, 1000000 };
			nanosleep(&tick, NULL);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	fast = argc > 1 && !strcmp(argv[1], "fast");
	feature_begin("restored");
	region = mmap(NULL, (size_t)PAGES * 4096, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		feature_setup_failed("mmap");
	for (uint64_t j = 0; j < PAGES; j++)
		step(j);
	pthread_t thread;
	if (pthread_create(&thread, NULL, writer, NULL))
		feature_setup_failed("pthread_create");
	feature_suspend_here();
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	uint64_t upto = atomic_load(&last);
	int wrong = 0;
	for (uint64_t p = 0; p < PAGES; p++) {
		/* The last step at or before `upto` that touched page p. */
		uint64_t j = upto - (upto + PAGES - p) % PAGES;
		const uint64_t *page = region + p * WORDS;
		for (uint64_t i = 0; i < WORDS; i++) {
			uint64_t want = discards(j) ? 0 : word(j, i);
			if (page[i] != want) {
				if (wrong++ < 5)
					printf("FAIL page %lu word %lu: %#lx, step %lu left %#lx "
					       "(steps done: %lu)\n",
					       (unsigned long)p, (unsigned long)i,
					       (unsigned long)page[i], (unsigned long)j,
					       (unsigned long)want, (unsigned long)upto);
				break;
			}
		}
	}
	printf("steps done: %lu\n", (unsigned long)upto);
	CHECK(wrong == 0, "%d of %d pages hold what no step left there last", wrong, PAGES);
	return feature_done();
}
