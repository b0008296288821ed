// SPDX-License-Identifier: BSD-2-Clause
/*
 * The next-hop cache against a fake kernel: a table of routes and neighbours
 * the tests edit, counting every lookup the cache makes.  Notifications are
 * fed both as events and as real rtnetlink messages through
 * nh_event__parse().  Held frames are checked for bounds, time-outs and
 * order, and, with a real UMEM (root), for their place in the accounting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "nh_cache.h"
#include "umem.h"
#include "unit.h"

#define SEC 1000000000ull
#define MS 1000000ull

struct fake_route {
	int family;
	union ferry_addr dst;
	int err;
	int ifindex;
	int gw_family;
	union ferry_addr gw;
	uint32_t mtu;
	uint8_t src_mac[6];
};

struct fake_neigh {
	int family;
	union ferry_addr addr;
	int ifindex;
	int result; /* 0, -EAGAIN, -EHOSTUNREACH */
	uint8_t mac[6];
};

struct release_rec {
	uint64_t addr;
	enum nh_verdict v;
	uint8_t dst_mac[6];
	uint16_t port;
};

static struct {
	struct fake_route routes[16];
	int nr_routes;
	struct fake_neigh neighs[16];
	int nr_neighs;
	int route_calls, neigh_calls;
	struct fake_route any4; /* when any4.family is set: every other IPv4 destination */
	struct release_rec rel[512];
	int nr_rel;
	struct umem *umem; /* when set, released frames return to it */
} fk;

static const uint8_t mac_px_s[6] = { 0x02, 0x00, 0x00, 0x00, 0x02, 0x01 };
static const uint8_t mac_px_s2[6] = { 0x02, 0x00, 0x00, 0x00, 0x04, 0x01 };
static const uint8_t mac_srv_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x02, 0x02 };
static const uint8_t mac_srv_a2[6] = { 0x02, 0x00, 0x00, 0x00, 0x02, 0x22 };
static const uint8_t mac_srv_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x04, 0x02 };

static union ferry_addr A(int family, const char *s)
{
	union ferry_addr a;

	memset(&a, 0, sizeof(a));
	CU_ASSERT_EQUAL(inet_pton(family, s, a.b), 1);
	return a;
}

static struct fake_route *fake_route(int family, const char *dst)
{
	union ferry_addr d = A(family, dst);

	for (int i = 0; i < fk.nr_routes; i++)
		if (fk.routes[i].family == family && !memcmp(&fk.routes[i].dst, &d, sizeof(d)))
			return &fk.routes[i];
	CU_ASSERT_FATAL(fk.nr_routes < 16);
	fk.routes[fk.nr_routes].family = family;
	fk.routes[fk.nr_routes].dst = d;
	return &fk.routes[fk.nr_routes++];
}

static void set_route(int family, const char *dst, int ifindex, const char *gw, uint32_t mtu,
		      const uint8_t src_mac[6])
{
	struct fake_route *r = fake_route(family, dst);

	r->err = 0;
	r->ifindex = ifindex;
	r->gw_family = family;
	r->gw = A(family, gw);
	r->mtu = mtu;
	memcpy(r->src_mac, src_mac, 6);
}

static void set_no_route(int family, const char *dst)
{
	fake_route(family, dst)->err = -ENETUNREACH;
}

static void set_neigh(int family, const char *addr, int ifindex, int result, const uint8_t *mac)
{
	union ferry_addr a = A(family, addr);
	struct fake_neigh *n = NULL;

	for (int i = 0; i < fk.nr_neighs; i++)
		if (fk.neighs[i].family == family && fk.neighs[i].ifindex == ifindex &&
		    !memcmp(&fk.neighs[i].addr, &a, sizeof(a)))
			n = &fk.neighs[i];
	if (!n) {
		CU_ASSERT_FATAL(fk.nr_neighs < 16);
		n = &fk.neighs[fk.nr_neighs++];
	}
	n->family = family;
	n->addr = a;
	n->ifindex = ifindex;
	n->result = result;
	if (mac)
		memcpy(n->mac, mac, 6);
}

static int op_route(void *ctx, int family, const union ferry_addr *dst, struct nh_route *out)
{
	fk.route_calls++;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < fk.nr_routes; i++) {
		const struct fake_route *r = &fk.routes[i];

		if (r->family != family || memcmp(&r->dst, dst, sizeof(*dst)))
			continue;
		if (r->err)
			return r->err;
		out->ifindex = r->ifindex;
		out->family = r->gw_family;
		out->gateway = r->gw;
		out->mtu = r->mtu;
		memcpy(out->src_mac, r->src_mac, 6);
		return 0;
	}
	if (family == AF_INET && fk.any4.family) {
		out->ifindex = fk.any4.ifindex;
		out->family = AF_INET;
		out->gateway = fk.any4.gw;
		out->mtu = fk.any4.mtu;
		memcpy(out->src_mac, fk.any4.src_mac, 6);
		return 0;
	}
	return -ENETUNREACH;
}

static int op_neigh(void *ctx, int family, const union ferry_addr *addr, int ifindex,
		    uint8_t mac[6])
{
	fk.neigh_calls++;
	for (int i = 0; i < fk.nr_neighs; i++) {
		const struct fake_neigh *n = &fk.neighs[i];

		if (n->family != family || n->ifindex != ifindex ||
		    memcmp(&n->addr, addr, sizeof(*addr)))
			continue;
		if (!n->result)
			memcpy(mac, n->mac, 6);
		return n->result;
	}
	return -EAGAIN;
}

/* Interfaces 2, 3 and 4 are ferry ports 0, 1 and 2; any other is not ferry's. */
static int op_port(void *ctx, int ifindex)
{
	return ifindex >= 2 && ifindex <= 4 ? ifindex - 2 : -ENOENT;
}

static void op_release(void *ctx, const struct nh_entry *e, const struct nh_held *h, uint32_t n,
		       enum nh_verdict v)
{
	for (uint32_t i = 0; i < n; i++) {
		struct release_rec *r = &fk.rel[fk.nr_rel < 512 ? fk.nr_rel : 511];

		r->addr = h[i].addr;
		r->v = v;
		memcpy(r->dst_mac, e->l2.dst_mac, 6);
		r->port = e->l2.port;
		if (fk.nr_rel < 512)
			fk.nr_rel++;
		/* Sent or dropped, the frame is the owner's again; here it goes home. */
		if (fk.umem)
			umem__free(fk.umem, h[i].addr);
	}
}

