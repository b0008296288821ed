/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Next hops from the kernel: route and neighbour lookups over rtnetlink
 * (libmnl).  The kernel owns ARP/ND; ferry asks it, and when a neighbour is
 * not resolved yet it asks the kernel to resolve it (RTM_NEWNEIGH with
 * NTF_USE, as a sender would) instead of inventing an address.
 *
 * A resolver is one netlink socket; each worker owns one, so lookups need no
 * locks.  Lookups are made when a session is created, never per packet.
 */
#ifndef FERRY_NEXTHOP_H
#define FERRY_NEXTHOP_H

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

#endif /* FERRY_NEXTHOP_H */
