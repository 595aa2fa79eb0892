/* A POSIX timer with a high id (4,200 timers made and deleted first): it
 * comes back with that id where the kernel can be told ids
 * (PR_TIMER_CREATE_RESTORE_IDS, 6.15); elsewhere it is refused by name. */
#include "feature.h"

#include <signal.h>
#include <sys/prctl.h>

int main(void)
{
	int told = prctl(77 /* PR_TIMER_CREATE_RESTORE_IDS */, 2 /* GET */, 0, 0, 0) >= 0;
	feature_begin(told ? "restored" : "refused POSIX timer id");
	struct sigevent none = { .sigev_notify = SIGEV_NONE };
	timer_t id = 0;
	for (int i = 0; i < 4200; i++) {
		if (timer_create(CLOCK_MONOTONIC, &none, &id))
			feature_setup_failed("timer_create");
		timer_delete(id);
	}
	if (timer_create(CLOCK_MONOTONIC, &none, &id) || (long)id < 4096)
		feature_skip("this kernel does not hand out timer ids in order");
	struct itimerspec far = { .it_value = { 3600, 0 } };
	timer_settime(id, 0, &far, NULL);

	feature_suspend_here();

	struct itimerspec now;
	CHECK(timer_gettime(id, &now) == 0 && now.it_value.tv_sec > 3500, "timer %ld: %s",
	      (long)id, strerror(errno));
	return feature_done();
}