static const struct nh_cache_ops ops = {
	.route = op_route,
	.neigh = op_neigh,
	.port_of_ifindex = op_port,
	.release = op_release,
};

static struct nh_cache *make_cache(uint32_t capacity, uint32_t hold_frames)
{
	struct nh_cache_params p = {
		.name = "test",
		.capacity = capacity,
		.hold_frames = hold_frames,
		.hold_per_entry = NH_HOLD_MAX,
		.hold_ns = SEC,
		.retry_ns = SEC,
		.idle_ns = 60 * SEC,
	};
	struct nh_cache *c = NULL;

	memset(&fk, 0, sizeof(fk));
	CU_ASSERT_EQUAL_FATAL(nh_cache__create(&c, &p, &ops, NULL), 0);
	return c;
}

/* One direction of a session, as struct nat_session keeps it. */
struct ref {
	uint32_t idx, gen;
	struct nat_l2 l2;
};

static enum nh_verdict prep(struct nh_cache *c, struct ref *r, int family, const char *dst,
			    uint64_t now)
{
	union ferry_addr d = A(family, dst);

	return nh_cache__prepare(c, family, &d, &r->idx, &r->gen, &r->l2, now);
}

static enum nh_verdict prep_deferred(struct nh_cache *c, struct ref *r, int family,
				     const char *dst, uint64_t now)
{
	union ferry_addr d = A(family, dst);

	return nh_cache__prepare_deferred(c, family, &d, &r->idx, &r->gen, &r->l2, now);
}

static int hold(struct nh_cache *c, const struct ref *r, uint64_t addr, uint64_t now)
{
	struct nh_held h = { .addr = addr, .len = 100, .flow_id = 1 };

	return nh_cache__hold(c, r->idx, &h, now);
}

static struct nh_event neigh_ev(enum nh_event_type type, int family, const char *addr,
				int ifindex, uint16_t state, const uint8_t *mac)
{
	struct nh_event ev = { .type = type, .family = family, .ifindex = ifindex, .state = state };

	ev.addr = A(family, addr);
	if (mac) {
		memcpy(ev.mac, mac, 6);
		ev.has_mac = true;
	}
	ev.usable = type == NH_EV_NEIGH && mac &&
		    (state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT));
	return ev;
}

static uint32_t stat_of(const struct nh_cache *c, size_t off)
{
	struct nh_cache_stats st;

	nh_cache__stats(c, &st);
	return *(const uint32_t *)((const char *)&st + off);
}
#define STAT(c, field) stat_of(c, offsetof(struct nh_cache_stats, field))

/* Server A on px-s (ifindex 2): 198.18.9.9 via 198.18.2.2, resolved. */
static void topo_a(void)
{
	set_route(AF_INET, "198.18.9.9", 2, "198.18.2.2", 1500, mac_px_s);
	set_neigh(AF_INET, "198.18.2.2", 2, 0, mac_srv_a);
}

