/* MADV_DONTFORK on 4 anonymous pages, MADV_DONTDUMP on another mapping: after
 * the resume smaps shows "dc" resp. "dd" on exactly those, the data is intact,
 * and a forked child cannot read the DONTFORK pages. */
#include "feature.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* Whether the VmFlags of the mapping holding ADDR have FLAG. */
static int has_flag(void *addr, const char *flag)
{
	char line[512];
	int in = 0, found = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long start, end;
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = start <= (unsigned long)addr && (unsigned long)addr < end;
		else if (in && !strncmp(line, "VmFlags:", 8))
			for (char *w = strtok(line + 8, " \n"); w; w = strtok(NULL, " \n"))
				found |= !strcmp(w, flag);
	}
	if (f)
		fclose(f);
	return found;
}

int main(void)
{
	feature_begin("restored");
	size_t page = sysconf(_SC_PAGESIZE);
	int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	char *dontfork = mmap(NULL, 4 * page, prot, flags, -1, 0);
	char *dontdump = mmap(NULL, 2 * page, prot, flags, -1, 0);
	if (dontfork == MAP_FAILED || dontdump == MAP_FAILED)
		feature_setup_failed("mmap");
	if (madvise(dontfork, 4 * page, MADV_DONTFORK) ||
	    madvise(dontdump, 2 * page, MADV_DONTDUMP))
		feature_setup_failed("madvise");
	for (int i = 0; i < 4; i++)
		dontfork[i * page] = 'a' + i;
	dontdump[0] = 'x';

	feature_suspend_here();

	CHECK(has_flag(dontfork, "dc") && has_flag(dontfork + 3 * page, "dc"),
	      "no dc on the DONTFORK pages");
	CHECK(!has_flag(dontfork, "dd"), "dd on the DONTFORK pages");
	CHECK(has_flag(dontdump, "dd") && has_flag(dontdump + page, "dd"),
	      "no dd on the DONTDUMP pages");
	CHECK(!has_flag(dontdump, "dc"), "dc on the DONTDUMP pages");
	for (int i = 0; i < 4; i++)
		CHECK(dontfork[i * page] == 'a' + i, "page %d holds %#x", i, dontfork[i * page]);
	CHECK(dontdump[0] == 'x', "the DONTDUMP page holds %#x", dontdump[0]);
	pid_t child = fork();
	if (child == 0)
		_exit(*(volatile char *)dontfork == 'a' ? 0 : 1);
	int status = 0;
	CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFSIGNALED(status) &&
		      WTERMSIG(status) == SIGSEGV,
	      "a child read the DONTFORK pages (status %#x)", status);
	return feature_done();
}
