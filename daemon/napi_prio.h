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
 * SCHED_FIFO N - 1 (1 when N is 1): above every normal task, just below the
 * workers.  A worker woken by its socket takes the CPU from the NAPI thread
 * at once, empties its rings and sleeps, and the NAPI thread goes on; the
 * NAPI thread never takes in more than the worker consumes, and what the
 * worker cannot take waits or is dropped in the device's ring, before
 * ferry's XDP program has run on it.  At the same priority as the workers
 * (ferry's first choice) the NAPI thread ran until the device's ring was
 * empty, which under an unpaced flood it seldom was: it spent the CPU
 * redirecting frames into a socket the starved worker could not empty,
 * and flows on the AF_XDP path delivered 0.18 to 0.79 of their peak
 * (benchmarks of 2026-12-07; 0.92 to 0.99 one below, for a somewhat
 * higher ping-pong p99 under moderate load: smaller batches).
 * Threads an operator has already made real-time are left as they are.
 * Each thread's scheduling is put back at stop.
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

/* The SCHED_FIFO priority of the NAPI threads under workers at worker_priority (non-zero). */
static inline uint32_t napi_prio__for_workers(uint32_t worker_priority)
{
	return worker_priority > 1 ? worker_priority - 1 : 1;
}

/*
 * Raises the NAPI threads of interface (ifindex, ifname) to SCHED_FIFO
 * `prio`, remembering what they had; logs what it did.  0 or -errno.
 */
int napi_prio__raise(struct napi_prio *np, int ifindex, const char *ifname, uint32_t prio);
/* Puts back the scheduling of every thread napi_prio__raise() changed. */
void napi_prio__restore(struct napi_prio *np);

#endif /* FERRY_NAPI_PRIO_H */