static void test_insert_lookup(void)
{
	struct nh_cache *c = make_cache(64, 32);
	struct ref r = {}, r2 = {}, r3 = {}, r6 = {};
	const struct nh_entry *e;
	union ferry_addr junk;
	uint64_t now = 10 * SEC;

	topo_a();
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_EQUAL(fk.route_calls, 1);
	CU_ASSERT_EQUAL(fk.neigh_calls, 1);
	CU_ASSERT_NOT_EQUAL(r.gen, 0);
	CU_ASSERT_EQUAL(r.l2.port, 0);
	CU_ASSERT_EQUAL(r.l2.mtu, 1500);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_a, 6), 0);
	CU_ASSERT_EQUAL(memcmp(r.l2.src_mac, mac_px_s, 6), 0);
	e = nh_cache__entry(c, r.idx);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->state, NH_RESOLVED);
	CU_ASSERT_EQUAL(e->ifindex, 2);
	CU_ASSERT_PTR_EQUAL(nh_cache__find(c, AF_INET, &e->dst), e);

	/* A hit costs no lookup and copies nothing. */
	{
		struct ref again = r;

		memset(&again.l2, 0xee, sizeof(again.l2));
		CU_ASSERT_EQUAL(prep(c, &again, AF_INET, "198.18.9.9", now + 1), NH_SEND);
		CU_ASSERT_EQUAL(again.idx, r.idx);
		CU_ASSERT_EQUAL(again.gen, r.gen);
		CU_ASSERT_EQUAL(again.l2.mtu, 0xeeee);
	}
	CU_ASSERT_EQUAL(fk.route_calls, 1);
	CU_ASSERT_EQUAL(fk.neigh_calls, 1);

	/* A new session finds the entry by key, without a lookup. */
	CU_ASSERT_EQUAL(prep(c, &r2, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_EQUAL(r2.idx, r.idx);
	CU_ASSERT_EQUAL(fk.route_calls, 1);

	/* Bytes past an IPv4 address do not make another key. */
	junk = A(AF_INET, "198.18.9.9");
	memset(&junk.b[4], 0xab, 12);
	{
		struct ref rj = {};

		CU_ASSERT_EQUAL(nh_cache__prepare(c, AF_INET, &junk, &rj.idx, &rj.gen, &rj.l2, now),
				NH_SEND);
		CU_ASSERT_EQUAL(rj.idx, r.idx);
	}

	/* Another destination via the same gateway is another entry. */
	set_route(AF_INET, "198.18.9.10", 2, "198.18.2.2", 1500, mac_px_s);
	CU_ASSERT_EQUAL(prep(c, &r3, AF_INET, "198.18.9.10", now), NH_SEND);
	CU_ASSERT_NOT_EQUAL(r3.idx, r.idx);
	CU_ASSERT_EQUAL(fk.route_calls, 2);

	/* IPv6, via an on-link neighbour on port 1. */
	set_route(AF_INET6, "fd00:9::9", 3, "fd00:9::9", 1400, mac_px_s2);
	set_neigh(AF_INET6, "fd00:9::9", 3, 0, mac_srv_b);
	CU_ASSERT_EQUAL(prep(c, &r6, AF_INET6, "fd00:9::9", now), NH_SEND);
	CU_ASSERT_EQUAL(r6.l2.port, 1);
	CU_ASSERT_EQUAL(r6.l2.mtu, 1400);
	CU_ASSERT_EQUAL(memcmp(r6.l2.dst_mac, mac_srv_b, 6), 0);
	CU_ASSERT_EQUAL(STAT(c, entries), 3);
	nh_cache__destroy(c);
}

static void test_no_route(void)
{
	struct nh_cache *c = make_cache(64, 32);
	struct ref r = {}, rx = {};
	uint64_t now = 10 * SEC;

	set_no_route(AF_INET, "198.18.99.1");
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.99.1", now), NH_NO_ROUTE_DROP);
	CU_ASSERT_EQUAL(fk.route_calls, 1);
	/* Retried at most once per retry interval, not per packet. */
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.99.1", now + SEC / 2), NH_NO_ROUTE_DROP);
	CU_ASSERT_EQUAL(fk.route_calls, 1);
	set_route(AF_INET, "198.18.99.1", 2, "198.18.2.2", 1500, mac_px_s);
	set_neigh(AF_INET, "198.18.2.2", 2, 0, mac_srv_a);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.99.1", now + SEC), NH_SEND);
	CU_ASSERT_EQUAL(fk.route_calls, 2);

	/* A route through an interface ferry is not attached to is no route for ferry. */
	set_route(AF_INET, "198.18.99.2", 9, "198.18.7.1", 1500, mac_px_s);
	CU_ASSERT_EQUAL(prep(c, &rx, AF_INET, "198.18.99.2", now), NH_NO_ROUTE_DROP);

	/* A route notification retries it without waiting. */
	set_route(AF_INET, "198.18.99.2", 2, "198.18.2.2", 1500, mac_px_s);
	{
		struct nh_event ev = { .type = NH_EV_ROUTE, .family = AF_INET };

		nh_cache__event(c, &ev, now + 1);
	}
	CU_ASSERT_EQUAL(STAT(c, dirty), 2);
	nh_cache__maintain(c, now + 2, 64);
	CU_ASSERT_EQUAL(STAT(c, dirty), 0);
	CU_ASSERT_EQUAL(nh_cache__entry(c, rx.idx)->state, NH_RESOLVED);
	CU_ASSERT_EQUAL(prep(c, &rx, AF_INET, "198.18.99.2", now + 3), NH_SEND);
	nh_cache__destroy(c);
}

static void test_generation_events(void)
{
	struct nh_cache *c = make_cache(64, 32);
	struct ref r = {}, other = {};
	uint64_t now = 10 * SEC;
	struct nh_event ev;
	uint32_t gen;
	int calls;

	topo_a();
	set_route(AF_INET, "198.18.1.2", 4, "198.18.1.2", 1500, mac_px_s2);
	set_neigh(AF_INET, "198.18.1.2", 4, 0, mac_srv_b);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_EQUAL(prep(c, &other, AF_INET, "198.18.1.2", now), NH_SEND);
	gen = r.gen;

	/* News that changes nothing, or concerns another neighbour, bumps nothing. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.2.2", 2, NUD_REACHABLE, mac_srv_a);
	nh_cache__event(c, &ev, now);
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.2.3", 2, NUD_REACHABLE, mac_srv_b);
	nh_cache__event(c, &ev, now);
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.2.2", 3, NUD_REACHABLE, mac_srv_b);
	nh_cache__event(c, &ev, now);
	ev = neigh_ev(NH_EV_NEIGH_DEL, AF_INET6, "fd00::1", 2, NUD_NONE, NULL);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->gen, gen);

	/* The neighbour's MAC changes: the session's next packet carries the new one. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.2.2", 2, NUD_STALE, mac_srv_a2);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_NOT_EQUAL(nh_cache__entry(c, r.idx)->gen, gen);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_a2, 6), 0);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->gen, r.gen);

	/* The interface's MTU and MAC change. */
	gen = r.gen;
	ev = (struct nh_event){ .type = NH_EV_LINK, .ifindex = 3, .mtu = 9000 };
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->gen, gen);
	ev = (struct nh_event){ .type = NH_EV_LINK, .ifindex = 2, .mtu = 1280, .has_mac = true };
	memcpy(ev.mac, mac_px_s2, 6);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_NOT_EQUAL(r.gen, gen);
	CU_ASSERT_EQUAL(r.l2.mtu, 1280);
	CU_ASSERT_EQUAL(memcmp(r.l2.src_mac, mac_px_s2, 6), 0);

	/* The route moves to server B: the entry in use follows at its next packet. */
	set_route(AF_INET, "198.18.9.9", 3, "198.18.4.2", 1500, mac_px_s2);
	set_neigh(AF_INET, "198.18.4.2", 3, 0, mac_srv_b);
	ev = (struct nh_event){ .type = NH_EV_ROUTE, .family = AF_INET };
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(STAT(c, dirty), 2);
	calls = fk.route_calls;
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 1), NH_SEND);
	CU_ASSERT_EQUAL(fk.route_calls, calls + 1);
	CU_ASSERT_EQUAL(r.l2.port, 1);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_b, 6), 0);
	CU_ASSERT_EQUAL(STAT(c, dirty), 1);
	/* The sweep re-resolves the rest; an unchanged one keeps its generation. */
	gen = nh_cache__entry(c, other.idx)->gen;
	nh_cache__maintain(c, now + 2, 64);
	CU_ASSERT_EQUAL(STAT(c, dirty), 0);
	CU_ASSERT_EQUAL(fk.route_calls, calls + 2);
	CU_ASSERT_EQUAL(nh_cache__entry(c, other.idx)->gen, gen);

	/* Notifications about the old neighbour no longer concern the entry. */
	gen = r.gen;
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.2.2", 2, NUD_REACHABLE, mac_srv_a);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->gen, gen);

	/* Removed: asked again only by the next packet, which is then held. */
	ev = neigh_ev(NH_EV_NEIGH_DEL, AF_INET, "198.18.4.2", 3, NUD_NONE, NULL);
	calls = fk.neigh_calls;
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->state, NH_UNRESOLVED);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls);
	set_neigh(AF_INET, "198.18.4.2", 3, -EAGAIN, NULL);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 3), NH_HOLD);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls + 1);

	/* Failed: dropped, and not asked again before the retry interval. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_FAILED, NULL);
	nh_cache__event(c, &ev, now + 4);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 5), NH_NO_NEIGHBOUR_DROP);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls + 1);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 4 + SEC), NH_HOLD);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls + 2);
	/* A flush reports FAILED, then the removal: no back-off then. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_FAILED, NULL);
	nh_cache__event(c, &ev, now + 4 + SEC);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 4 + SEC), NH_NO_NEIGHBOUR_DROP);
	ev = neigh_ev(NH_EV_NEIGH_DEL, AF_INET, "198.18.4.2", 3, NUD_FAILED, NULL);
	nh_cache__event(c, &ev, now + 4 + SEC);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 4 + SEC), NH_HOLD);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls + 3);
	/* Someone else's resolution (INCOMPLETE) of an unresolved entry: hold, not drop. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_FAILED, NULL);
	nh_cache__event(c, &ev, now + 5 + SEC);
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_INCOMPLETE, NULL);
	nh_cache__event(c, &ev, now + 5 + SEC);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 6 + SEC), NH_HOLD);
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_REACHABLE, mac_srv_b);
	nh_cache__event(c, &ev, now + 6 + SEC);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 7 + SEC), NH_SEND);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_b, 6), 0);

	/* Lost notifications: everything is re-read, neighbours included. */
	calls = fk.neigh_calls;
	ev = (struct nh_event){ .type = NH_EV_OVERFLOW };
	nh_cache__event(c, &ev, now + 8 + SEC);
	nh_cache__maintain(c, now + 8 + SEC, 64);
	CU_ASSERT_EQUAL(STAT(c, dirty), 0);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls + 2);
	nh_cache__destroy(c);
}

