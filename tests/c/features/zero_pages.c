/* Memory that is mostly zeros, which an image does not store (its pages are
 * holes in pages.img) yet gives back exactly:
 * - 32 MiB anonymous with MADV_HUGEPAGE, one byte written every 2 MiB (with
 *   transparent huge pages, 16 huge pages resident, all zeros but a byte);
 * - 8 MiB anonymous written with zeros (2,048 resident zero pages);
 * - 4 MiB anonymous, even pages a pattern and odd pages zeros written;
 * - a 16-page file mapped MAP_PRIVATE, its bytes 0xab, pages 0-7 written with
 *   zeros in memory only: they must come back zeros, not the file's bytes.
 * The image's page file is checked by `zero_pages_are_not_stored`. */
#include "feature.h"

#include <fcntl.h>
#include <sys/mman.h>

#define MIB (1024L * 1024)

static unsigned char *map_anon(long len, long align)
{
	unsigned char *m = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		feature_setup_failed("mmap");
	unsigned long at = ((unsigned long)m + align - 1) & ~(unsigned long)(align - 1);
	return (unsigned char *)at;
}

static unsigned char pattern(long i)
{
	return (unsigned char)(i * 13 + 7) | 1;
}

int main(void)
{
	feature_begin("restored");
	long page = sysconf(_SC_PAGESIZE);

	unsigned char *huge = map_anon(32 * MIB, 2 * MIB);
	madvise(huge, 32 * MIB, MADV_HUGEPAGE); /* advice: fine if refused */
	for (long i = 0; i < 16; i++)
		huge[i * 2 * MIB + 5] = (unsigned char)(i + 1);

	unsigned char *zeros = map_anon(8 * MIB, page);
	memset(zeros, 0, 8 * MIB);

	unsigned char *mixed = map_anon(4 * MIB, page);
	for (long p = 0; p < 4 * MIB / page; p++)
		for (long i = 0; i < page; i++)
			mixed[p * page + i] = p % 2 ? 0 : pattern(p * page + i);

	char path[64];
	snprintf(path, sizeof path, "/tmp/feature-zero-pages-%d", (int)getpid());
	long flen = 16 * page;
	unsigned char *ab = malloc(flen);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!ab || fd < 0)
		feature_setup_failed("a file of 16 pages");
	memset(ab, 0xab, flen);
	if (write(fd, ab, flen) != flen)
		feature_setup_failed("writing a file of 16 pages");
	unsigned char *file = mmap(NULL, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		feature_setup_failed("mmap of the file");
	close(fd);
	memset(file, 0, 8 * page);

	feature_suspend_here();

	long wrong = -1;
	for (long i = 0; i < 32 * MIB && wrong < 0; i++)
		if (huge[i] != (i % (2 * MIB) == 5 ? (unsigned char)(i / (2 * MIB) + 1) : 0))
			wrong = i;
	CHECK(wrong < 0, "the huge-page mapping differs at byte %ld: %#x", wrong,
	      wrong < 0 ? 0 : huge[wrong]);
	wrong = -1;
	for (long i = 0; i < 8 * MIB && wrong < 0; i++)
		if (zeros[i])
			wrong = i;
	CHECK(wrong < 0, "the zeroed mapping differs at byte %ld: %#x", wrong,
	      wrong < 0 ? 0 : zeros[wrong]);
	wrong = -1;
	for (long i = 0; i < 4 * MIB && wrong < 0; i++)
		if (mixed[i] != ((i / page) % 2 ? 0 : pattern(i)))
			wrong = i;
	CHECK(wrong < 0, "the mixed mapping differs at byte %ld (page %ld): %#x", wrong,
	      wrong / page, wrong < 0 ? 0 : mixed[wrong]);
	wrong = -1;
	for (long i = 0; i < flen && wrong < 0; i++)
		if (file[i] != (i < 8 * page ? 0 : 0xab))
			wrong = i;
	CHECK(wrong < 0, "the private file mapping differs at byte %ld (page %ld): %#x", wrong,
	      wrong / page, wrong < 0 ? 0 : file[wrong]);
	unlink(path);
	return feature_done();
}
