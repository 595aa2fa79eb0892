/* Rounding upward (x87 and SSE, as fesetround(FE_UPWARD) sets), flush-to-zero
 * in MXCSR, x87 precision set to double: after the resume MXCSR and the x87
 * control word read back the same, and a denormal result is still flushed. */
#include "feature.h"

#include <xmmintrin.h>

#define MXCSR_UP 0x4000u  /* rounding control: toward +inf */
#define MXCSR_FTZ 0x8000u /* flush to zero */
#define CW_RC 0x0c00      /* x87 rounding control, */
#define CW_UP 0x0800      /* toward +inf */
#define CW_PC 0x0300      /* x87 precision control, */
#define CW_DOUBLE 0x0200  /* 53 bits */

static unsigned short x87_cw(void)
{
	unsigned short cw;
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	return cw;
}

int main(void)
{
	feature_begin("restored");
	unsigned short cw = (x87_cw() & ~(CW_RC | CW_PC)) | CW_UP | CW_DOUBLE;
	__asm__ volatile("fldcw %0" : : "m"(cw));
	_mm_setcsr((_mm_getcsr() & ~0x6000u) | MXCSR_UP | MXCSR_FTZ);
	unsigned mxcsr_was = _mm_getcsr() & ~0x3fu; /* less the sticky exception flags */
	unsigned short cw_was = x87_cw();
	volatile double tiny = 1e-300, big = 1e10, one = 1, three = 3;
	double third_up = one / three;
	if (cw_was != cw || (mxcsr_was & 0xe000) != (MXCSR_UP | MXCSR_FTZ) || tiny / big != 0)
		feature_setup_failed("the modes read back otherwise");

	feature_suspend_here();

	unsigned mxcsr_now = _mm_getcsr() & ~0x3fu;
	unsigned short cw_now = x87_cw();
	CHECK(mxcsr_now == mxcsr_was, "MXCSR %#x, was %#x", mxcsr_now, mxcsr_was);
	CHECK(cw_now == cw_was, "x87 control word %#x, was %#x", cw_now, cw_was);
	double flushed = tiny / big, third = one / three;
	CHECK(flushed == 0, "1e-300 / 1e10 is %g, not flushed to 0", flushed);
	CHECK(third == third_up, "1/3 is %.17g, was %.17g rounded upward", third, third_up);
	return feature_done();
}
