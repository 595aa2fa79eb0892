/* The vDSO's functions, called through glibc (which cached their addresses
 * at start): clock_gettime, gettimeofday, time, getcpu, clock_getres. They
 * still work after the resume, agree with the system calls they stand for,
 * and run forward: the wall clock not before the suspend, the monotonic
 * clock not before it either on the same boot, and never backwards between
 * calls.
 *
 * It says where its vDSO is after the resume: "vdso in place" when the
 * address its auxiliary vector names (AT_SYSINFO_EHDR, the one glibc read
 * its functions from) is still the kernel's [vdso], "vdso proxied" when a
 * copy stands in for it there (the resume put this kernel's vDSO
 * elsewhere: another kernel's, or SUSPEND_FAULT_VDSO_PROXY=1). Either way
 * an ELF header must be at that address. */
#include "feature.h"

#include <sched.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>

static int64_t ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void boot_id(char *out, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	out[0] = 0;
	if (f) {
		if (!fgets(out, (int)len, f))
			out[0] = 0;
		fclose(f);
	}
}

/* Whether a mapping holds addr, and its /proc/self/maps name ("" for an
 * anonymous one). */
static int mapping_name(unsigned long addr, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	out[0] = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, end;
		int name_at = 0;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &name_at) < 2)
			continue;
		if (addr < start || addr >= end)
			continue;
		snprintf(out, len, "%s", name_at ? line + name_at : "");
		out[strcspn(out, "\n")] = 0;
		found = 1;
		break;
	}
	fclose(f);
	return found;
}

/* Every clock through glibc (the vDSO), checked against its system call. */
static void clocks_agree(const char *when)
{
	const clockid_t ids[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
				  CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME_COARSE };
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		struct timespec v = { 0 }, s = { 0 };
		CHECK(clock_gettime(ids[i], &v) == 0, "%s: clock %d: %s", when, (int)ids[i],
		      strerror(errno));
		CHECK(syscall(SYS_clock_gettime, ids[i], &s) == 0, "%s: clock %d (syscall)", when,
		      (int)ids[i]);
		int64_t d = ns(v) - ns(s);
		CHECK(d > -1000000000 && d < 1000000000,
		      "%s: clock %d: the vDSO's %lld.%09ld, the syscall's %lld.%09ld", when,
		      (int)ids[i], (long long)v.tv_sec, v.tv_nsec, (long long)s.tv_sec, s.tv_nsec);
		struct timespec r = { 0 };
		CHECK(clock_getres(ids[i], &r) == 0 && ns(r) > 0 && ns(r) <= 10000000,
		      "%s: clock %d: resolution %lld.%09ld", when, (int)ids[i],
		      (long long)r.tv_sec, r.tv_nsec);
	}
	struct timeval tv = { 0 };
	struct timespec rt = { 0 };
	CHECK(gettimeofday(&tv, NULL) == 0, "%s: gettimeofday", when);
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &rt);
	CHECK(tv.tv_sec >= rt.tv_sec - 1 && tv.tv_sec <= rt.tv_sec + 1,
	      "%s: gettimeofday %lld, the syscall's realtime %lld", when, (long long)tv.tv_sec,
	      (long long)rt.tv_sec);
	time_t t = time(NULL);
	CHECK(t >= rt.tv_sec - 1 && t <= rt.tv_sec + 1, "%s: time %lld, realtime %lld", when,
	      (long long)t, (long long)rt.tv_sec);
	unsigned cpu = ~0u, node = ~0u;
	CHECK(getcpu(&cpu, &node) == 0, "%s: getcpu: %s", when, strerror(errno));
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	CHECK(cpu < (unsigned)cpus, "%s: getcpu says cpu %u of %ld", when, cpu, cpus);
	/* Never backwards, call after call. */
	struct timespec prev = { 0 };
	clock_gettime(CLOCK_MONOTONIC, &prev);
	for (int i = 0; i < 10000; i++) {
		struct timespec now = { 0 };
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ns(now) < ns(prev)) {
			CHECK(0, "%s: CLOCK_MONOTONIC went back by %lld ns at call %d", when,
			      (long long)(ns(prev) - ns(now)), i);
			break;
		}
		prev = now;
	}
}

int main(void)
{
	feature_begin("restored");
	unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);
	if (!ehdr)
		feature_skip("no vDSO (booted with vdso=0)");
	clocks_agree("before");
	if (feature_failures)
		feature_setup_failed("the clocks before the suspend");
	struct timespec real0, mono0;
	clock_gettime(CLOCK_REALTIME, &real0);
	clock_gettime(CLOCK_MONOTONIC, &mono0);
	struct timeval tv0;
	gettimeofday(&tv0, NULL);
	time_t t0 = time(NULL);
	char boot0[64], boot1[64];
	boot_id(boot0, sizeof boot0);

	feature_suspend_here();

	clocks_agree("after");
	struct timespec real1, mono1;
	clock_gettime(CLOCK_REALTIME, &real1);
	clock_gettime(CLOCK_MONOTONIC, &mono1);
	struct timeval tv1;
	gettimeofday(&tv1, NULL);
	time_t t1 = time(NULL);
	CHECK(ns(real1) >= ns(real0), "CLOCK_REALTIME before the suspend %lld, after %lld",
	      (long long)ns(real0), (long long)ns(real1));
	CHECK(tv1.tv_sec >= tv0.tv_sec, "gettimeofday before %lld, after %lld",
	      (long long)tv0.tv_sec, (long long)tv1.tv_sec);
	CHECK(t1 >= t0, "time before %lld, after %lld", (long long)t0, (long long)t1);
	boot_id(boot1, sizeof boot1);
	if (boot0[0] && strcmp(boot0, boot1) == 0)
		CHECK(ns(mono1) >= ns(mono0), "CLOCK_MONOTONIC before the suspend %lld, after %lld",
		      (long long)ns(mono0), (long long)ns(mono1));

	CHECK(getauxval(AT_SYSINFO_EHDR) == ehdr, "AT_SYSINFO_EHDR was %#lx, is %#lx", ehdr,
	      getauxval(AT_SYSINFO_EHDR));
	char name[256];
	int mapped = mapping_name(ehdr, name, sizeof name);
	CHECK(mapped, "nothing is mapped at AT_SYSINFO_EHDR %#lx", ehdr);
	CHECK(name[0] == 0 || strcmp(name, "[vdso]") == 0,
	      "the mapping at AT_SYSINFO_EHDR %#lx is %s", ehdr, name);
	if (mapped)
		CHECK(memcmp((const void *)ehdr, "\177ELF", 4) == 0, "no ELF header at %#lx", ehdr);
	printf("vdso %s\n", strcmp(name, "[vdso]") == 0 ? "in place" : "proxied");
	return feature_done();
}
