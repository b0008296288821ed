/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A fake worker environment for the fuzz harnesses: everything a service
 * and daemon/rx.c and chain.c need from a running ferryd, without AF_XDP, XDP or
 * netlink.
 *
 * - ferry_worker__flow_stats() over the real struct ferry_worker of
 *   daemon/worker.h, so chain.c (with the other accessors) runs unchanged.
 *   daemon/daemon.c is linked as it is for ferry_daemon__*.
 * - A stub nh_resolver that answers from a fixed two-port topology, with
 *   knobs to make routes or neighbours fail, and stub notifications that the
 *   harness injects.  The harnesses link with -Wl,--wrap for
 *   nh_resolver__{create,destroy,route,neigh} and nh_events__{create,
 *   destroy,fd,drain}, so lib/nexthop.c needs no change and no netlink
 *   socket is ever opened.
 * - A UMEM in plain memory, and ports without sockets
 *   (port__create_memory()), so lib/xdp_port.c's real port__tx() and
 *   port__complete() and lib/umem.c's frame accounting run;
 *   fuzz_env__kernel_tx() plays the kernel (port__memory_tx()).
 *
 * Topology (port index: interface, ifindex, addresses):
 *   0: fz-c, 11, 198.18.1.1 fd00:1::1   clients; default route
 *   1: fz-s, 12, 198.18.2.1 fd00:2::1   198.18.2.0/24 and fd00:2::/64 on-link
 */
#ifndef FERRY_FUZZ_ENV_H
#define FERRY_FUZZ_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include "nexthop.h"
#include "worker.h"

#define FUZZ_PORT_C 0
#define FUZZ_PORT_S 1
#define FUZZ_IFINDEX_C 11
#define FUZZ_IFINDEX_S 12
#define FUZZ_IFINDEX_OTHER 99 /* an interface ferry does not run on */

enum fuzz_client_route {
	FUZZ_CLIENT_VIA_C = 0, /* back out of the port the client's packets come in on */
	FUZZ_CLIENT_VIA_S,     /* via the other ferry port */
	FUZZ_CLIENT_VIA_OTHER, /* via an interface ferry is not on */
};

/* How the stub resolver answers; set it before the lookups it should affect. */
struct fuzz_nh {
	bool route_fails;          /* every route lookup: -ENETUNREACH */
	bool upstream_unresolved;  /* neighbours in fz-s's networks: -EAGAIN */
	bool upstream_failed;      /* there: -EHOSTUNREACH (wins over the above) */
	bool client_unresolved;    /* any other neighbour: -EAGAIN */
	enum fuzz_client_route client_route;
	uint32_t mtu;              /* of every interface */
	uint32_t route_calls, neigh_calls;
};
extern struct fuzz_nh fuzz_nh;

/*
 * Route, neighbour and link notifications: the harness queues them and the
 * next nh_events__drain() (wrapped like the resolver) delivers them, so the
 * services' reactions to kernel changes run without a netlink socket.
 * Returns -ENOSPC when FUZZ_MAX_EVENTS are already waiting.
 */
#define FUZZ_MAX_EVENTS 16
int fuzz_env__queue_event(const struct nh_event *ev);

struct nh_resolver;
struct nh_route;
union ferry_addr;
int __wrap_nh_events__create(struct nh_events **out);
void __wrap_nh_events__destroy(struct nh_events *ev);
int __wrap_nh_events__fd(const struct nh_events *ev);
int __wrap_nh_events__drain(struct nh_events *ev, unsigned int max, nh_event_fn fn, void *ctx);
int __wrap_nh_resolver__create(struct nh_resolver **out);
void __wrap_nh_resolver__destroy(struct nh_resolver *r);
int __wrap_nh_resolver__route(struct nh_resolver *nh, int family, const union ferry_addr *dst,
			      struct nh_route *out);
int __wrap_nh_resolver__neigh(struct nh_resolver *nh, int family, const union ferry_addr *addr,
			      int ifindex, uint8_t mac[6]);

/* The MAC the stub gives the interface with this ifindex now. */
void fuzz_env__port_mac(int ifindex, uint8_t mac[6]);
/*
 * Another MAC for the interface, for a link notification to report: the
 * stub's lookups give it from the moment the notification is delivered.
 */
void fuzz_env__other_port_mac(int ifindex, uint8_t mac[6]);
/* Whether `mac` is one the interface has (had): frames in flight keep the old one. */
bool fuzz_env__is_port_mac(int ifindex, const uint8_t mac[6]);
/* The MAC the stub gives a neighbour. */
void fuzz_env__neigh_mac(int family, const union ferry_addr *addr, uint8_t mac[6]);

/*
 * A daemon as ferryd builds it up to its workers: the config loaded from
 * `yaml`, the two ports above, every flow's services configured and started
 * (forward's start() asks the stub resolver), client and reply rules in the
 * order the XDP program scans them.  Returns 0 or -errno.
 */
int fuzz_env__daemon_create(struct ferry_daemon **out, const char *yaml);
void fuzz_env__daemon_destroy(struct ferry_daemon *d);

/*
 * A worker of `d` with its own NAT table (as worker__create slices it for
 * worker 0 of 1), a stub resolver, a UMEM of `nr_frames` frames and TX
 * rings of `tx_ring_size` (a power of two) descriptors.
 */
int fuzz_env__worker_create(struct ferry_worker **out, struct ferry_daemon *d, uint32_t nr_frames,
			    uint32_t tx_ring_size);
/*
 * Runs the services' worker_destroy() (which may hand held frames back and
 * transmit), once; fuzz_env__worker_destroy() does it when it was not done.
 */
void fuzz_env__worker_stop_services(struct ferry_worker *w);
void fuzz_env__worker_destroy(struct ferry_worker *w);

/*
 * The kernel's side of TX on port `port`: every descriptor on its TX ring is
 * handed to `sent` and then put on the COMPLETION ring, for port__complete()
 * to read back.  Returns how many there were.
 */
uint32_t fuzz_env__kernel_tx(struct ferry_worker *w, int port,
			     void (*sent)(const uint8_t *frame, uint32_t len, int port, void *ctx),
			     void *ctx);

#endif /* FERRY_FUZZ_ENV_H */
