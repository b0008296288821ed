// SPDX-License-Identifier: BSD-2-Clause
/*
 * The service ABI's implementation: every function services/ferry_service.h
 * declares that ferryd itself provides (the argument readers cfg_*() are
 * lib/config.c's), plus the built-ins' worker accessors of
 * services/service.h.  Each wraps the worker, chain-run or packet internals
 * so a service never sees struct ferry_worker; the functions this file
 * exports are listed in services/ferry_service.map, and nothing else of
 * ferryd is visible to an out-of-tree service.
 *
 * It owns no state and must not run a chain, read a ring or classify
 * (daemon/chain.c, daemon/rx.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "icmp.h"
#include "log.h"
#include "nat.h"
#include "nh_cache.h"
#include "packet_edit.h"
#include "worker.h"

/* The log levels a service names are ferryd's. */
_Static_assert(FERRY_SERVICE_LOG_ERR == (int)FERRY_LOG_ERR &&
		   FERRY_SERVICE_LOG_WARN == (int)FERRY_LOG_WARN &&
		   FERRY_SERVICE_LOG_INFO == (int)FERRY_LOG_INFO &&
		   FERRY_SERVICE_LOG_DEBUG == (int)FERRY_LOG_DEBUG,
	       "service log levels differ from enum ferry_log_level");
/* ferry_pkt::dir and ::drop_reason are bytes. */
_Static_assert(FERRY_DROP__MAX <= 255, "drop reasons do not fit ferry_pkt::drop_reason");
/* ferry_session__client()/upstream() copy a session's tuples as they are. */
_Static_assert(sizeof(struct ferry_tuple) == sizeof(struct nat_tuple) &&
		   offsetof(struct ferry_tuple, sport) == offsetof(struct nat_tuple, sport) &&
		   offsetof(struct ferry_tuple, family) == offsetof(struct nat_tuple, family) &&
		   offsetof(struct ferry_tuple, l4_proto) == offsetof(struct nat_tuple, proto),
	       "struct ferry_tuple differs from struct nat_tuple");

struct ferry_pkt *ferry_batch__emit(struct ferry_worker *w, struct ferry_batch *b,
				    const struct ferry_pkt *from)
{
	struct ferry_pkt *p;
	uint64_t addr;

	if (b->n >= b->cap || w->chain_nr_all >= CHAIN_MAX_PKTS ||
	    w->chain_nr_emitted >= WORKER_MAX_EMIT || !umem__alloc(w->umem, &addr))
		return NULL;
	p = &w->emit_pkts[w->chain_nr_emitted++];
	*p = *from;
	p->addr = addr;
	p->data = umem__data(w->umem, addr);
	memcpy(p->data, from->data, from->len);
	p->verdict = FERRY_VERDICT_NEXT;
	p->drop_reason = 0;
	b->pkts[b->n++] = p;
	w->chain_all[w->chain_nr_all++] = p;
	return p;
}

int ferry_worker__copy_held(struct ferry_worker *w, const struct ferry_pkt *from,
			    struct ferry_pkt *to)
{
	uint64_t addr;

	if (w->held_frames + w->chain_holds >= w->hold_budget)
		return -ENOBUFS;
	if (!umem__alloc(w->umem, &addr))
		return -ENOMEM;
	*to = *from;
	to->addr = addr;
	to->data = umem__data(w->umem, addr);
	memcpy(to->data, from->data, from->len);
	to->verdict = FERRY_VERDICT_HOLD;
	to->drop_reason = 0;
	w->held_frames++;
	return 0;
}

uint64_t ferry_worker__now_ns(const struct ferry_worker *w)
{
	return w->now_ns;
}

uint32_t ferry_worker__id(const struct ferry_worker *w)
{
	return w->id;
}

struct nat_table *ferry_worker__nat(struct ferry_worker *w)
{
	return w->nat;
}

struct nh_resolver *ferry_worker__resolver(struct ferry_worker *w)
{
	return w->nh;
}

int ferry_worker__port_of_ifindex(const struct ferry_worker *w, int ifindex)
{
	return ferry_daemon__port_of_ifindex(w->d, ifindex);
}

uint32_t ferry_worker__frame_room(const struct ferry_worker *w, const struct ferry_pkt *p)
{
	return w->umem->frame_size - (uint32_t)(p->addr % w->umem->frame_size);
}

int ferry_pkt_set_payload_len(struct ferry_worker *w, struct ferry_pkt *p, uint32_t len)
{
	int total = pkt_set_udp_payload_len(p->data, &p->pi, ferry_worker__frame_room(w, p), len);

	if (total < 0)
		return total;
	p->len = (uint32_t)total;
	return 0;
}