/* Real rtnetlink messages, as the kernel sends them, through nh_event__parse(). */
static struct nlmsghdr *msg_neigh(char *buf, uint16_t type, int family, const char *addr,
				  int ifindex, uint16_t state, const uint8_t *mac)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	union ferry_addr a = A(family, addr);
	struct ndmsg *ndm;

	nlh->nlmsg_type = type;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = (uint8_t)family;
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = state;
	mnl_attr_put(nlh, NDA_DST, family == AF_INET ? 4 : 16, a.b);
	if (mac)
		mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	return nlh;
}

static void test_netlink_messages(void)
{
	char buf[512] __attribute__((aligned(4)));
	struct nh_cache *c = make_cache(64, 32);
	struct nlmsghdr *nlh;
	struct nh_event ev;
	struct ref r = {};
	struct rtmsg *rtm;
	struct ifinfomsg *ifi;
	uint64_t now = 10 * SEC;

	topo_a();
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);

	memset(buf, 0, sizeof(buf));
	nlh = msg_neigh(buf, RTM_NEWNEIGH, AF_INET, "198.18.2.2", 2, NUD_REACHABLE, mac_srv_a2);
	CU_ASSERT_EQUAL_FATAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_EQUAL(ev.type, NH_EV_NEIGH);
	CU_ASSERT_EQUAL(ev.family, AF_INET);
	CU_ASSERT_EQUAL(ev.ifindex, 2);
	CU_ASSERT_EQUAL(ev.state, NUD_REACHABLE);
	CU_ASSERT_TRUE(ev.usable);
	CU_ASSERT_EQUAL(memcmp(ev.mac, mac_srv_a2, 6), 0);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_a2, 6), 0);

	/* INCOMPLETE carries no address and is not usable. */
	memset(buf, 0, sizeof(buf));
	nlh = msg_neigh(buf, RTM_NEWNEIGH, AF_INET, "198.18.2.2", 2, NUD_INCOMPLETE, NULL);
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_FALSE(ev.usable);
	CU_ASSERT_FALSE(ev.has_mac);

	memset(buf, 0, sizeof(buf));
	nlh = msg_neigh(buf, RTM_DELNEIGH, AF_INET6, "fd00:2::2", 3, NUD_STALE, mac_srv_b);
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_EQUAL(ev.type, NH_EV_NEIGH_DEL);
	CU_ASSERT_FALSE(ev.usable);
	CU_ASSERT_EQUAL(memcmp(ev.addr.b, A(AF_INET6, "fd00:2::2").b, 16), 0);

	/* A bridge FDB entry shares the group but is not a neighbour. */
	memset(buf, 0, sizeof(buf));
	nlh = msg_neigh(buf, RTM_NEWNEIGH, AF_INET, "198.18.2.2", 2, NUD_REACHABLE, mac_srv_a);
	((struct ndmsg *)mnl_nlmsg_get_payload(nlh))->ndm_family = AF_BRIDGE;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), -ENOENT);
	/* An IPv6 entry carrying a 4-byte address is malformed. */
	{
		struct nlmsghdr *n2;

		memset(buf, 0, sizeof(buf));
		n2 = mnl_nlmsg_put_header(buf);
		n2->nlmsg_type = RTM_NEWNEIGH;
		((struct ndmsg *)mnl_nlmsg_put_extra_header(n2, sizeof(struct ndmsg)))->ndm_family =
			AF_INET6;
		mnl_attr_put(n2, NDA_DST, 4, "\xc6\x12\x02\x02");
		CU_ASSERT_EQUAL(nh_event__parse(n2, &ev), -EPROTO);
	}
	/* Truncated. */
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), -EPROTO);

	/* Routes: any family-4/6 change, except cached clones. */
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_EQUAL(ev.type, NH_EV_ROUTE);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(STAT(c, dirty), 1);
	rtm->rtm_flags = RTM_F_CLONED;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), -ENOENT);
	rtm->rtm_flags = 0;
	nlh->nlmsg_type = RTM_DELROUTE;
	rtm->rtm_family = AF_INET6;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_EQUAL(ev.family, AF_INET6);
	rtm->rtm_family = AF_MPLS;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), -ENOENT);

	/* Links: MTU and address. */
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = 2;
	mnl_attr_put_u32(nlh, IFLA_MTU, 1300);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac_px_s2);
	CU_ASSERT_EQUAL_FATAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_EQUAL(ev.type, NH_EV_LINK);
	CU_ASSERT_EQUAL(ev.ifindex, 2);
	CU_ASSERT_EQUAL(ev.mtu, 1300);
	CU_ASSERT_TRUE(ev.has_mac);
	nh_cache__maintain(c, now, 64);
	nh_cache__event(c, &ev, now);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_SEND);
	CU_ASSERT_EQUAL(r.l2.mtu, 1300);
	CU_ASSERT_EQUAL(memcmp(r.l2.src_mac, mac_px_s2, 6), 0);
	nlh->nlmsg_type = RTM_DELLINK;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), 0);
	CU_ASSERT_EQUAL(ev.type, NH_EV_LINK_DEL);
	nlh->nlmsg_type = NLMSG_DONE;
	CU_ASSERT_EQUAL(nh_event__parse(nlh, &ev), -ENOENT);
	nh_cache__destroy(c);
}

