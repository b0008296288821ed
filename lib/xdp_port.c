// SPDX-License-Identifier: BSD-2-Clause
/*
 * AF_XDP ports (see xdp_port.h): socket creation, poll modes, the four
 * rings and their kicks.  Frames move between the rings and the pool only
 * through lib/umem.h's transitions; nothing here parses a packet.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include "log.h"
#include "xdp_port.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

static bool query_zerocopy(struct xsk_socket *xsk)
{
	struct xdp_options opts = {};
	socklen_t len = sizeof(opts);

	if (getsockopt(xsk_socket__fd(xsk), SOL_XDP, XDP_OPTIONS, &opts, &len))
		return false;
	return opts.flags & XDP_OPTIONS_ZEROCOPY;
}

int port__create(struct port **out, struct umem *u, const char *ifname, uint32_t queue,
		 uint16_t index, uint32_t ring_size, int xsks_map_fd, bool force_copy)
{
	struct xsk_socket_config cfg = {
		.rx_size = ring_size,
		.tx_size = ring_size,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP | (force_copy ? XDP_COPY : 0),
	};
	struct port *p;
	int fd, err;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
	p->ifindex = if_nametoindex(ifname);
	p->queue = queue;
	p->index = index;
	p->umem = u;
	p->ring_size = ring_size;
	if (!p->ifindex) {
		err = -ENODEV;
		pr_err("iface %s queue %u: no such interface", ifname, queue);
		goto err_free;
	}
	/* The first port inherits the UMEM's own FILL/COMPLETION rings (libxdp copies them). */
	/*
	 * The kernel releases a closed socket's queue asynchronously: right after
	 * a restart the queue can still be busy for a moment.
	 */
	for (int tries = 0;; tries++) {
		err = xsk_socket__create_shared(&p->xsk, ifname, queue, u->xumem, &p->rx, &p->tx,
						&p->fill, &p->comp, &cfg);
		if (err != -EBUSY || tries == 20)
			break;
		usleep(50 * 1000);
	}
	if (err) {
		pr_err("iface %s queue %u: cannot create AF_XDP socket: %s", ifname, queue,
		       strerror(-err));
		goto err_free;
	}
	fd = xsk_socket__fd(p->xsk);
	err = bpf_map_update_elem(xsks_map_fd, &queue, &fd, BPF_ANY);
	if (err) {
		err = -errno;
		pr_err("iface %s queue %u: cannot insert socket into XSKMAP: %s", ifname, queue,
		       strerror(errno));
		goto err_delete_socket;
	}
	p->zerocopy = query_zerocopy(p->xsk);
	pr_info("iface %s queue %u: AF_XDP socket bound in %s mode, rings %u, need_wakeup on",
		ifname, queue, p->zerocopy ? "zero-copy" : "copy", ring_size);
	*out = p;
	return 0;

err_delete_socket:
	xsk_socket__delete(p->xsk);
err_free:
	free(p);
	return err;
}

/* A port__create_memory() port: the ring words and arrays the kernel would map. */
struct memory_port {
	struct port port;
	uint32_t tx_prod, tx_cons, comp_prod, comp_cons;
	uint32_t tx_flags, comp_flags; /* never XDP_RING_NEED_WAKEUP: no syscalls */
	struct xdp_desc *tx_descs;
	uint64_t *comp_addrs;
};

static struct memory_port *memory_port_of(const struct port *p)
{
	return (struct memory_port *)((char *)p - offsetof(struct memory_port, port));
}

static void memory_port_free(struct memory_port *mp)
{
	free(mp->tx_descs);
	free(mp->comp_addrs);
	free(mp);
}

int port__create_memory(struct port **out, struct umem *u, const char *ifname, int ifindex,
			uint16_t index, uint32_t ring_size)
{
	struct memory_port *mp;
	struct port *p;

	if (!ring_size || ring_size & (ring_size - 1))
		return -EINVAL;
	mp = calloc(1, sizeof(*mp));
	if (!mp)
		return -ENOMEM;
	mp->tx_descs = calloc(ring_size, sizeof(*mp->tx_descs));
	mp->comp_addrs = calloc(ring_size, sizeof(*mp->comp_addrs));
	if (!mp->tx_descs || !mp->comp_addrs) {
		memory_port_free(mp);
		return -ENOMEM;
	}
	p = &mp->port;
	snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
	p->ifindex = ifindex;
	p->index = index;
	p->umem = u;
	p->ring_size = ring_size;
	/* As libxdp sets up a producer ring: cached_cons runs one ring ahead. */
	p->tx = (struct xsk_ring_prod){
		.cached_cons = ring_size,
		.mask = ring_size - 1,
		.size = ring_size,
		.producer = &mp->tx_prod,
		.consumer = &mp->tx_cons,
		.ring = mp->tx_descs,
		.flags = &mp->tx_flags,
	};
	p->comp = (struct xsk_ring_cons){
		.mask = ring_size - 1,
		.size = ring_size,
		.producer = &mp->comp_prod,
		.consumer = &mp->comp_cons,
		.ring = mp->comp_addrs,
		.flags = &mp->comp_flags,
	};
	*out = p;
	return 0;
}

