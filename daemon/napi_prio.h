/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * worker_priority and the kernel threads that feed the workers.
 *
 * A real-time worker outranks a threaded NAPI (a kthread "napi/DEV-ID" at
 * normal priority) on its CPU: the NAPI thread, which runs ferry's XDP
 * program and copies frames into the AF_XDP socket, then runs only while
 * the worker sleeps, and whatever else runs at normal priority on that CPU
 * competes with it too.  Frames that arrive meanwhile wait in the device's
 * ring (256 on a veth), and what does not fit is dropped there: loss below
 * the worker's capacity, counted by the kernel, never by ferry.
 *
 * So with worker_priority N, ferryd runs its interfaces' NAPI threads at
 * SCHED_FIFO N too, the same priority: neither preempts the other, each
 * runs until it has nothing left to do (the worker until its rings are
 * empty, the NAPI thread until the device's ring is), and no normal task
 * comes between them.  Threads an operator has already made real-time are
 * left as they are.  Each thread's scheduling is put back at stop.
 */
#ifndef FERRY_NAPI_PRIO_H
#define FERRY_NAPI_PRIO_H

#include <stdint.h>
#include <sys/types.h>

#define NAPI_PRIO_MAX_THREADS 256

struct napi_prio {
	int nr;
	struct {
		pid_t pid;
		int policy;
		int priority;
		char ifname[16];
	} saved[NAPI_PRIO_MAX_THREADS];
};

/*
 * The pids of IFINDEX's NAPI threads (netdev netlink, NAPI_GET), at most
 * `max`: how many, 0 when its NAPI is not threaded, or -errno.
 */
int napi_prio__threads(int ifindex, pid_t *pids, int max);

/*
 * Raises the NAPI threads of interface (ifindex, ifname) to SCHED_FIFO
 * `prio`, remembering what they had; logs what it did.  0 or -errno.
 */
int napi_prio__raise(struct napi_prio *np, int ifindex, const char *ifname, uint32_t prio);
/* Puts back the scheduling of every thread napi_prio__raise() changed. */
void napi_prio__restore(struct napi_prio *np);

#endif /* FERRY_NAPI_PRIO_H */
