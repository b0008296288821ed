// SPDX-License-Identifier: BSD-2-Clause
/*
 * A worker's next hops: its next-hop cache (lib/nh_cache.h) and the
 * route/neighbour/link notification socket that keeps it current, shared
 * by every service on the worker that sends somewhere (forward, lb, mirror,
 * fanout through services/fwd_core.c), so a destination several flows send
 * to is resolved once.  Created by the first ferry_worker__nh_get() on the
 * worker, destroyed by the last ferry_worker__nh_put(); both run on the
 * main thread (worker_init/worker_destroy) while the worker is parked or
 * stopped.  Frames the cache held for a neighbour leave through
 * ferry_worker__send_held().
 *
 * It owns the cache's timing (when notifications are read, when queued
 * lookups run); it must not decide what a packet is or where it goes:
 * that is the services'.  Lookups go through the worker's resolver.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "nexthop.h"
#include "nh_cache.h"
#include "worker.h"

/* Notifications are read this often while neighbours resolve, else every 10 ms. */
#define NH_DRAIN_BUSY_NS (1000ull * 1000)
#define NH_DRAIN_IDLE_NS (10ull * 1000 * 1000)
#define NH_DRAIN_MAX 256      /* notifications read per drain */
#define NH_MAINTAIN_BUDGET 32 /* kernel lookups per drain after a route change */
/*
 * Queued next-hop lookups (new clients, retries) made per NH_LOOKUP_NS:
 * a lookup is a few rtnetlink round trips, so this bounds the share of the
 * worker's time a flood of new sources can cost to a fraction of its loop.
 */
#define NH_LOOKUP_BUDGET 8
#define NH_LOOKUP_NS (1000ull * 1000)

#define NH_HOLD_NS (1000ull * 1000 * 1000)  /* longest wait for a neighbour */
#define NH_RETRY_NS (1000ull * 1000 * 1000) /* between retries of failed next hops */

