/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The frame pool: a worker's UMEM area, its stack of free frames and the
 * accounting of where every frame is.  The AF_XDP sockets on the UMEM and
 * their rings are lib/xdp_port.c's; this file never touches a ring or a
 * socket, and the ports move frames between the places below only through
 * the umem__ transitions, so the invariant is kept here.
 *
 * Each worker owns one UMEM and every port (interface, queue) the worker
 * serves is an AF_XDP socket on that UMEM (XDP_SHARED_UMEM), with its own
 * FILL/COMPLETION pair as the kernel requires per (netdev, queue).  A frame
 * received on the ingress port is therefore transmitted from the very same
 * memory on the egress port: forwarding never copies a payload.  Since the
 * worker owns the UMEM alone, the pool is a plain stack: no locks, no atomics.
 *
 * Every frame is always in exactly one of four places, and
 *     free + kernel_rx + kernel_tx + held == nr_frames
 * is checked by umem__check():
 *   free       on the pool's stack
 *   kernel_rx  given to a FILL ring, not yet read back from that port's RX ring
 *   kernel_tx  put on a TX ring, not yet read back from a COMPLETION ring
 *   held       owned by the worker or a service between RX and TX/free
 * A frame is never on a FILL ring and a TX ring at once, nor on two FILL
 * rings, because it leaves the pool before either and returns only from RX
 * or COMPLETION.
 */
#ifndef FERRY_UMEM_H
#define FERRY_UMEM_H

#include <stdbool.h>
#include <stdint.h>

#include <xdp/xsk.h>

struct umem {
	void *area;
	uint64_t size;
	uint32_t frame_size;
	uint32_t nr_frames;
	struct xsk_umem *xumem;
	/* the rings created with the UMEM; taken over by the first port */
	struct xsk_ring_prod fill0;
	struct xsk_ring_cons comp0;
	bool rings_taken;
	/* buffer pool */
	uint64_t *stack;
	uint32_t nr_free;
	/*
	 * Frames port__refill() leaves in the pool for packets that do not come
	 * from a FILL ring (replies handed over by another worker), so the FILL
	 * rings cannot take every free frame.
	 */
	uint32_t fill_reserve;
	/* accounting (see above) */
	uint32_t kernel_rx;
	uint32_t kernel_tx;
	uint32_t held;
};

/* A frame of the pool and the length of the packet in it (an RX or TX descriptor's content). */
struct frame_ref {
	uint64_t addr;           /* UMEM address of the packet data */
	uint32_t len;
};

int umem__create(struct umem **out, uint32_t nr_frames, uint32_t frame_size, uint32_t ring_size);
/* Returns -EBUSY while ports still use it. */
int umem__destroy(struct umem *u);
/* Returns a frame held by the worker to the pool. */
void umem__free(struct umem *u, uint64_t addr);
/* A frame for a service that emits a new packet (becomes held); false when empty. */
bool umem__alloc(struct umem *u, uint64_t *addr);
static inline void *umem__data(const struct umem *u, uint64_t addr)
{
	return xsk_umem__get_data(u->area, addr);
}
/* 0 when the accounting invariant holds, else -EFAULT (and logs the figures). */
int umem__check(const struct umem *u, const char *who);

/*
 * The transitions the ports make (lib/xdp_port.c), each with its side of
 * the accounting.  Inline: they are the packet path's.
 */
static inline uint64_t umem__frame_base(const struct umem *u, uint64_t addr)
{
	return addr - addr % u->frame_size;
}

/* Free frames a FILL ring may take: all but the pool's fill_reserve. */
static inline uint32_t umem__fill_avail(const struct umem *u)
{
	return u->nr_free > u->fill_reserve ? u->nr_free - u->fill_reserve : 0;
}

/* A free frame for a FILL ring; the caller gives n of them with umem__to_kernel_rx(). */
static inline uint64_t umem__pop_for_fill(struct umem *u)
{
	return u->stack[--u->nr_free];
}

static inline void umem__to_kernel_rx(struct umem *u, uint32_t n)
{
	u->kernel_rx += n;
}

/* A frame read from an RX ring: the worker holds it now. */
static inline void umem__rx_to_held(struct umem *u)
{
	u->kernel_rx--;
	u->held++;
}

/* n held frames went on a TX ring. */
static inline void umem__held_to_kernel_tx(struct umem *u, uint32_t n)
{
	u->held -= n;
	u->kernel_tx += n;
}

/* A frame read from a COMPLETION ring back to the pool; n of them with umem__tx_completed(). */
static inline void umem__push_completed(struct umem *u, uint64_t addr)
{
	u->stack[u->nr_free++] = umem__frame_base(u, addr);
}

static inline void umem__tx_completed(struct umem *u, uint32_t n)
{
	u->kernel_tx -= n;
}

#endif /* FERRY_UMEM_H */
