/* A 64 KiB SysV shared memory segment, attached and filled with a pattern,
 * then marked for removal (IPC_RMID: nothing left behind): after the resume
 * the pattern is intact. */
#include "feature.h"

#include <sys/ipc.h>
#include <sys/shm.h>

#define SIZE (64 * 1024)

int main(void)
{
	feature_begin("restored");
	int id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
	if (id < 0)
		feature_setup_failed("shmget");
	unsigned char *m = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL); /* gone once detached, whatever happens */
	if (m == (void *)-1)
		feature_setup_failed("shmat");
	for (int i = 0; i < SIZE; i++)
		m[i] = (unsigned char)(i * 29 + 3);

	feature_suspend_here();

	int intact = 1;
	for (int i = 0; i < SIZE; i++)
		intact &= m[i] == (unsigned char)(i * 29 + 3);
	CHECK(intact, "the pattern changed");
	shmdt(m);
	return feature_done();
}
