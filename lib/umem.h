/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * UMEM, buffer pool and AF_XDP ports.
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

/*
 * How a port's socket is driven (config poll_mode).  Interrupt: the kernel
 * runs the queue from its interrupt and the worker sleeps in poll() when
 * idle.  Busy-poll: the socket prefers busy polling and the worker runs the
 * queue's NAPI itself with recvfrom()/sendto() (port__busy_poll()) instead
 * of sleeping.  Spin: the worker never sleeps and enters the kernel only
 * when a ring's need_wakeup flag asks for it.  Ordered from least to most
 * active.
 */
enum port_poll_mode {
	PORT_POLL_INTERRUPT = 0,
	PORT_POLL_BUSY,
	PORT_POLL_SPIN,
};

struct port_stats {
	uint64_t rx_packets;
	uint64_t tx_packets;
	uint64_t tx_ring_full;   /* frames that found the TX ring full (dropped) */
	uint64_t tx_kicks;       /* sendto() wake-ups */
	uint64_t fill_kicks;     /* recvfrom() wake-ups for an empty FILL ring */
	uint64_t rx_invalid;     /* RX descriptors that failed sanity checks */
	uint64_t busy_polls;     /* recvfrom()/sendto() that ran the queue's NAPI (busy-poll) */
	uint64_t drop_malformed; /* received, but the worker could not parse or classify it */
};

struct xsk_port {
	char ifname[16];
	int ifindex;
	uint32_t queue;
	uint16_t index;          /* ferry port index */
	bool zerocopy;           /* mode in effect, from XDP_OPTIONS */
	struct umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	uint32_t ring_size;
	uint32_t tx_in_flight;   /* on the TX ring or completed but not yet read back */
	enum port_poll_mode poll_mode;
	struct port_stats stats;
};

/* A received frame. */
struct xsk_frame {
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
 * Creates the AF_XDP socket of (ifname, queue) on the UMEM, with need_wakeup,
 * and inserts it into `xsks_map_fd` at key `queue`.  Logs the copy/zero-copy
 * mode in effect.  `force_copy` binds with XDP_COPY.
 */
int port__create(struct xsk_port **out, struct umem *u, const char *ifname, uint32_t queue,
		 uint16_t index, uint32_t ring_size, int xsks_map_fd, bool force_copy);
/* Removes it from the XSKMAP (so the XDP program falls back to XDP_PASS), then closes it. */
void port__destroy(struct xsk_port *p, int xsks_map_fd);

/*
 * Sets the port's poll mode.  For PORT_POLL_BUSY it sets SO_PREFER_BUSY_POLL,
 * SO_BUSY_POLL (`usecs`) and SO_BUSY_POLL_BUDGET (`budget`) on the socket.
 * The kernel then leaves the queue's NAPI to ferry's busy polls while they
 * keep coming (and keeps the interrupt off if the device defers it), so the
 * worker must call port__busy_poll() every loop.
 */
int port__set_poll_mode(struct xsk_port *p, enum port_poll_mode mode, uint32_t usecs,
			uint32_t budget);
/*
 * Busy-poll mode: runs the queue's NAPI from the calling thread, with at most
 * one syscall: sendto() while TX frames are in flight (it also transmits in
 * copy mode), else recvfrom() when `rx_drained` (the last RX burst did not
 * fill the batch, so the RX ring needs new packets).
 */
void port__busy_poll(struct xsk_port *p, bool rx_drained);
const char *port__poll_mode_name(enum port_poll_mode mode);

/* Tops the FILL ring up from the pool when it is at least half empty. */
void port__refill(struct xsk_port *p);
/* Reads up to `max` frames from RX; they become held. */
uint32_t port__rx(struct xsk_port *p, struct xsk_frame *frames, uint32_t max);
/*
 * Puts up to n held frames on the TX ring; returns how many went.  The rest
 * are still held by the caller (who frees and counts them).  Kicks the
 * kernel only when the ring asks for it.
 */
uint32_t port__tx(struct xsk_port *p, const struct xsk_frame *frames, uint32_t n);
/* Reads the COMPLETION ring back into the pool; kicks TX again while frames are in flight. */
void port__complete(struct xsk_port *p);

#endif /* FERRY_UMEM_H */