static void test_hold_bounds(void)
{
	struct nh_cache *c = make_cache(64, 40);
	struct ref r = {}, r2 = {};
	uint64_t now = 10 * SEC;
	struct nh_event ev;

	set_route(AF_INET, "198.18.9.9", 3, "198.18.4.2", 1500, mac_px_s2);
	set_route(AF_INET, "198.18.9.8", 4, "198.18.5.2", 1500, mac_px_s2);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_HOLD);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->state, NH_RESOLVING);
	CU_ASSERT_TRUE(nh_cache__busy(c));
	for (int i = 0; i < NH_HOLD_MAX; i++)
		CU_ASSERT_EQUAL(hold(c, &r, 0x1000 * (i + 1), now), 0);
	/* The per-entry bound. */
	CU_ASSERT_EQUAL(hold(c, &r, 0xdead000, now), -ENOBUFS);
	CU_ASSERT_EQUAL(STAT(c, holding), NH_HOLD_MAX);

	/* The pool bound: 40 frames for all entries. */
	CU_ASSERT_EQUAL(prep(c, &r2, AF_INET, "198.18.9.8", now), NH_HOLD);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(hold(c, &r2, 0x100000 + i, now), 0);
	CU_ASSERT_EQUAL(hold(c, &r2, 0x1000ff, now), -ENOBUFS);
	CU_ASSERT_EQUAL(fk.nr_rel, 0);

	/* Resolved: every held frame leaves, in order, with the neighbour's MAC. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_REACHABLE, mac_srv_b);
	nh_cache__event(c, &ev, now + MS);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, NH_HOLD_MAX);
	for (int i = 0; i < NH_HOLD_MAX; i++) {
		CU_ASSERT_EQUAL(fk.rel[i].addr, (uint64_t)0x1000 * (uint64_t)(i + 1));
		CU_ASSERT_EQUAL(fk.rel[i].v, NH_SEND);
		CU_ASSERT_EQUAL(fk.rel[i].port, 1);
		CU_ASSERT_EQUAL(memcmp(fk.rel[i].dst_mac, mac_srv_b, 6), 0);
	}
	CU_ASSERT_EQUAL(STAT(c, holding), 8);
	/* The freed slots take new frames; a resolved entry takes none. */
	CU_ASSERT_EQUAL(hold(c, &r2, 0x100010, now), 0);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + MS), NH_SEND);
	CU_ASSERT_EQUAL(hold(c, &r, 0x2000, now), -ENOBUFS);

	/* Destroying the cache hands what it still holds back as drops. */
	fk.nr_rel = 0;
	nh_cache__destroy(c);
	CU_ASSERT_EQUAL(fk.nr_rel, 9);
	for (int i = 0; i < fk.nr_rel; i++)
		CU_ASSERT_EQUAL(fk.rel[i].v, NH_NO_NEIGHBOUR_DROP);
}

static void test_hold_timeouts(void)
{
	struct nh_cache *c = make_cache(64, 64);
	uint64_t t = 10 * SEC;
	struct ref r = {};
	struct nh_event ev;
	int calls;

	set_route(AF_INET, "198.18.9.9", 3, "198.18.4.2", 1500, mac_px_s2);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", t), NH_HOLD);
	CU_ASSERT_EQUAL(hold(c, &r, 0x1000, t), 0);
	CU_ASSERT_EQUAL(hold(c, &r, 0x2000, t + SEC / 2), 0);
	CU_ASSERT_EQUAL(hold(c, &r, 0x3000, t + 9 * SEC / 10), 0);

	nh_cache__maintain(c, t + SEC - 1, 0);
	CU_ASSERT_EQUAL(fk.nr_rel, 0);
	nh_cache__maintain(c, t + SEC, 0);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
	CU_ASSERT_EQUAL(fk.rel[0].addr, 0x1000);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_NO_NEIGHBOUR_DROP);
	nh_cache__maintain(c, t + 3 * SEC / 2, 0);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 2);
	CU_ASSERT_EQUAL(fk.rel[1].addr, 0x2000);

	/* The kernel gives up: what waits is dropped. */
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_FAILED, NULL);
	nh_cache__event(c, &ev, t + 3 * SEC / 2);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 3);
	CU_ASSERT_EQUAL(fk.rel[2].addr, 0x3000);
	CU_ASSERT_EQUAL(fk.rel[2].v, NH_NO_NEIGHBOUR_DROP);
	CU_ASSERT_FALSE(nh_cache__busy(c));

	/* Without any notification, an entry resolving too long is read again. */
	t += 5 * SEC;
	fk.nr_rel = 0;
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", t), NH_HOLD);
	CU_ASSERT_EQUAL(hold(c, &r, 0x4000, t), 0);
	set_neigh(AF_INET, "198.18.4.2", 3, 0, mac_srv_b);
	calls = fk.neigh_calls;
	nh_cache__maintain(c, t + SEC / 2 - 1, 8);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls);
	nh_cache__maintain(c, t + SEC / 2, 8);
	CU_ASSERT_EQUAL(fk.neigh_calls, calls + 1);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_SEND);

	/* The route goes away while frames wait: they are dropped as no_route. */
	t += 5 * SEC;
	fk.nr_rel = 0;
	set_neigh(AF_INET, "198.18.4.2", 3, -EAGAIN, NULL);
	ev = neigh_ev(NH_EV_NEIGH_DEL, AF_INET, "198.18.4.2", 3, NUD_NONE, NULL);
	nh_cache__event(c, &ev, t);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", t), NH_HOLD);
	CU_ASSERT_EQUAL(hold(c, &r, 0x5000, t), 0);
	set_no_route(AF_INET, "198.18.9.9");
	ev = (struct nh_event){ .type = NH_EV_ROUTE, .family = AF_INET };
	nh_cache__event(c, &ev, t);
	nh_cache__maintain(c, t, 8);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_NO_ROUTE_DROP);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", t), NH_NO_ROUTE_DROP);
	nh_cache__destroy(c);
}