void ferry_pkt_fix_checksums(struct ferry_pkt *p)
{
	pkt_fix_checksums(p->data, &p->pi);
}

int ferry_worker__hold(struct ferry_worker *w, struct ferry_pkt *p)
{
	/*
	 * Holds granted in this run count at once: a service may grant several
	 * before the run ends.  One granted and then overridden by a drop
	 * counts until the run ends, which errs on the safe side.
	 */
	if (w->held_frames + w->chain_holds >= w->hold_budget) {
		ferry_pkt_drop(p, FERRY_DROP_hold_budget);
		return -ENOBUFS;
	}
	w->chain_holds++;
	p->verdict = FERRY_VERDICT_HOLD;
	return 0;
}

void ferry_worker__send_held(struct ferry_worker *w, struct ferry_pkt **pkts, uint32_t n)
{
	/* They leave the services' hands, whichever way. */
	w->held_frames = w->held_frames > n ? w->held_frames - n : 0;
	for (uint32_t i = 0; i < n; i++) {
		struct ferry_pkt *p = pkts[i];
		uint32_t flow_id = p->flow_id < CFG_MAX_FLOWS ? p->flow_id : 0;

		if (p->verdict == FERRY_VERDICT_TX && p->out_port < w->nr_ports) {
			worker__queue_tx(w, p, flow_id);
			continue;
		}
		worker__count_drop(&w->flow_stats[flow_id], p->verdict == FERRY_VERDICT_DROP &&
								    p->drop_reason < FERRY_DROP__MAX
								? p->drop_reason
								: FERRY_DROP_service);
		umem__free(w->umem, p->addr);
	}
	/* Held frames waited already; from tick() nothing else would send them soon. */
	worker__flush_tx(w);
}

void ferry_worker__wake_at(struct ferry_worker *w, uint64_t deadline_ns)
{
	/* 0 means no deadline: one asked for at time 0 is simply due at once. */
	if (!deadline_ns)
		deadline_ns = 1;
	if (!w->wake_ns || deadline_ns < w->wake_ns)
		w->wake_ns = deadline_ns;
}

void ferry_worker__wait_fd(struct ferry_worker *w, int fd, uint64_t poll_ns,
			   bool (*arm)(void *ctx), void *ctx)
{
	if (!poll_ns)
		poll_ns = 1;
	if (!w->poll_ns || poll_ns < w->poll_ns)
		w->poll_ns = poll_ns;
	/* Asked again before the next tick (each batch a slot sends): once is enough. */
	for (int i = 0; i < w->nr_waits; i++)
		if (w->waits[i].fd == fd && w->waits[i].ctx == ctx)
			return;
	/* No room to sleep on it: then its poll deadline holds asleep too. */
	if (fd < 0 || w->nr_waits == WORKER_MAX_WAITS) {
		ferry_worker__wake_at(w, poll_ns);
		return;
	}
	w->waits[w->nr_waits].fd = fd;
	w->waits[w->nr_waits].arm = arm;
	w->waits[w->nr_waits].ctx = ctx;
	w->nr_waits++;
}

void ferry_worker__forget_waits(struct ferry_worker *w, void *ctx)
{
	for (int i = 0; i < w->nr_waits;)
		if (w->waits[i].ctx == ctx)
			w->waits[i] = w->waits[--w->nr_waits];
		else
			i++;
}

int ferry_worker__route_init(struct ferry_worker *w)
{
	struct nh_cache_params params;
	struct nh_cache *cache;

	ferry_worker__nh_params(ferry_daemon__config(w->d), &params);
	return ferry_worker__nh_get(w, &params, &cache);
}

void ferry_worker__route_fini(struct ferry_worker *w)
{
	ferry_worker__nh_put(w);
}

void ferry_worker__route_poll(struct ferry_worker *w)
{
	if (w->nexthop.cache)
		ferry_worker__nh_poll(w, w->now_ns);
}

/*
 * What forward does with a rewritten packet (services/fwd_core.c), for a
 * destination without a session to keep the cache entry's index in: the
 * entry is found by its address, and a new one is looked up at the next
 * lookup slot (deferred, as for clients) since any service may name any
 * address.  Held frames leave through the worker's release
 * (daemon/worker_nh.c), which sets the MACs once the neighbour is known.
 */
