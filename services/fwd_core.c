// SPDX-License-Identifier: BSD-2-Clause
/*
 * The NAT path shared by forward and lb, and the next hops and rewrites of
 * mirror's and fanout's copies (see fwd_core.h for the split).
 *
 * Next hops come from the kernel only, through each worker's next-hop cache
 * (lib/nh_cache.h), which follows the kernel's route, neighbour and link
 * notifications.  A session names its two cache entries, so a changed route
 * or neighbour applies to existing sessions at their next packet.  Packets
 * towards a neighbour the kernel is still resolving are held and sent once
 * it answers.
 *
 * The client's MAC is not learnt from its frames: the kernel resolves the
 * client like any other neighbour while the first request travels upstream,
 * and a reply that still finds it unresolved waits in the hold queue.  A
 * learnt MAC would be the last hop's, which need not be where the kernel
 * routes the client (asymmetric paths), and would never follow a change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include "fwd_core.h"
#include "icmp.h"
#include "log.h"
#include "nexthop.h"

/*
 * A service's handle on its worker's next hops (the worker owns them:
 * ferry_worker__nh_get()), kept in the service's worker state so the
 * packet path reaches the cache without a call.
 */
struct fwd_nh {
	struct nh_cache *cache;
	struct ferry_worker *w;
};

/* ---- configuration ---- */

void fwd_core__init(struct fwd_core *c, const struct ferry_flow_ctx *fc, const char *svc)
{
	snprintf(c->flow_name, sizeof(c->flow_name), "%s", fc->flow->name);
	c->svc = svc;
	c->family = fc->flow->match.dst.family;
}

static void addr_from_prefix(union ferry_addr *a, const struct cfg_prefix *p)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->b, p->addr.bytes, p->family == AF_INET ? 4 : 16);
}

int fwd_core__parse_target(const struct fwd_core *c, const struct cfg_node *n, struct fwd_target *t,
			   struct cfg_errors *errs)
{
	struct cfg_prefix p;
	uint16_t port;

	if (cfg_get_endpoint(n, &p, &port, errs))
		return -EINVAL;
	if (p.family != c->family) {
		cfg_node_error(errs, n,
			       "%s: endpoint and the flow's destination are of different address "
			       "families",
			       c->svc);
		return -EINVAL;
	}
	memset(t, 0, sizeof(*t));
	addr_from_prefix(&t->addr, &p);
	t->port = port;
	return 0;
}

/* ---- start-up ---- */

void fwd_core__setup(struct fwd_core *c, const struct ferry_config *cfg)
{
	c->tcp_to.syn_ns = (uint64_t)cfg->nat.tcp_syn_timeout_s * 1000000000ull;
	c->tcp_to.established_ns = (uint64_t)cfg->nat.tcp_established_timeout_s * 1000000000ull;
	c->tcp_to.closing_ns = (uint64_t)cfg->nat.tcp_closing_timeout_s * 1000000000ull;
	ferry_worker__nh_params(cfg, &c->nh_params);
}

int fwd_core__resolve(const struct fwd_core *c, struct nh_resolver *nh, struct ferry_daemon *d,
		      struct fwd_target *t, const char *what)
{
	struct nh_route rt;
	uint8_t mac[6];
	char addr[64];
	int err;

	inet_ntop(c->family, t->addr.b, addr, sizeof(addr));
	err = nh_resolver__route(nh, c->family, &t->addr, &rt);
	if (err) {
		pr_err("flow '%s': %s: no route to %s %s: %s", c->flow_name, c->svc, what, addr,
		       strerror(-err));
		return err;
	}
	if (ferry_daemon__port_of_ifindex(d, rt.ifindex) < 0) {
		char ifname[IF_NAMESIZE] = "?";

		if_indextoname(rt.ifindex, ifname);
		pr_err("flow '%s': %s: %s %s routes via %s, which is not a ferry interface",
		       c->flow_name, c->svc, what, addr, ifname);
		return -ENETUNREACH;
	}
	t->ifindex = rt.ifindex;
	if (c->source.family)
		addr_from_prefix(&t->egress, &c->source);
	else
		t->egress = rt.prefsrc;
	/* Start resolving now so the first packets find the neighbour known. */
	nh_resolver__neigh(nh, c->family, &rt.gateway, rt.ifindex, mac);
	return 0;
}

static void fill_words(__u32 dst[4], const union ferry_addr *a)
{
	memcpy(dst, a->w, 16);
}

