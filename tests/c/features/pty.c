/* A pseudo-terminal pair the process holds both ends of (master from
 * /dev/ptmx, its slave /dev/pts/N) with bytes waiting: an image cannot make
 * that pair again (opening /dev/ptmx makes a new one), so it is refused by
 * name; held, the pair stays connected. */
#include "feature.h"

#include <fcntl.h>
#include <termios.h>

int main(void)
{
	feature_begin("refused /dev/ptmx");
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) || unlockpt(master))
		feature_setup_failed("posix_openpt");
	int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	struct termios raw;
	if (slave < 0 || tcgetattr(slave, &raw))
		feature_setup_failed("the slave");
	cfmakeraw(&raw); /* no echo, no line editing */
	if (tcsetattr(slave, TCSANOW, &raw) || write(master, "hello\n", 6) != 6)
		feature_setup_failed("raw mode");

	feature_suspend_here();

	char buf[16] = { 0 };
	CHECK(read(slave, buf, sizeof buf - 1) == 6 && !strcmp(buf, "hello\n"),
	      "the slave reads %s", buf);
	CHECK(write(slave, "back\n", 5) == 5, "write to the slave");
	memset(buf, 0, sizeof buf);
	CHECK(read(master, buf, sizeof buf - 1) > 0 && strstr(buf, "back"), "the master reads %s",
	      buf);
	return feature_done();
}