uint32_t port__memory_tx(struct port *p, void (*sent)(const struct xdp_desc *d, void *ctx),
			 void *ctx)
{
	struct memory_port *mp = memory_port_of(p);
	uint32_t mask = p->ring_size - 1, n = 0;

	while (mp->tx_cons != __atomic_load_n(&mp->tx_prod, __ATOMIC_ACQUIRE) &&
	       mp->comp_prod - mp->comp_cons < p->ring_size) {
		const struct xdp_desc *d = &mp->tx_descs[mp->tx_cons & mask];

		if (sent)
			sent(d, ctx);
		mp->comp_addrs[mp->comp_prod & mask] = d->addr;
		__atomic_store_n(&mp->comp_prod, mp->comp_prod + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&mp->tx_cons, mp->tx_cons + 1, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

uint32_t port__memory_tx_pending(const struct port *p)
{
	const struct memory_port *mp = memory_port_of(p);

	return __atomic_load_n(&mp->tx_prod, __ATOMIC_ACQUIRE) - mp->tx_cons;
}

void port__destroy(struct port *p, int xsks_map_fd)
{
	if (!p)
		return;
	if (!p->xsk) {
		memory_port_free(memory_port_of(p));
		return;
	}
	if (xsks_map_fd >= 0)
		bpf_map_delete_elem(xsks_map_fd, &p->queue);
	xsk_socket__delete(p->xsk);
	free(p);
}

const char *port__poll_mode_name(enum port_poll_mode mode)
{
	switch (mode) {
	case PORT_POLL_INTERRUPT:
		return "interrupt";
	case PORT_POLL_BUSY:
		return "busy-poll";
	case PORT_POLL_SPIN:
		return "spin";
	}
	return "?";
}

static int set_sockopt_int(struct port *p, int opt, const char *name, int val)
{
	int err;

	if (!setsockopt(xsk_socket__fd(p->xsk), SOL_SOCKET, opt, &val, sizeof(val)))
		return 0;
	err = -errno;
	pr_err("iface %s queue %u: cannot set %s to %d: %s%s", p->ifname, p->queue, name, val,
	       strerror(errno),
	       err == -EPERM ? " (raising it needs CAP_NET_ADMIN)"
	       : err == -ENOPROTOOPT ? " (kernel without CONFIG_NET_RX_BUSY_POLL?)"
				     : "");
	return err;
}

int port__set_poll_mode(struct port *p, enum port_poll_mode mode, uint32_t usecs,
			uint32_t budget)
{
	int err;

	if (mode == PORT_POLL_BUSY) {
		err = set_sockopt_int(p, SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL", 1);
		if (!err)
			err = set_sockopt_int(p, SO_BUSY_POLL, "SO_BUSY_POLL", (int)usecs);
		if (!err)
			err = set_sockopt_int(p, SO_BUSY_POLL_BUDGET, "SO_BUSY_POLL_BUDGET",
					      (int)budget);
		if (err)
			return err;
		pr_info("iface %s queue %u: poll mode busy-poll (SO_BUSY_POLL %u us, budget %u)",
			p->ifname, p->queue, usecs, budget);
	} else {
		pr_info("iface %s queue %u: poll mode %s", p->ifname, p->queue,
			port__poll_mode_name(mode));
	}
	p->poll_mode = mode;
	return 0;
}

/*
 * One sendto() in copy mode transmits at most 32 frames (the kernel's
 * TX_BATCH_SIZE) and answers EAGAIN while more wait on the ring.  Left
 * there until the next loop, a burst of 64 would fill the ring within a
 * few loops and the rest of the traffic would find it full, so the kick
 * repeats while the kernel asks for more and takes some.  EAGAIN without
 * progress (a full COMPLETION ring) and EBUSY/ENOBUFS end it: completions
 * drive the next kick.  Zero-copy needs one wake-up; the driver sends.
 */
static uint32_t tx_send(struct port *p)
{
	int fd = xsk_socket__fd(p->xsk);
	uint32_t before, calls = 0;

	do {
		before = __atomic_load_n(p->tx.consumer, __ATOMIC_ACQUIRE);
		calls++;
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0 || errno != EAGAIN)
			break;
	} while (!p->zerocopy && __atomic_load_n(p->tx.consumer, __ATOMIC_ACQUIRE) != before);
	return calls;
}

void port__busy_poll(struct port *p, bool rx_drained)
{
	int fd = xsk_socket__fd(p->xsk);

	/*
	 * Either call runs sk_busy_loop() on the queue's NAPI (RX, TX and
	 * completions in zero-copy mode); sendto() also transmits in copy mode,
	 * so it is the one to use while TX has work.
	 */
	if (p->tx_in_flight) {
		p->stats.busy_polls += tx_send(p);
		return;
	} else if (rx_drained || xsk_ring_prod__needs_wakeup(&p->fill)) {
		recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
	} else {
		return;
	}
	p->stats.busy_polls++;
}

void port__refill(struct port *p)
{
	struct umem *u = p->umem;
	uint32_t free_slots, n, idx, avail;

	free_slots = xsk_prod_nb_free(&p->fill, p->ring_size);
	/* Refill in chunks once half the ring is gone: fewer ring updates (DPDK does the same). */
	if (free_slots < p->ring_size / 2)
		goto wake;
	avail = umem__fill_avail(u);
	n = free_slots < avail ? free_slots : avail;
	if (!n)
		goto wake;
	if (xsk_ring_prod__reserve(&p->fill, n, &idx) != n)
		goto wake;
	for (uint32_t i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&p->fill, idx + i) = umem__pop_for_fill(u);
	xsk_ring_prod__submit(&p->fill, n);
	umem__to_kernel_rx(u, n);
wake:
	/*
	 * The kernel stops polling an empty FILL ring until it is woken.  A
	 * busy-polled port is woken by port__busy_poll() every loop instead.
	 */
	if (p->poll_mode != PORT_POLL_BUSY && xsk_ring_prod__needs_wakeup(&p->fill)) {
		recvfrom(xsk_socket__fd(p->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
		p->stats.fill_kicks++;
	}
}

uint32_t port__rx(struct port *p, struct frame_ref *frames, uint32_t max)
{
	struct umem *u = p->umem;
	uint32_t n, idx, good = 0;

	n = xsk_ring_cons__peek(&p->rx, max, &idx);
	if (!n)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&p->rx, idx + i);
		uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);

		umem__rx_to_held(u);
		/* A runt has no Ethernet header to parse: give it straight back. */
		if (d->len < 14) {
			p->stats.rx_invalid++;
			umem__free(u, addr);
			continue;
		}
		frames[good].addr = addr;
		frames[good].len = d->len;
		good++;
	}
	xsk_ring_cons__release(&p->rx, n);
	p->stats.rx_packets += good;
	return good;
}

static void port__kick_tx(struct port *p)
{
	/* Busy-polled: port__busy_poll() sends once per loop, after every TX burst. */
	if (p->poll_mode == PORT_POLL_BUSY || !xsk_ring_prod__needs_wakeup(&p->tx))
		return;
	p->stats.tx_kicks += tx_send(p);
}

uint32_t port__tx(struct port *p, const struct frame_ref *frames, uint32_t n)
{
	struct umem *u = p->umem;
	uint32_t idx, got;

	if (!n)
		return 0;
	got = xsk_ring_prod__reserve(&p->tx, n, &idx);
	for (uint32_t i = 0; i < got; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&p->tx, idx + i);

		d->addr = frames[i].addr;
		d->len = frames[i].len;
		d->options = 0;
	}
	if (got) {
		xsk_ring_prod__submit(&p->tx, got);
		umem__held_to_kernel_tx(u, got);
		p->tx_in_flight += got;
		p->stats.tx_packets += got;
	}
	if (got < n)
		p->stats.tx_ring_full += n - got;
	port__kick_tx(p);
	return got;
}

void port__complete(struct port *p)
{
	struct umem *u = p->umem;
	uint32_t n, idx;

	n = xsk_ring_cons__peek(&p->comp, p->ring_size, &idx);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&p->comp, idx + i);

		umem__push_completed(u, addr);
	}
	if (n) {
		xsk_ring_cons__release(&p->comp, n);
		umem__tx_completed(u, n);
		p->tx_in_flight -= n;
	}
	/* Copy mode sends a bounded number of frames per kick: keep kicking while TX has work. */
	if (p->tx_in_flight)
		port__kick_tx(p);
}

static bool tx_untaken(const struct port *p)
{
	return p->tx_in_flight &&
	       __atomic_load_n(p->tx.consumer, __ATOMIC_ACQUIRE) != p->tx.cached_prod;
}

static bool fill_low(struct port *p)
{
	/* A memory port has no RX to stall. */
	if (!p->fill.ring)
		return false;
	return p->ring_size - xsk_prod_nb_free(&p->fill, p->ring_size) < p->ring_size / 2;
}

bool ports__need_timer(struct port *const *ports, int n, struct umem *u)
{
	bool untaken = false, low = false;

	for (int i = 0; i < n; i++) {
		struct port *p = ports[i];

		if (fill_low(p) && umem__fill_avail(u))
			port__refill(p);
		untaken |= tx_untaken(p);
		low |= fill_low(p);
	}
	return untaken || (low && u->kernel_tx);
}
