/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Dropping capabilities once they are no longer needed.
 *
 * Capabilities belong to threads: capset() changes the calling thread's
 * sets only, and a thread starts with the sets of the thread that created
 * it.  So ferryd's main thread drops what it no longer needs once every
 * worker runs (CAPS_RUNNING), and each thread it started drops what it never
 * needs as its first act (CAPS_WORKER, or nothing at all for tap's writer).
 * The effective, permitted and inheritable sets are lowered, and with them
 * the ambient set; a capability dropped this way cannot come back.
 *
 * What the running daemon still needs:
 *   CAP_NET_ADMIN  detach XDP at stop; neighbour resolution requests
 *                  (RTM_NEWNEIGH with NTF_USE), sent by the workers too
 *   CAP_NET_RAW    AF_PACKET sockets of a tap a reload adds
 *   CAP_BPF        bpf() on the maps held open (kernels before 6.5 check it
 *                  for every command while unprivileged BPF is disabled)
 *   CAP_PERFMON    libxdp's new dispatcher (an extension program) when ferry
 *                  detaches from an interface other programs still use
 *   CAP_SYS_NICE   only with worker_priority: putting the NAPI threads
 *                  raised at start back to their scheduling at stop
 * Dropped: CAP_SYS_ADMIN (mounting bpffs at start), CAP_IPC_LOCK (UMEM
 * registration at start), CAP_SYS_NICE without worker_priority (the
 * workers' priority is set when they are created) and any other.
 */
#ifndef FERRY_CAPS_H
#define FERRY_CAPS_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/capability.h>

#define CAPS_BIT(c) (1ull << (c))
#define CAPS_RUNNING                                                                               \
	(CAPS_BIT(CAP_NET_ADMIN) | CAPS_BIT(CAP_NET_RAW) | CAPS_BIT(CAP_BPF) |                     \
	 CAPS_BIT(CAP_PERFMON))
#define CAPS_WORKER CAPS_BIT(CAP_NET_ADMIN)

/*
 * Lowers the calling thread's effective, permitted and inheritable sets to
 * those of `keep` it has; 0 or -errno.
 */
int caps__limit_thread(uint64_t keep);
/* Whether the calling thread has `cap` in its effective set. */
bool caps__effective(int cap);
/* The calling thread's effective and permitted sets, as bit masks; 0 or -errno. */
int caps__get_thread(uint64_t *effective, uint64_t *permitted);

#endif /* FERRY_CAPS_H */