static uint32_t clamp_u32(uint64_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

/*
 * Sizes of the worker's next-hop cache: an entry per client address and
 * upstream, so about one per session, within bounds; held frames at most an
 * eighth of the UMEM, so that waiting packets can never starve RX.
 */
void ferry_worker__nh_params(const struct ferry_config *cfg, struct nh_cache_params *p)
{
	uint32_t sessions = cfg->nat.max_sessions / (cfg->queues ?: 1);

	memset(p, 0, sizeof(*p));
	p->capacity = clamp_u32((uint64_t)sessions + 16, 64, 16384);
	p->hold_frames = clamp_u32(cfg->umem.frames / 8, NH_HOLD_MAX, 1024);
	p->hold_per_entry = NH_HOLD_MAX;
	p->hold_ns = NH_HOLD_NS;
	p->retry_ns = NH_RETRY_NS;
	p->idle_ns = (uint64_t)cfg->nat.udp_timeout_s * 1000000000ull;
}

static int nh_verdict_drop(enum nh_verdict v)
{
	return v == NH_NO_ROUTE_DROP ? FERRY_DROP_no_route : FERRY_DROP_no_neighbour;
}

static int worker_nh_route(void *ctx, int family, const union ferry_addr *dst, struct nh_route *out)
{
	struct ferry_worker *w = ctx;

	return nh_resolver__route(w->nh, family, dst, out);
}

static int worker_nh_neigh(void *ctx, int family, const union ferry_addr *addr, int ifindex,
			   uint8_t mac[6])
{
	struct ferry_worker *w = ctx;

	return nh_resolver__neigh(w->nh, family, addr, ifindex, mac);
}

static int worker_nh_port(void *ctx, int ifindex)
{
	struct ferry_worker *w = ctx;

	return ferry_worker__port_of_ifindex(w, ifindex);
}

/* Held frames leave: with the MACs the neighbour now has, or dropped and counted. */
static void worker_nh_release(void *ctx, const struct nh_entry *e, const struct nh_held *h,
			      uint32_t n, enum nh_verdict v)
{
	struct ferry_pkt pkts[NH_HOLD_MAX], *pp[NH_HOLD_MAX];
	struct ferry_worker *w = ctx;

	for (uint32_t i = 0; i < n && i < NH_HOLD_MAX; i++) {
		struct ferry_pkt *p = &pkts[i];

		memset(p, 0, sizeof(*p));
		p->data = h[i].data;
		p->addr = h[i].addr;
		p->len = h[i].len;
		p->flow_id = h[i].flow_id;
		p->dir = h[i].dir;
		pp[i] = p;
		if (v != NH_SEND) {
			ferry_pkt_drop(p, nh_verdict_drop(v));
		} else if (e->l2.mtu && p->len > 14u + e->l2.mtu) {
			/* The MTU shrank while it waited. */
			ferry_pkt_drop(p, FERRY_DROP_too_big);
		} else {
			memcpy(p->data, e->l2.dst_mac, 6);
			memcpy(p->data + 6, e->l2.src_mac, 6);
			ferry_pkt_tx(p, e->l2.port);
		}
	}
	ferry_worker__send_held(w, pp, n < NH_HOLD_MAX ? n : NH_HOLD_MAX);
}

static const struct nh_cache_ops worker_nh_ops = {
	.route = worker_nh_route,
	.neigh = worker_nh_neigh,
	.port_of_ifindex = worker_nh_port,
	.release = worker_nh_release,
};

static void worker_nh_event(const struct nh_event *ev, void *ctx)
{
	struct ferry_worker *w = ctx;

	nh_cache__event(w->nexthop.cache, ev, w->now_ns);
}

int ferry_worker__nh_get(struct ferry_worker *w, const struct nh_cache_params *params,
			 struct nh_cache **out)
{
	struct worker_nh *nh = &w->nexthop;
	struct nh_cache_params p;
	int err;

	if (nh->users) {
		nh->users++;
		*out = nh->cache;
		return 0;
	}
	err = nh_events__create(&nh->events);
	if (err) {
		pr_err("worker %u: cannot follow route and neighbour changes: %s", w->id,
		       strerror(-err));
		return err;
	}
	p = *params;
	snprintf(p.name, sizeof(p.name), "worker %u", w->id);
	err = nh_cache__create(&nh->cache, &p, &worker_nh_ops, w);
	if (err) {
		pr_err("worker %u: cannot create the next-hop cache of %u entries: %s", w->id,
		       p.capacity, strerror(-err));
		goto err_destroy_events;
	}
	nh->users = 1;
	*out = nh->cache;
	return 0;

err_destroy_events:
	nh_events__destroy(nh->events);
	memset(nh, 0, sizeof(*nh));
	return err;
}

void ferry_worker__nh_put(struct ferry_worker *w)
{
	struct worker_nh *nh = &w->nexthop;

	if (!nh->users || --nh->users)
		return;
	/* Frames still held go back to the worker's UMEM as no_neighbour drops. */
	nh_cache__destroy(nh->cache);
	nh_events__destroy(nh->events);
	memset(nh, 0, sizeof(*nh));
}

void ferry_worker__nh_poll(struct ferry_worker *w, uint64_t now)
{
	struct worker_nh *nh = &w->nexthop;
	int n;

	if (nh_cache__queue_len(nh->cache) && now >= nh->next_lookup_ns) {
		nh_cache__run_lookups(nh->cache, now, NH_LOOKUP_BUDGET);
		nh->next_lookup_ns = now + NH_LOOKUP_NS;
	}
	/* What is still queued is looked up at the next slot, even on an idle worker. */
	if (nh_cache__queue_len(nh->cache))
		ferry_worker__wake_at(w, nh->next_lookup_ns);
	if (now >= nh->next_drain_ns) {
		n = nh_events__drain(nh->events, NH_DRAIN_MAX, worker_nh_event, w);
		if (n < 0 && n != nh->last_err)
			pr_warn_ratelimited("worker %u: cannot read route and neighbour "
					    "notifications: %s",
					    w->id, strerror(-n));
		nh->last_err = n < 0 ? n : 0;
		nh_cache__maintain(nh->cache, now, NH_MAINTAIN_BUDGET);
		if (n == NH_DRAIN_MAX)
			nh->next_drain_ns = now;
		else
			nh->next_drain_ns = now + (nh_cache__busy(nh->cache) ? NH_DRAIN_BUSY_NS
									     : NH_DRAIN_IDLE_NS);
	}
	/*
	 * Frames wait for a neighbour the kernel is resolving: its answer is
	 * read at the next drain, even on an idle worker, whose sleep would
	 * otherwise last until the next packet or 100 ms.
	 */
	if (nh_cache__busy(nh->cache))
		ferry_worker__wake_at(w, nh->next_drain_ns);
}

int ferry_worker__nh_hold(struct ferry_worker *w, struct ferry_pkt *p, uint32_t idx)
{
	struct nh_held h = {
		.data = p->data,
		.addr = p->addr,
		.len = p->len,
		.flow_id = p->flow_id,
		.dir = p->dir,
	};

	/* Within the worker's budget of held frames first: the cache's own bound is per worker too. */
	if (ferry_worker__hold(w, p))
		return FERRY_DROP_hold_budget;
	if (nh_cache__hold(w->nexthop.cache, idx, &h, w->now_ns))
		return FERRY_DROP_no_neighbour;
	return 0;
}

void ferry_worker__nh_lookup_queued(struct ferry_worker *w, uint32_t flow_id, uint64_t now)
{
	uint64_t slot = w->nexthop.next_lookup_ns;

	ferry_worker__flow_stats(w, flow_id)->nh_lookups++;
	ferry_worker__wake_at(w, slot > now ? slot : now);
}