static void test_eviction_and_idle(void)
{
	struct nh_cache *c = make_cache(4, 3);
	struct ref r[6] = {};
	const char *dst[6] = { "198.18.9.1", "198.18.9.2", "198.18.9.3",
			       "198.18.9.4", "198.18.9.5", "198.18.9.6" };
	uint64_t now = 10 * SEC;
	uint32_t old_idx;

	set_neigh(AF_INET, "198.18.2.2", 2, 0, mac_srv_a);
	for (int i = 0; i < 6; i++)
		set_route(AF_INET, dst[i], 2, "198.18.2.2", 1500, mac_px_s);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(prep(c, &r[i], AF_INET, dst[i], now + i), NH_SEND);
	CU_ASSERT_EQUAL(STAT(c, entries), 4);

	/* Full: the least recently used entry (dst[0]) makes room. */
	CU_ASSERT_EQUAL(prep(c, &r[4], AF_INET, dst[4], now + 10), NH_SEND);
	CU_ASSERT_EQUAL(STAT(c, entries), 4);
	CU_ASSERT_PTR_NULL(nh_cache__find(c, AF_INET, &(union ferry_addr){ .b = { 198, 18, 9, 1 } }));
	CU_ASSERT_EQUAL(r[4].idx, r[0].idx);
	/* A session still naming the reused slot finds its own destination again. */
	old_idx = r[0].idx;
	CU_ASSERT_EQUAL(prep(c, &r[0], AF_INET, dst[0], now + 11), NH_SEND);
	CU_ASSERT_NOT_EQUAL(r[0].idx, old_idx);
	CU_ASSERT_EQUAL(memcmp(r[0].l2.dst_mac, mac_srv_a, 6), 0);
	/* And the session whose slot that took is told by the generation. */
	CU_ASSERT_NOT_EQUAL(nh_cache__entry(c, r[1].idx)->gen, r[1].gen);

	/* An entry holding frames is never evicted. */
	set_route(AF_INET, dst[5], 3, "198.18.4.2", 1500, mac_px_s2);
	{
		struct ref h = {};

		CU_ASSERT_EQUAL(prep(c, &h, AF_INET, dst[5], now + 20), NH_HOLD);
		CU_ASSERT_EQUAL(hold(c, &h, 0x1000, now + 20), 0);
		for (int i = 0; i < 4; i++) {
			struct ref x = {};

			prep(c, &x, AF_INET, dst[i], now + 21 + i);
		}
		CU_ASSERT_EQUAL(nh_cache__entry(c, h.idx)->nr_held, 1);
		CU_ASSERT_EQUAL(fk.nr_rel, 0);
	}

	/* Idle entries are forgotten; a resolving one waits for its answer. */
	nh_cache__maintain(c, now + 100 * SEC, 0);
	CU_ASSERT_EQUAL(STAT(c, entries), 1);
	CU_ASSERT_EQUAL(fk.nr_rel, 1); /* its held frame timed out */
	nh_cache__destroy(c);
}

/* Held frames stay "held" in the UMEM until the cache hands them back. */
static void test_held_frame_accounting(void)
{
	struct nh_cache *c;
	struct umem *u = NULL;
	uint64_t addr[40], now = 10 * SEC;
	struct ref r = {};
	struct nh_event ev;
	int held = 0;

	if (unit_require_root())
		return;
	c = make_cache(64, 64);
	CU_ASSERT_EQUAL_FATAL(umem__create(&u, 512, 2048, 64), 0);
	fk.umem = u;
	set_route(AF_INET, "198.18.9.9", 3, "198.18.4.2", 1500, mac_px_s2);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now), NH_HOLD);
	for (int i = 0; i < 40; i++) {
		CU_ASSERT_TRUE_FATAL(umem__alloc(u, &addr[i]));
		if (hold(c, &r, addr[i], now + i) == 0) {
			held++;
		} else {
			/* Refused: the caller drops it. */
			umem__free(u, addr[i]);
		}
		CU_ASSERT_EQUAL(umem__check(u, "nh_cache"), 0);
	}
	CU_ASSERT_EQUAL(held, NH_HOLD_MAX);
	CU_ASSERT_EQUAL(u->held, (uint32_t)NH_HOLD_MAX);
	CU_ASSERT_EQUAL(u->nr_free, 512 - NH_HOLD_MAX);
	CU_ASSERT_EQUAL(umem__check(u, "nh_cache"), 0);

	/* Two time out, the rest go out when the neighbour answers. */
	nh_cache__maintain(c, now + SEC + 1, 0);
	CU_ASSERT_EQUAL(u->held, (uint32_t)NH_HOLD_MAX - 2);
	CU_ASSERT_EQUAL(umem__check(u, "nh_cache"), 0);
	ev = neigh_ev(NH_EV_NEIGH, AF_INET, "198.18.4.2", 3, NUD_REACHABLE, mac_srv_b);
	nh_cache__event(c, &ev, now + SEC + 1);
	CU_ASSERT_EQUAL(u->held, 0);
	CU_ASSERT_EQUAL(u->nr_free, 512);
	CU_ASSERT_EQUAL(umem__check(u, "nh_cache"), 0);

	/* What the cache still holds at the end comes back too. */
	ev = neigh_ev(NH_EV_NEIGH_DEL, AF_INET, "198.18.4.2", 3, NUD_NONE, NULL);
	nh_cache__event(c, &ev, now + 2 * SEC);
	CU_ASSERT_EQUAL(prep(c, &r, AF_INET, "198.18.9.9", now + 2 * SEC), NH_HOLD);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_TRUE_FATAL(umem__alloc(u, &addr[i]));
		CU_ASSERT_EQUAL(hold(c, &r, addr[i], now + 2 * SEC), 0);
	}
	CU_ASSERT_EQUAL(u->held, 5);
	nh_cache__destroy(c);
	CU_ASSERT_EQUAL(u->held, 0);
	CU_ASSERT_EQUAL(umem__check(u, "nh_cache"), 0);
	fk.umem = NULL;
	CU_ASSERT_EQUAL(umem__destroy(u), 0);
}

static void test_params(void)
{
	struct nh_cache_params p = { .capacity = 64, .hold_frames = 8, .hold_per_entry = 8,
				     .hold_ns = SEC };
	struct nh_cache *c = NULL;

	CU_ASSERT_EQUAL(nh_cache__create(&c, &p, &ops, NULL), 0);
	nh_cache__destroy(c);
	p.hold_per_entry = NH_HOLD_MAX + 1;
	CU_ASSERT_EQUAL(nh_cache__create(&c, &p, &ops, NULL), -EINVAL);
	p.hold_per_entry = 8;
	p.capacity = 1;
	CU_ASSERT_EQUAL(nh_cache__create(&c, &p, &ops, NULL), -EINVAL);
	p.capacity = 64;
	p.hold_ns = 0;
	CU_ASSERT_EQUAL(nh_cache__create(&c, &p, &ops, NULL), -EINVAL);
	CU_ASSERT_STRING_EQUAL(nh_state_name(NH_RESOLVING), "resolving");
}

