/* A thread keeps a known pattern in ymm8..ymm15 (full 256 bits), comparing
 * them with memory in a loop of inline asm: after the resume it still runs,
 * and no register ever differed. */
#include "feature.h"

#include <pthread.h>
#include <stdint.h>

static uint8_t pattern[8 * 32] __attribute__((aligned(32)));
static volatile int stop;
static volatile long rounds;
static int changed = -1;

/* AVX (not AVX2): a 256-bit xor with memory, then vptest for all zero. */
#define LOAD(n) "vmovdqa (" #n "-8)*32(%[p]), %%ymm" #n "\n"
#define SAME(n)                                          \
	"vxorps (" #n "-8)*32(%[p]), %%ymm" #n ", %%ymm0\n" \
	"vptest %%ymm0, %%ymm0\n"                            \
	"jnz 2f\n"

static void *keeper(void *arg)
{
	(void)arg;
	int differed;
	__asm__ volatile(LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
			 "1:\n"
			 SAME(8) SAME(9) SAME(10) SAME(11) SAME(12) SAME(13) SAME(14) SAME(15)
			 "lock incq (%[rounds])\n"
			 "pause\n"
			 "cmpl $0, (%[stop])\n"
			 "je 1b\n"
			 "xor %[d], %[d]\n"
			 "jmp 3f\n"
			 "2: mov $1, %[d]\n"
			 "3: vzeroupper\n"
			 : [d] "=&r"(differed)
			 : [p] "r"(pattern), [rounds] "r"(&rounds), [stop] "r"(&stop)
			 : "xmm0", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
			   "xmm15", "cc", "memory");
	changed = differed;
	return NULL;
}

int main(void)
{
	feature_begin("restored");
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx"))
		feature_skip("no AVX on this CPU");
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (uint8_t)(i * 37 + 11);
	pthread_t t;
	if (pthread_create(&t, NULL, keeper, NULL))
		feature_setup_failed("pthread_create");
	while (rounds == 0)
		usleep(1000);

	feature_suspend_here();

	long seen = rounds;
	for (int i = 0; i < 500 && rounds == seen; i++)
		usleep(10000);
	CHECK(rounds > seen, "the thread does not loop any more (%ld rounds)", seen);
	stop = 1;
	pthread_join(t, NULL);
	CHECK(changed == 0, "a ymm register lost its pattern (changed %d, %ld rounds)", changed,
	      (long)rounds);
	return feature_done();
}