int ferry_worker__route(struct ferry_worker *w, struct ferry_pkt *p, int family, const void *daddr)
{
	struct nh_cache *c = w->nexthop.cache;
	uint32_t idx = UINT32_MAX, gen = 0;
	union ferry_addr dst = {0};
	struct nat_l2 l2 = {0};
	enum nh_verdict v;
	uint64_t queued;

	if (family != AF_INET && family != AF_INET6) {
		ferry_pkt_drop(p, FERRY_DROP_malformed);
		return -EINVAL;
	}
	if (!c) {
		ferry_pkt_drop(p, FERRY_DROP_no_route);
		return -ENODEV;
	}
	memcpy(dst.b, daddr, family == AF_INET ? 4 : 16);
	queued = nh_cache__queued_lookups(c);
	v = nh_cache__prepare_deferred(c, family, &dst, &idx, &gen, &l2, w->now_ns);
	if (nh_cache__queued_lookups(c) != queued)
		ferry_worker__nh_lookup_queued(w, p->flow_id, w->now_ns);
	if (v == NH_SEND) {
		if (l2.mtu && p->pi.pkt_len - p->pi.l3_off > l2.mtu) {
			ferry_pkt_drop(p, FERRY_DROP_too_big);
			return -EMSGSIZE;
		}
		memcpy(p->data, l2.dst_mac, 6);
		memcpy(p->data + 6, l2.src_mac, 6);
		ferry_pkt_tx(p, l2.port);
		return 0;
	}
	if (v == NH_HOLD) {
		int reason = ferry_worker__nh_hold(w, p, idx);

		if (!reason)
			return FERRY_ROUTE_HELD;
		ferry_pkt_drop(p, reason);
		return reason == FERRY_DROP_hold_budget ? -ENOBUFS : -EHOSTUNREACH;
	}
	if (v == NH_NO_ROUTE_DROP) {
		ferry_pkt_drop(p, FERRY_DROP_no_route);
		return -ENETUNREACH;
	}
	ferry_pkt_drop(p, FERRY_DROP_no_neighbour);
	return -EHOSTUNREACH;
}

/*
 * p's parsed headers are as received even after forward rewrote its bytes,
 * so the lookup is the one forward made: a client's tuple, or a reply's
 * (an ICMP error's quoted one), the receive-time hint checked first.
 */
const struct ferry_session *ferry_worker__session(struct ferry_worker *w, const struct ferry_pkt *p)
{
	bool error = icmp_is_error(&p->pi);
	struct nat_session *s;
	struct nat_tuple t;

	if (!w->nat)
		return NULL;
	if (p->dir == FERRY_DIR_CLIENT) {
		/* A client's ICMP error names no session of ours. */
		if (error)
			return NULL;
		nat_tuple_from_pkt(&t, &p->pi);
		s = nat_table__lookup_client(w->nat, &t);
	} else {
		if (error)
			icmp_quote_reply_tuple(&t, &p->pi);
		else
			nat_tuple_from_pkt(&t, &p->pi);
		s = nat_table__lookup_reply_hint(w->nat, p->reply_session, &t);
	}
	if (!s || s->flow_id != p->flow_id)
		return NULL;
	return (const struct ferry_session *)s;
}

static const struct nat_session *session_of(const struct ferry_session *s)
{
	return (const struct nat_session *)s;
}

uint32_t ferry_session__flow_id(const struct ferry_session *s)
{
	return session_of(s)->flow_id;
}

void ferry_session__client(const struct ferry_session *s, struct ferry_tuple *out)
{
	memcpy(out, &session_of(s)->client, sizeof(*out));
}

void ferry_session__upstream(const struct ferry_session *s, struct ferry_tuple *out)
{
	memcpy(out, &session_of(s)->upstream, sizeof(*out));
}

uint64_t ferry_session__age_ns(const struct ferry_session *s, const struct ferry_worker *w)
{
	uint64_t t = session_of(s)->created_ns;

	return w->now_ns > t ? w->now_ns - t : 0;
}

uint64_t ferry_session__idle_ns(const struct ferry_session *s, const struct ferry_worker *w)
{
	uint64_t t = session_of(s)->last_seen_ns;

	return w->now_ns > t ? w->now_ns - t : 0;
}

const char *ferry_flow__name(const struct ferry_flow_ctx *fc)
{
	return fc->flow->name;
}

int ferry_flow__family(const struct ferry_flow_ctx *fc)
{
	return fc->flow->match.dst.family;
}

unsigned int ferry_flow__l4_proto(const struct ferry_flow_ctx *fc)
{
	return fc->flow->match.l4_proto;
}

void ferry_service__log(enum ferry_service_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	/* Formatting costs: skip it for a level that is off (debug in tick()). */
	if ((int)level > (int)log__level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log__msg((enum ferry_log_level)level, "%s", msg);
}