/* Clients behind one gateway on port 0: 198.19.0.0/16 via 198.18.1.2, resolved. */
static void topo_clients(void)
{
	fk.any4.family = AF_INET;
	fk.any4.ifindex = 2;
	fk.any4.gw = A(AF_INET, "198.18.1.2");
	fk.any4.mtu = 1500;
	memcpy(fk.any4.src_mac, mac_px_s, 6);
	set_neigh(AF_INET, "198.18.1.2", 2, 0, mac_srv_a);
}

/*
 * Deferred lookups: a new client costs the packet path no lookup; its
 * frames wait on the hold queue until nh_cache__run_lookups() resolves it,
 * and then leave in order with the neighbour's MAC.
 */
static void test_deferred_new_entry(void)
{
	struct nh_cache *c = make_cache(64, 32);
	struct ref r = {}, r2 = {};
	uint64_t now = 10 * SEC;
	struct nh_cache_stats st;

	topo_clients();
	CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, "198.19.0.1", now), NH_HOLD);
	CU_ASSERT_EQUAL(fk.route_calls + fk.neigh_calls, 0);
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->state, NH_QUEUED);
	CU_ASSERT_EQUAL(nh_cache__queue_len(c), 1);
	CU_ASSERT_EQUAL(nh_cache__queued_lookups(c), 1);
	CU_ASSERT_TRUE(nh_cache__busy(c));
	CU_ASSERT_EQUAL(hold(c, &r, 0x1000, now), 0);
	CU_ASSERT_EQUAL(hold(c, &r, 0x2000, now), 0);
	/* Another packet of it: still held, nothing queued twice. */
	CU_ASSERT_EQUAL(prep_deferred(c, &r2, AF_INET, "198.19.0.1", now), NH_HOLD);
	CU_ASSERT_EQUAL(r2.idx, r.idx);
	CU_ASSERT_EQUAL(nh_cache__queued_lookups(c), 1);

	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now + MS, 8), 1);
	CU_ASSERT_EQUAL(fk.route_calls, 1);
	CU_ASSERT_EQUAL(nh_cache__queue_len(c), 0);
	CU_ASSERT_FALSE(nh_cache__busy(c));
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 2);
	CU_ASSERT_EQUAL(fk.rel[0].addr, 0x1000);
	CU_ASSERT_EQUAL(fk.rel[1].addr, 0x2000);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_SEND);
	CU_ASSERT_EQUAL(memcmp(fk.rel[0].dst_mac, mac_srv_a, 6), 0);
	/* Known now: the next packet goes, with no lookup and nothing queued. */
	CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, "198.19.0.1", now + 2 * MS), NH_SEND);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_a, 6), 0);
	CU_ASSERT_EQUAL(fk.route_calls, 1);
	CU_ASSERT_EQUAL(nh_cache__queued_lookups(c), 1);
	nh_cache__stats(c, &st);
	CU_ASSERT_EQUAL(st.lookups, 1);
	CU_ASSERT_EQUAL(st.queue_len, 0);

	/* A queued entry that the synchronous path meets is looked up there. */
	CU_ASSERT_EQUAL(prep_deferred(c, &r2, AF_INET, "198.19.0.2", now), NH_HOLD);
	r2 = (struct ref){};
	CU_ASSERT_EQUAL(prep(c, &r2, AF_INET, "198.19.0.2", now), NH_SEND);
	CU_ASSERT_EQUAL(nh_cache__queue_len(c), 0);
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now, 8), 0);
	nh_cache__destroy(c);
}

/* A flood of new clients: no lookup on the packet path, a bounded number per run. */
static void test_deferred_flood(void)
{
	enum { N = 200 };
	struct nh_cache *c = make_cache(64, 16);
	struct ref legit = {}, r;
	uint64_t now = 10 * SEC;
	struct nh_cache_stats st;
	int calls, neigh_calls;
	char addr[32];

	topo_clients();
	set_route(AF_INET, "198.18.1.2", 2, "198.18.1.2", 1500, mac_px_s);
	CU_ASSERT_EQUAL(prep(c, &legit, AF_INET, "198.18.1.2", now), NH_SEND);
	calls = fk.route_calls + fk.neigh_calls;
	for (int i = 0; i < N; i++) {
		r = (struct ref){};
		snprintf(addr, sizeof(addr), "198.19.%d.%d", i / 250, 1 + i % 250);
		CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, addr, now + (uint64_t)i), NH_HOLD);
		/* The legitimate client, known, keeps going without a lookup. */
		CU_ASSERT_EQUAL(prep_deferred(c, &legit, AF_INET, "198.18.1.2", now + (uint64_t)i),
				NH_SEND);
	}
	CU_ASSERT_EQUAL(fk.route_calls + fk.neigh_calls, calls);
	CU_ASSERT_EQUAL(nh_cache__queued_lookups(c), N);
	/* The cache holds 64: evicted entries left the queue with them. */
	CU_ASSERT(nh_cache__queue_len(c) <= 63);
	CU_ASSERT_EQUAL(STAT(c, entries), 64);
	calls = fk.route_calls;
	neigh_calls = fk.neigh_calls;
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now + SEC / 2, 8), 8);
	CU_ASSERT_EQUAL(fk.route_calls - calls, 8);
	while (nh_cache__queue_len(c))
		CU_ASSERT_FATAL(nh_cache__run_lookups(c, now + SEC / 2, 8) > 0);
	/* Behind the legitimate client's address, a known neighbour: a route lookup each, no more. */
	CU_ASSERT_EQUAL(fk.neigh_calls, neigh_calls);
	nh_cache__stats(c, &st);
	CU_ASSERT_EQUAL(st.neigh_shared, (uint64_t)(fk.route_calls - calls));
	CU_ASSERT_EQUAL(nh_cache__entry(c, r.idx)->state, NH_RESOLVED);
	CU_ASSERT_EQUAL(memcmp(nh_cache__entry(c, r.idx)->l2.dst_mac, mac_srv_a, 6), 0);
	CU_ASSERT_EQUAL(prep_deferred(c, &legit, AF_INET, "198.18.1.2", now + SEC), NH_SEND);
	nh_cache__destroy(c);
}

/*
 * Frames of a queued entry: dropped after the hold time, dropped as no_route
 * when there is none, and handed back when the cache goes.
 */
