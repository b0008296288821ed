/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * AF_XDP ports: the socket of one (interface, queue) on a worker's UMEM,
 * its FILL/COMPLETION/RX/TX rings and the kicks (sendto()/recvfrom()) that
 * wake the kernel when a ring asks for it (need_wakeup) or a busy-polled
 * queue must be run.  Frames come from and return to the frame pool
 * (lib/umem.h) through its umem__ transitions only: this file never
 * touches the pool's stack or counters itself, and knows nothing of
 * packets, flows or services.
 */
#ifndef FERRY_XDP_PORT_H
#define FERRY_XDP_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <xdp/xsk.h>

#include "umem.h"

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

struct port {
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

/*
 * Creates the AF_XDP socket of (ifname, queue) on the UMEM, with need_wakeup,
 * and inserts it into `xsks_map_fd` at key `queue`.  Logs the copy/zero-copy
 * mode in effect.  `force_copy` binds with XDP_COPY.
 */
int port__create(struct port **out, struct umem *u, const char *ifname, uint32_t queue,
		 uint16_t index, uint32_t ring_size, int xsks_map_fd, bool force_copy);
/* Removes it from the XSKMAP (so the XDP program falls back to XDP_PASS), then closes it. */
void port__destroy(struct port *p, int xsks_map_fd);

/*
 * Sets the port's poll mode.  For PORT_POLL_BUSY it sets SO_PREFER_BUSY_POLL,
 * SO_BUSY_POLL (`usecs`) and SO_BUSY_POLL_BUDGET (`budget`) on the socket.
 * The kernel then leaves the queue's NAPI to ferry's busy polls while they
 * keep coming (and keeps the interrupt off if the device defers it), so the
 * worker must call port__busy_poll() every loop.
 */
int port__set_poll_mode(struct port *p, enum port_poll_mode mode, uint32_t usecs,
			uint32_t budget);
/*
 * Busy-poll mode: runs the queue's NAPI from the calling thread, with at most
 * one syscall: sendto() while TX frames are in flight (it also transmits in
 * copy mode), else recvfrom() when `rx_drained` (the last RX burst did not
 * fill the batch, so the RX ring needs new packets).
 */
void port__busy_poll(struct port *p, bool rx_drained);
const char *port__poll_mode_name(enum port_poll_mode mode);

/* Tops the FILL ring up from the pool when it is at least half empty. */
void port__refill(struct port *p);
/* Reads up to `max` frames from RX; they become held. */
uint32_t port__rx(struct port *p, struct frame_ref *frames, uint32_t max);
/*
 * Puts up to n held frames on the TX ring; returns how many went.  The rest
 * are still held by the caller (who frees and counts them).  Kicks the
 * kernel only when the ring asks for it.
 */
uint32_t port__tx(struct port *p, const struct frame_ref *frames, uint32_t n);
/* Reads the COMPLETION ring back into the pool; kicks TX again while frames are in flight. */
void port__complete(struct port *p);
/*
 * Whether a worker going idle must come back to its ports (all on UMEM u)
 * soon even if no packet arrives: TX descriptors the kernel has not taken
 * yet (copy mode sends a bounded number per kick), or a FILL ring under
 * half full while frames are out on TX, on any of the ports: RX there could
 * stall until their completions are read back, and the packet that would
 * wake the worker is the one that finds no frame.  First tops up a FILL
 * ring under half full from the pool when it has frames (completions read
 * from a later port after that port's refill).  Otherwise the next packet
 * wakes the worker, which reads the completions first.
 */
bool ports__need_timer(struct port *const *ports, int n, struct umem *u);

/*
 * A port without a socket, for the unit harness, the fuzzers and the
 * benchmark: its TX and COMPLETION rings are plain memory (no FILL or RX
 * ring, no wake-ups), and port__memory_tx() plays the kernel's side.  They
 * drive the worker's own port__tx()/port__complete() through it, so no test
 * hook sits on ferryd's TX path.  port__destroy() frees it (xsks_map_fd
 * unused).  ring_size is a power of two.
 */
int port__create_memory(struct port **out, struct umem *u, const char *ifname, int ifindex,
			uint16_t index, uint32_t ring_size);
/*
 * What the kernel does with a memory port's TX ring: hands each descriptor
 * to `sent` (may be NULL), in order, and moves it to the COMPLETION ring
 * for port__complete().  Stops early when the COMPLETION ring is full;
 * returns how many descriptors it took.
 */
uint32_t port__memory_tx(struct port *p, void (*sent)(const struct xdp_desc *d, void *ctx),
			 void *ctx);
/* Descriptors on a memory port's TX ring that port__memory_tx() has not taken. */
uint32_t port__memory_tx_pending(const struct port *p);

#endif /* FERRY_XDP_PORT_H */
