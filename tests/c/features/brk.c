/* The break raised by 1 MiB and the new memory filled: after the resume
 * sbrk(0) is the same and the pattern intact. */
#include "feature.h"

#include <malloc.h>
#include <stdint.h>

#define SIZE (1024 * 1024)

int main(void)
{
	/* malloc's own heap gets room to spare first, so that later
	 * allocations (the client's) do not move the break. */
	mallopt(M_TOP_PAD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	free(malloc(1 << 20));
	feature_begin("restored");
	unsigned char *p = sbrk(SIZE);
	if (p == (void *)-1)
		feature_setup_failed("sbrk");
	void *end = sbrk(0);
	for (int i = 0; i < SIZE; i++)
		p[i] = (unsigned char)(i * 11 + 9);

	feature_suspend_here();

	void *now = sbrk(0);
	CHECK(now == end, "the break at %p, was %p", now, end);
	int intact = 1;
	for (int i = 0; i < SIZE; i++)
		intact &= p[i] == (unsigned char)(i * 11 + 9);
	CHECK(intact, "the pattern changed");
	CHECK((uintptr_t)end - (uintptr_t)p == SIZE, "1 MiB from %p to %p", (void *)p, end);
	return feature_done();
}