static void test_deferred_frames(void)
{
	struct nh_cache *c = make_cache(64, 32);
	struct ref r = {}, r2 = {}, r3 = {};
	uint64_t now = 10 * SEC;

	topo_clients();
	CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, "198.19.0.1", now), NH_HOLD);
	CU_ASSERT_EQUAL(hold(c, &r, 0x1000, now), 0);
	CU_ASSERT_EQUAL(hold(c, &r, 0x2000, now + SEC / 2), 0);
	/* Its turn comes late: the first frame waited too long. */
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now + SEC, 8), 1);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 2);
	CU_ASSERT_EQUAL(fk.rel[0].addr, 0x1000);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_NO_NEIGHBOUR_DROP);
	CU_ASSERT_EQUAL(fk.rel[1].addr, 0x2000);
	CU_ASSERT_EQUAL(fk.rel[1].v, NH_SEND);

	fk.nr_rel = 0;
	CU_ASSERT_EQUAL(prep_deferred(c, &r2, AF_INET6, "fd00:9::1", now), NH_HOLD);
	CU_ASSERT_EQUAL(hold(c, &r2, 0x3000, now), 0);
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now, 8), 1);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_NO_ROUTE_DROP);
	CU_ASSERT_EQUAL(STAT(c, holding), 0);
	/* Until retry_ns it drops; then its retry is queued and its packets wait for it. */
	CU_ASSERT_EQUAL(prep_deferred(c, &r2, AF_INET6, "fd00:9::1", now + 1), NH_NO_ROUTE_DROP);
	CU_ASSERT_EQUAL(nh_cache__queue_len(c), 0);
	CU_ASSERT_EQUAL(prep_deferred(c, &r2, AF_INET6, "fd00:9::1", now + SEC), NH_HOLD);
	CU_ASSERT_EQUAL(nh_cache__queue_len(c), 1);
	CU_ASSERT_EQUAL(hold(c, &r2, 0x3100, now + SEC), 0);
	CU_ASSERT_EQUAL(fk.route_calls, 2);
	fk.nr_rel = 0;
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now + SEC, 8), 1);
	CU_ASSERT_EQUAL(fk.route_calls, 3);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_NO_ROUTE_DROP);
	CU_ASSERT_EQUAL(prep_deferred(c, &r2, AF_INET6, "fd00:9::1", now + SEC), NH_NO_ROUTE_DROP);

	/*
	 * A resolved client whose neighbour the kernel forgot (ip neigh flush):
	 * its next packets wait for the queued lookup, none is dropped.
	 */
	{
		struct nh_event ev = neigh_ev(NH_EV_NEIGH_DEL, AF_INET, "198.18.1.2", 2, NUD_NONE,
					      NULL);
		struct ref rc = {};

		CU_ASSERT_EQUAL(prep_deferred(c, &rc, AF_INET, "198.19.0.1", now + SEC), NH_SEND);
		nh_cache__event(c, &ev, now + SEC);
		CU_ASSERT_EQUAL(nh_cache__entry(c, rc.idx)->state, NH_UNRESOLVED);
		CU_ASSERT_EQUAL(prep_deferred(c, &rc, AF_INET, "198.19.0.1", now + SEC), NH_HOLD);
		CU_ASSERT_EQUAL(hold(c, &rc, 0x3200, now + SEC), 0);
		fk.nr_rel = 0;
		CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now + SEC + 1, 8), 1);
		CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
		CU_ASSERT_EQUAL(fk.rel[0].v, NH_SEND);
		CU_ASSERT_EQUAL(prep_deferred(c, &rc, AF_INET, "198.19.0.1", now + SEC + 2), NH_SEND);
	}

	/* Destroyed with frames waiting on the queue: they come back as drops. */
	fk.nr_rel = 0;
	CU_ASSERT_EQUAL(prep_deferred(c, &r3, AF_INET, "198.19.0.3", now), NH_HOLD);
	CU_ASSERT_EQUAL(hold(c, &r3, 0x4000, now), 0);
	CU_ASSERT_EQUAL(STAT(c, holding), 1);
	nh_cache__destroy(c);
	CU_ASSERT_EQUAL_FATAL(fk.nr_rel, 1);
	CU_ASSERT_EQUAL(fk.rel[0].addr, 0x4000);
	CU_ASSERT_EQUAL(fk.rel[0].v, NH_NO_NEIGHBOUR_DROP);
}

/* After a route change an entry in use keeps its next hop until its queued lookup. */
static void test_deferred_route_change(void)
{
	struct nh_cache *c = make_cache(64, 32);
	struct nh_event ev = { .type = NH_EV_ROUTE, .family = AF_INET };
	struct ref r = {};
	uint64_t now = 10 * SEC;
	int calls;

	topo_clients();
	CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, "198.19.0.1", now), NH_HOLD);
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now, 8), 1);
	calls = fk.route_calls;
	nh_cache__event(c, &ev, now);
	fk.any4.gw = A(AF_INET, "198.18.1.3");
	set_neigh(AF_INET, "198.18.1.3", 2, 0, mac_srv_b);
	CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, "198.19.0.1", now + 1), NH_SEND);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_a, 6), 0);
	CU_ASSERT_EQUAL(fk.route_calls, calls);
	CU_ASSERT_EQUAL(nh_cache__queue_len(c), 1);
	CU_ASSERT_EQUAL(nh_cache__run_lookups(c, now + 2, 8), 1);
	CU_ASSERT_EQUAL(fk.route_calls, calls + 1);
	CU_ASSERT_EQUAL(prep_deferred(c, &r, AF_INET, "198.19.0.1", now + 3), NH_SEND);
	CU_ASSERT_EQUAL(memcmp(r.l2.dst_mac, mac_srv_b, 6), 0);
	CU_ASSERT_EQUAL(STAT(c, dirty), 0);
	nh_cache__destroy(c);
}

static CU_TestInfo nh_cache_tests[] = {
	{ "insert and lookup", test_insert_lookup },
	{ "no route, retries", test_no_route },
	{ "generations follow notifications", test_generation_events },
	{ "rtnetlink notifications parsed", test_netlink_messages },
	{ "hold queue bounds and order", test_hold_bounds },
	{ "hold time-outs", test_hold_timeouts },
	{ "eviction and idle entries", test_eviction_and_idle },
	{ "held frames in the UMEM accounting", test_held_frame_accounting },
	{ "parameters", test_params },
	{ "deferred: a new entry's frames wait for the queued lookup", test_deferred_new_entry },
	{ "deferred: a flood of new clients, no lookup on the packet path", test_deferred_flood },
	{ "deferred: held frames time out, no route, destroy", test_deferred_frames },
	{ "deferred: route change keeps the next hop until the lookup", test_deferred_route_change },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(nh_cache, "nh_cache", nh_cache_tests, NULL, NULL);