int fwd_core__add_reply_rule(const struct fwd_core *c, const struct ferry_flow_ctx *fc,
			     const struct fwd_target *t)
{
	const struct ferry_config *cfg = ferry_daemon__config(fc->daemon);
	struct ferry_rule rule = {};
	char addr[64];
	int err;

	rule.flow_id = fc->flow_id;
	rule.enabled = 1;
	rule.family = c->family == AF_INET ? 4 : 6;
	rule.l4_proto = fc->flow->match.l4_proto;
	rule.dir = FERRY_DIR_REPLY;
	rule.src_plen = c->family == AF_INET ? 32 : 128;
	rule.dst_plen = rule.src_plen;
	fill_words(rule.src, &t->addr);
	fill_words(rule.dst, &t->egress);
	rule.sport_lo = rule.sport_hi = t->port;
	rule.dport_lo = cfg->nat.ports.lo;
	rule.dport_hi = cfg->nat.ports.hi;
	/*
	 * Only on the interface the route to the upstream uses: addresses and
	 * ports are the sender's to forge, and a "reply" arriving from the
	 * client side (an ICMP error about a session included) is no reply.
	 * When the route moves, ferryd moves the rule (reload__follow_routes()).
	 */
	rule.ifindex = t->ifindex;
	err = ferry_daemon__add_rule(fc->daemon, &rule);
	if (err) {
		inet_ntop(c->family, t->addr.b, addr, sizeof(addr));
		pr_err("flow '%s': %s: cannot add the reply rule of %s port %u: %s", c->flow_name,
		       c->svc, addr, t->port, strerror(-err));
	}
	return err;
}

/* ---- the workers' next hops ---- */

static int nh_verdict_drop(enum nh_verdict v)
{
	return v == NH_NO_ROUTE_DROP ? FERRY_DROP_no_route : FERRY_DROP_no_neighbour;
}

void fwd_core__nh_poll(struct fwd_nh *nh, uint64_t now)
{
	ferry_worker__nh_poll(nh->w, now);
}

