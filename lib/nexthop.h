/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Next hops from the kernel: route and neighbour lookups over rtnetlink
 * (libmnl).  The kernel owns ARP/ND; ferry asks it, and when a neighbour is
 * not resolved yet it asks the kernel to resolve it (RTM_NEWNEIGH with
 * NTF_USE, as a sender would) instead of inventing an address.
 *
 * A resolver is one netlink socket; each worker owns one, so lookups need no
 * locks.  Lookups are made on next-hop cache misses (lib/nh_cache.h) and
 * when a notification says something changed, never per packet.
 */
#ifndef FERRY_NEXTHOP_H
#define FERRY_NEXTHOP_H

#include <stdbool.h>
#include <stdint.h>

#include "packet.h"

struct nh_route {
	int ifindex;               /* output interface */
	int family;                /* AF_INET or AF_INET6 */
	union ferry_addr gateway;  /* the neighbour to resolve: gateway, or dst when on-link */
	union ferry_addr prefsrc;  /* the kernel's preferred source for dst */
	uint32_t mtu;              /* the interface's MTU */
	uint8_t src_mac[6];        /* the interface's own MAC */
};

struct nh_resolver;

int nh_resolver__create(struct nh_resolver **out);
void nh_resolver__destroy(struct nh_resolver *r);

/* Route to dst (family AF_INET/AF_INET6).  -ENETUNREACH when there is none. */
int nh_resolver__route(struct nh_resolver *r, int family, const union ferry_addr *dst,
		       struct nh_route *out);
/*
 * MAC of neighbour `addr` on `ifindex`.  Returns 0 when the entry is usable
 * (REACHABLE, STALE, DELAY, PROBE, PERMANENT, NOARP); otherwise asks the
 * kernel to resolve it and returns -EAGAIN (no entry / INCOMPLETE) or
 * -EHOSTUNREACH (FAILED).
 */
int nh_resolver__neigh(struct nh_resolver *r, int family, const union ferry_addr *addr,
		       int ifindex, uint8_t mac[6]);

/*
 * Kernel notifications of route, neighbour and link changes
 * (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEIGH, RTNLGRP_LINK), on a
 * non-blocking socket of their own so that they never mix with a resolver's
 * replies.  Each worker owns one and drains it without blocking.
 */
enum nh_event_type {
	NH_EV_ROUTE,     /* a route was added, changed or removed */
	NH_EV_NEIGH,     /* a neighbour entry was created or changed */
	NH_EV_NEIGH_DEL, /* a neighbour entry was removed */
	NH_EV_LINK,      /* an interface changed (its MAC or MTU may be new) */
	NH_EV_LINK_DEL,  /* an interface went away */
	NH_EV_OVERFLOW,  /* the kernel dropped notifications: assume anything changed */
};

struct nh_event {
	enum nh_event_type type;
	int family;             /* ROUTE, NEIGH*: AF_INET or AF_INET6 */
	int ifindex;            /* NEIGH*, LINK* */
	union ferry_addr addr;  /* NEIGH*: the neighbour's address */
	uint16_t state;         /* NEIGH*: NUD_* */
	bool usable;            /* NEIGH: a state ferry may send to, with a 6-byte lladdr */
	bool has_mac;           /* NEIGH*: lladdr; LINK: the interface's address (6 bytes) */
	uint8_t mac[6];
	uint32_t mtu;           /* LINK: 0 when absent */
};

struct nlmsghdr;
struct nh_events;
typedef void (*nh_event_fn)(const struct nh_event *ev, void *ctx);

int nh_events__create(struct nh_events **out);
void nh_events__destroy(struct nh_events *ev);
int nh_events__fd(const struct nh_events *ev);
/*
 * Reads what is pending, at most `max` messages, never waiting, and hands each
 * relevant one to `fn`.  Returns the number of messages read or -errno.
 */
int nh_events__drain(struct nh_events *ev, unsigned int max, nh_event_fn fn, void *ctx);
/* One notification; 0 when relevant, -ENOENT when not ours to follow, -EPROTO when malformed. */
int nh_event__parse(const struct nlmsghdr *nlh, struct nh_event *ev);

#endif /* FERRY_NEXTHOP_H */
