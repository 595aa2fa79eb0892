/* A SysV semaphore raised with SEM_UNDO: the kernel keeps an adjustment
 * it applies when the process exits, and nothing but the semops
 * themselves sets it. A suspend that kills would apply it (the semaphore
 * drops back) and a resume could not give it back, so it is refused
 * before the freeze; held, the semaphore and the adjustment stay. */
#include "feature.h"

#include <sys/ipc.h>
#include <sys/sem.h>

static int id = -1;

static void remove_set(void)
{
	if (id >= 0)
		semctl(id, 0, IPC_RMID);
}

int main(void)
{
	id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	if (id < 0 && (errno == ENOSYS || errno == ENOSPC))
		feature_skip("no SysV semaphores here");
	if (id < 0)
		feature_setup_failed("semget");
	atexit(remove_set);
	feature_begin("refused semaphore undo");
	struct sembuf up = { .sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO };
	if (semop(id, &up, 1))
		feature_setup_failed("semop");

	feature_suspend_here();

	int value = semctl(id, 0, GETVAL);
	CHECK(value == 1, "the semaphore is %d, was 1", value);
	/* The adjustment is still there: a child (which starts with none)
	 * cannot take it, the process itself can take it back to 0. */
	struct sembuf down = { .sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO | IPC_NOWAIT };
	CHECK(semop(id, &down, 1) == 0, "semop -1: %s", strerror(errno));
	value = semctl(id, 0, GETVAL);
	CHECK(value == 0, "the semaphore is %d after taking it, want 0", value);
	return feature_done();
}