int fwd_core__nh_get(const struct fwd_core *c, struct ferry_worker *w, struct fwd_nh **out)
{
	struct fwd_nh *nh;
	int err;

	nh = calloc(1, sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	err = ferry_worker__nh_get(w, &c->nh_params, &nh->cache);
	if (err) {
		free(nh);
		return err;
	}
	nh->w = w;
	*out = nh;
	return 0;
}

void fwd_core__nh_put(struct fwd_nh *nh)
{
	ferry_worker__nh_put(nh->w);
	free(nh);
}

/* ---- the packet path ---- */

/*
 * A TCP segment of session `s` seen in `dir`: RST and FIN are checked
 * against the tracked sequence windows, and the connection state advances,
 * which sets the session's idle timeout.  Returns 0, or the drop reason of a
 * RST or FIN outside the window: it changes nothing, not even the session's
 * idle time, so a blind sender cannot close a session or keep it alive.
 */
static int fwd_tcp_track(const struct fwd_core *c, struct ferry_worker *w, struct nat_session *s,
			 const struct ferry_pkt *p, enum tcp_dir dir)
{
	struct tcp_seg seg;

	/* A connection the fast path forwarded: its windows moved there. */
	if (s->offload_slot)
		ferry_worker__offload_tcp_sync(w, s);
	/* A malformed option list loses only the window scale; the receiver judges the rest. */
	tcp_seg_parse(p->data, &p->pi, &seg);
	if (tcp_track_segment(&s->tcp, dir, &seg) != TCP_ACCEPT) {
		const struct tcp_win *sw = &s->tcp.win[dir], *rw = &s->tcp.win[!dir];

		/* Rare and worth explaining: a blind injection, or a window ferry misjudged. */
		pr_debug_ratelimited("session %u: %s %s%s seq %u len %u ack %u out of window "
				     "(sender end %u maxend %u maxwin %u scale %u; "
				     "receiver end %u maxwin %u; state %s)",
				     s->id, dir == TCP_DIR_CLIENT ? "client" : "upstream",
				     seg.flags & TCP_FLAG_RST ? "RST" : "",
				     seg.flags & TCP_FLAG_FIN ? "FIN" : "", seg.seq, seg.len,
				     seg.ack, sw->end, sw->maxend, sw->maxwin, sw->scale, rw->end,
				     rw->maxwin, tcp_state_str(s->tcp.state));
		return FERRY_DROP_tcp_out_of_window;
	}
	s->timeout_ns = tcp_state_timeout(s->tcp.state, &c->tcp_to);
	return 0;
}

/*
 * A TCP segment about to leave: clamp a SYN's MSS to what the egress MTU
 * `mtu` carries.  Malformed options are forwarded unchanged; the receiver
 * will judge them.
 */
static void fwd_tcp_clamp(struct ferry_pkt *p, uint16_t mtu)
{
	if (tcp_flags(p->data, &p->pi) & TCP_FLAG_SYN)
		tcp_mss_clamp(p->data, &p->pi, mtu);
}

/*
 * The next hop of a client, which the sender chose: a lookup it needs is
 * queued, counted for the flow and made at the next lookup slot
 * (fwd_core__nh_poll(), woken for it), never on the packet path, so a
 * flood of spoofed sources cannot make the worker wait on rtnetlink.
 * Upstreams and copy destinations are configured, few, and looked up at
 * once.
 */
static enum nh_verdict fwd_prepare_client(struct fwd_nh *nh, uint32_t flow_id, int family,
					  const union ferry_addr *dst, uint32_t *idx, uint32_t *gen,
					  struct nat_l2 *l2, uint64_t now)
{
	uint64_t queued = nh_cache__queued_lookups(nh->cache);
	enum nh_verdict v = nh_cache__prepare_deferred(nh->cache, family, dst, idx, gen, l2, now);

	if (nh_cache__queued_lookups(nh->cache) != queued)
		ferry_worker__nh_lookup_queued(nh->w, flow_id, now);
	return v;
}

/* The next hop of a session towards its upstream: refreshes s->to_upstream. */
static enum nh_verdict fwd_hop_upstream(const struct fwd_core *c, struct fwd_nh *nh,
					struct nat_session *s, uint64_t now)
{
	return nh_cache__prepare(nh->cache, c->family, &s->upstream.daddr, &s->nh_upstream,
				 &s->nh_upstream_gen, &s->to_upstream, now);
}

/* The next hop of a session back to its client: refreshes s->to_client. */
static enum nh_verdict fwd_hop_client(const struct fwd_core *c, struct fwd_nh *nh,
				      struct nat_session *s, uint64_t now)
{
	return fwd_prepare_client(nh, s->flow_id, c->family, &s->client.saddr, &s->nh_client,
				  &s->nh_client_gen, &s->to_client, now);
}

/*
 * Both next hops of a new session; returns 0 or the drop reason.  Looking
 * the client up now lets the kernel resolve it while the request travels.
 */
static int fwd_hops_new_session(const struct fwd_core *c, struct fwd_nh *nh, struct nat_session *s,
				uint64_t now)
{
	enum nh_verdict v = fwd_hop_upstream(c, nh, s, now);

	if (v > NH_HOLD)
		return nh_verdict_drop(v);
	v = fwd_hop_client(c, nh, s, now);
	return v == NH_NO_ROUTE_DROP ? FERRY_DROP_no_route : 0;
}

/* Sends a rewritten packet through its next hop, or holds it while the neighbour resolves. */
static int fwd_out(struct fwd_nh *nh, struct ferry_pkt *p, enum nh_verdict v, uint32_t idx,
		   uint16_t port)
{
	if (v == NH_SEND) {
		ferry_pkt_tx(p, port);
		return 0;
	}
	/* Refused, the caller's drop overrides the hold. */
	return ferry_worker__nh_hold(nh->w, p, idx);
}

static int drop_for_rewrite_error(int err)
{
	return err == -ETIMEDOUT ? FERRY_DROP_ttl_exceeded : FERRY_DROP_too_big;
}

int fwd_core__from_client(const struct fwd_core *c, struct fwd_nh *nh, struct ferry_worker *w,
			  struct ferry_pkt *p, fwd_pick_fn pick, const void *pick_ctx,
			  const struct fwd_target **created)
{
	struct nat_table *nat = ferry_worker__nat(w);
	uint64_t now = ferry_worker__now_ns(w);
	struct nat_session *s;
	struct nat_tuple t;
	enum nh_verdict v;
	int err, reason;

	*created = NULL;
	nat_tuple_from_pkt(&t, &p->pi);
	s = nat_table__lookup_client(nat, &t);
	if (!s) {
		const struct fwd_target *up;
		uint64_t probes;

		/* Only a client's SYN opens a TCP session (lib/tcp_state.c). */
		if (p->pi.l4_proto == IPPROTO_TCP && !tcp_flags_open(tcp_flags(p->data, &p->pi)))
			return FERRY_DROP_no_session;
		up = pick(pick_ctx, &t);
		probes = nat_table__stats(nat)->port_probes;
		err = nat_table__insert(nat, &t, &up->egress, &up->addr, up->port, p->flow_id, now,
					&s);
		ferry_worker__flow_stats(w, p->flow_id)->nat_port_probes +=
			nat_table__stats(nat)->port_probes - probes;
		if (err == -EDQUOT)
			return FERRY_DROP_source_session_limit;
		if (err)
			return err == -ENOSPC ? FERRY_DROP_session_table_full
					      : FERRY_DROP_nat_ports_exhausted;
		reason = fwd_hops_new_session(c, nh, s, now);
		if (reason) {
			nat_table__remove(nat, s);
			return reason;
		}
		ferry_worker__flow_stats(w, p->flow_id)->sessions_created++;
		*created = up;
	}
	if (p->pi.l4_proto == IPPROTO_TCP && (reason = fwd_tcp_track(c, w, s, p, TCP_DIR_CLIENT)))
		return reason;
	s->last_seen_ns = now;
	nat_session__seen(s, now, false);
	nat_session__count(s, false, p->len);
	v = fwd_hop_upstream(c, nh, s, now);
	if (v > NH_HOLD)
		return nh_verdict_drop(v);
	if (p->pi.l4_proto == IPPROTO_TCP)
		fwd_tcp_clamp(p, s->to_upstream.mtu);
	err = nat_rewrite_to_upstream(p->data, &p->pi, s);
	if (err)
		return drop_for_rewrite_error(err);
	if (v == NH_SEND)
		ferry_worker__offload(w, s);
	return fwd_out(nh, p, v, s->nh_upstream, s->to_upstream.port);
}

/*
 * A packet of a reply rule, to the client of its session: an upstream's
 * reply, or an ICMP error about a packet this flow sent upstream, whose
 * quote names the session and which is rewritten as if about the client's
 * own packet (lib/icmp.c).  Both take the same lookup, next hop and way out;
 * an error does not refresh the session (it is no sign of life from the
 * upstream), nor is its quoted TCP segment tracked or clamped.
 */
int fwd_core__from_upstream(const struct fwd_core *c, struct fwd_nh *nh, struct ferry_worker *w,
			    struct ferry_pkt *p)
{
	uint64_t now = ferry_worker__now_ns(w);
	bool error = icmp_is_error(&p->pi);
	bool tcp = !error && p->pi.l4_proto == IPPROTO_TCP;
	struct nat_session *s;
	struct nat_tuple t;
	enum nh_verdict v;
	int err, reason;

	if (error)
		icmp_quote_reply_tuple(&t, &p->pi);
	else
		nat_tuple_from_pkt(&t, &p->pi);
	/* Found on receipt already (daemon/rx.c): checked, not looked up again. */
	s = nat_table__lookup_reply_hint(ferry_worker__nat(w), p->reply_session, &t);
	if (!s || s->flow_id != p->flow_id)
		return FERRY_DROP_no_session;
	if (tcp && (reason = fwd_tcp_track(c, w, s, p, TCP_DIR_UPSTREAM)))
		return reason;
	if (!error) {
		s->last_seen_ns = now;
		/* Replied, and a stream after a while: early drop passes it by then. */
		nat_session__seen(s, now, true);
		nat_session__count(s, true, p->len);
	}
	v = fwd_hop_client(c, nh, s, now);
	if (v > NH_HOLD)
		return nh_verdict_drop(v);
	if (tcp)
		fwd_tcp_clamp(p, s->to_client.mtu);
	if (error) {
		err = icmp_rewrite_to_client(p->data, &p->pi, s);
		if (err == -EINVAL)
			return FERRY_DROP_malformed;
	} else {
		err = nat_rewrite_to_client(p->data, &p->pi, s);
	}
	if (err)
		return drop_for_rewrite_error(err);
	if (error)
		ferry_worker__flow_stats(w, p->flow_id)->icmp_translated++;
	else if (v == NH_SEND)
		ferry_worker__offload(w, s);
	return fwd_out(nh, p, v, s->nh_client, s->to_client.port);
}

/* ---- one-way copies ---- */

void fwd_core__oneway_init(struct fwd_oneway *o, const struct fwd_core *c,
			   const struct fwd_target *t)
{
	memset(o, 0, sizeof(*o));
	o->family = c->family == AF_INET ? 4 : 6;
	o->s.upstream.family = o->family;
	o->s.upstream.saddr = t->egress;
	o->s.upstream.daddr = t->addr;
	o->s.upstream.dport = t->port;
}

int fwd_core__oneway_send(struct fwd_nh *nh, struct ferry_worker *w, struct fwd_oneway *o,
			  struct ferry_pkt *p)
{
	uint64_t now = ferry_worker__now_ns(w);
	struct nat_session *s = &o->s;
	enum nh_verdict v;
	int err;

	/* The flow's rule admits only its own family; anything else is not ours to copy. */
	if (p->pi.family != o->family)
		return FERRY_DROP_malformed;
	v = nh_cache__prepare(nh->cache, o->family == 4 ? AF_INET : AF_INET6, &s->upstream.daddr,
			      &s->nh_upstream, &s->nh_upstream_gen, &s->to_upstream, now);
	if (v > NH_HOLD)
		return nh_verdict_drop(v);
	/* The template stands in for a session of exactly this packet's tuple. */
	s->client.family = p->pi.family;
	s->client.proto = p->pi.l4_proto;
	s->upstream.proto = p->pi.l4_proto;
	s->upstream.sport = p->pi.sport;
	err = nat_rewrite_to_upstream(p->data, &p->pi, s);
	if (err)
		return drop_for_rewrite_error(err);
	return fwd_out(nh, p, v, s->nh_upstream, s->to_upstream.port);
}
