// SPDX-License-Identifier: BSD-2-Clause
/*
 * A worker's receive side: everything between a port's RX ring and the
 * chain runner.  It owns
 *   - admission: reading a burst from a port (port__rx()), or taking the
 *     replies other workers handed over into frames of our own pool;
 *   - parsing, trimming (a frame leaves no longer than its IP packet) and
 *     classification with the daemon's rule table, first match, as the XDP
 *     program does; a reply then goes to the flow of the session its NAT
 *     port names;
 *   - hand-off: a reply whose NAT port is another worker's goes to that
 *     worker (daemon/handoff.c), and the owners are woken once per loop;
 *   - grouping a burst per flow, in order of first appearance, for
 *     worker__run_chain() (daemon/chain.c).
 * It must not run services, queue TX or touch a TX ring: that is chain.c's,
 * nor change the rules or flows, which are the main thread's (reload.c).
 * A client's packet is counted in rx_packets by the worker whose socket
 * received it; a reply by the worker that owns its session, on the
 * session's flow, which need not be the flow whose reply rule matched.
 */
#include <errno.h>
#include <string.h>

#include "ferry_match.h"
#include "handoff.h"
#include "icmp.h"
#include "nat.h"
#include "worker.h"

/*
 * NAT port slices: each worker allocates NAT ports from its own slice, so a
 * reply's NAT port names the worker that owns its session.
 */
void worker__nat_slice(const struct ferry_daemon *d, uint32_t id, uint16_t *lo, uint16_t *hi)
{
	const struct cfg_port_range *r = &d->cfg.nat.ports;
	/* The config guarantees at least one port per worker. */
	uint32_t span = (uint32_t)(r->hi - r->lo + 1) / d->nr_workers;

	*lo = (uint16_t)(r->lo + id * span);
	/* The last worker also takes the remainder. */
	*hi = id == d->nr_workers - 1 ? r->hi : (uint16_t)(*lo + span - 1);
}

int worker__nat_owner(const struct ferry_daemon *d, uint16_t port)
{
	const struct cfg_port_range *r = &d->cfg.nat.ports;
	uint32_t span, id;

	if (port < r->lo || port > r->hi)
		return -ENOENT;
	span = (uint32_t)(r->hi - r->lo + 1) / d->nr_workers;
	id = (uint32_t)(port - r->lo) / span;
	return (int)(id < d->nr_workers ? id : d->nr_workers - 1);
}

/* Which flow, and which direction, a parsed packet belongs to: first matching rule. */
static const struct ferry_rule *classify(const struct ferry_daemon *d, const struct pkt_info *pi,
					 int ifindex)
{
	struct ferry_match_key k = {
		.sport = pi->sport,
		.dport = pi->dport,
		.family = pi->family,
		.l4_proto = pi->l4_proto,
		.ports_valid = 1,
		.ifindex = (__u32)ifindex,
	};

	memcpy(k.saddr, pi->saddr.w, sizeof(k.saddr));
	memcpy(k.daddr, pi->daddr.w, sizeof(k.daddr));
	/* An ICMP error belongs to the flow of the packet it quotes, reply rules only. */
	if (icmp_is_error(pi) && icmp_error_match_key(&k, pi))
		return NULL;
	for (uint32_t i = 0; i < d->nr_rules; i++)
		if (ferry_rule_match(&d->rules[i], &k))
			return &d->rules[i];
	return NULL;
}

const struct ferry_rule *worker__classify(struct ferry_worker *w, struct ferry_pkt *p,
					  uint64_t addr, uint32_t len, const struct port *port)
{
	const struct ferry_rule *rule;

	p->addr = addr;
	p->len = len;
	p->data = umem__data(w->umem, addr);
	p->in_port = port->index;
	p->verdict = FERRY_VERDICT_NEXT;
	p->drop_reason = 0;
	p->reply_session = NULL;
	if (pkt_parse(p->data, p->len, &p->pi) != PKT_OK)
		return NULL;
	/*
	 * Every packet enters the chains here: trimmed once, it cannot leave
	 * with a trailer past the IP packet, whichever service sends it.
	 */
	p->len = pkt_frame_len(&p->pi, len);
	rule = classify(w->d, &p->pi, port->ifindex);
	if (!rule)
		return NULL;
	p->flow_id = rule->flow_id;
	p->dir = rule->dir;
	return rule;
}

/*
 * Several flows may forward to one upstream: their reply rules are then
 * identical and the first one takes every reply, so the rule cannot say
 * whose reply it is.  The session can: a reply (or an ICMP error quoting
 * one) belongs to the flow that created the session its NAT port names.
 * Without a session the rule's flow keeps it, and its chain drops it as
 * no_session.  Called by the worker owning the NAT port only.  The session
 * found rides with the packet, so that forward does not look it up again
 * (fwd_core__from_upstream() checks it is still that reply's: an insert's
 * early drop in an earlier chain run of the burst may have removed it).
 */
static void reply_flow(struct ferry_worker *w, struct ferry_pkt *p)
{
	struct nat_session *s;
	struct nat_tuple t;

	if (p->dir != FERRY_DIR_REPLY || !w->nat)
		return;
	if (icmp_is_error(&p->pi))
		icmp_quote_reply_tuple(&t, &p->pi);
	else
		nat_tuple_from_pkt(&t, &p->pi);
	s = nat_table__lookup_reply(w->nat, &t);
	p->reply_session = s;
	if (s && s->flow_id < (uint32_t)w->d->nr_flows)
		p->flow_id = s->flow_id;
}

/* The NAT port a reply is addressed to; an ICMP error quotes it as its source port. */
static uint16_t reply_nat_port(const struct pkt_info *pi)
{
	return icmp_is_error(pi) ? pi->quote.sport : pi->dport;
}

/*
 * Copies a reply into the ring towards the worker that owns its NAT port and
 * frees our frame at once: each UMEM's frames stay with their own worker.
 */
static void hand_off(struct ferry_worker *w, struct ferry_pkt *p, uint32_t owner)
{
	struct ferry_fwd_stats *st = &w->flow_stats[p->flow_id];
	struct handoff_ring *r = handoff__ring(w->handoff, w->id, owner);
	/* What the owner cannot read from the bytes: the port, and the flow to count a drop on. */
	uint64_t tag = (uint64_t)p->flow_id << 16 | p->in_port;

	if (handoff_ring__push(r, p->data, p->len, tag)) {
		/* Its session is the owner's: the rule's flow is all we know. */
		st->rx_packets++;
		st->rx_bytes += p->len;
		st->drop_handoff_full++;
	} else {
		st->handoff_packets++;
		w->handoff_notify |= 1ull << owner;
	}
	umem__free(w->umem, p->addr);
}

bool worker__admit(struct ferry_worker *w, uint64_t addr, uint32_t len, const struct port *port,
		   bool handed_in, uint32_t *nr)
{
	struct ferry_pkt *p = &w->pkts[*nr];
	int owner;

	if (!worker__classify(w, p, addr, len, port)) {
		/* No flow to count it on: the interface's queue counters have it. */
		w->unclassified++;
		w->ports[port->index]->stats.drop_malformed++;
		umem__free(w->umem, addr);
		return false;
	}
	if (!handed_in && p->dir == FERRY_DIR_REPLY && w->handoff) {
		owner = worker__nat_owner(w->d, reply_nat_port(&p->pi));
		if (owner >= 0 && (uint32_t)owner != w->id) {
			hand_off(w, p, (uint32_t)owner);
			return false;
		}
	}
	reply_flow(w, p);
	/* Only replies are handed off: each packet is counted here once. */
	w->flow_stats[p->flow_id].rx_packets++;
	w->flow_stats[p->flow_id].rx_bytes += p->len;
	(*nr)++;
	return true;
}

void worker__burst_begin(struct ferry_worker *w, uint32_t nr)
{
	/* Each chain run may queue up to nr more frames on one egress port. */
	for (int i = 0; i < w->nr_ports; i++) {
		if (w->nr_tx[i] + nr > WORKER_MAX_BATCH) {
			worker__flush_tx(w);
			break;
		}
	}
	memset(w->grouped, 0, nr);
}

uint32_t worker__burst_next(struct ferry_worker *w, uint32_t nr, uint32_t *pos, uint32_t *flow)
{
	/* One batch per flow, in order of first appearance; bursts are mostly one flow. */
	for (uint32_t i = *pos; i < nr; i++) {
		uint32_t m = 0;

		if (w->grouped[i])
			continue;
		*flow = w->pkts[i].flow_id;
		for (uint32_t j = i; j < nr; j++) {
			if (!w->grouped[j] && w->pkts[j].flow_id == *flow) {
				w->grouped[j] = 1;
				w->flow_pkts[m++] = &w->pkts[j];
			}
		}
		*pos = i + 1;
		return m;
	}
	*pos = nr;
	return 0;
}

void worker__run_burst(struct ferry_worker *w, uint32_t nr)
{
	uint32_t pos = 0, flow, m;

	worker__burst_begin(w, nr);
	while ((m = worker__burst_next(w, nr, &pos, &flow)))
		worker__run_chain(w, flow, w->flow_pkts, m);
}

uint32_t worker__rx(struct ferry_worker *w, int port)
{
	struct port *xp = w->ports[port];
	uint32_t n = port__rx(xp, w->rx_frames, w->batch), nr = 0;

	if (!n)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		worker__admit(w, w->rx_frames[i].addr, w->rx_frames[i].len, xp, false, &nr);
	worker__run_burst(w, nr);
	return n;
}

bool worker__take_handoffs(struct ferry_worker *w)
{
	uint32_t n = w->d->nr_workers, nr = 0, taken = 0;

	for (uint32_t k = 0; k < n && taken < w->batch; k++) {
		uint32_t from = (w->handoff_next + k) % n;
		struct handoff_ring *r = handoff__ring(w->handoff, from, w->id);
		const void *data;
		uint64_t tag, addr;
		uint32_t len;

		if (!r)
			continue;
		while (taken < w->batch && (data = handoff_ring__peek(r, &len, &tag))) {
			uint16_t in_port = (uint16_t)tag;

			taken++;
			if (in_port >= w->nr_ports || !umem__alloc(w->umem, &addr)) {
				/* Never classified here: counted on the sender's rule's flow. */
				w->flow_stats[tag >> 16].rx_packets++;
				w->flow_stats[tag >> 16].rx_bytes += len;
				w->flow_stats[tag >> 16].drop_handoff_full++;
				handoff_ring__pop(r);
				continue;
			}
			memcpy(umem__data(w->umem, addr), data, len);
			handoff_ring__pop(r);
			worker__admit(w, addr, len, w->ports[in_port], true, &nr);
		}
	}
	w->handoff_next = (w->handoff_next + 1) % n;
	w->handoff_in += taken;
	if (nr)
		worker__run_burst(w, nr);
	return taken != 0;
}

void worker__notify_owners(struct ferry_worker *w)
{
	for (uint64_t m = w->handoff_notify; m; m &= m - 1)
		handoff__notify(w->handoff, (uint32_t)__builtin_ctzll(m));
	w->handoff_notify = 0;
}
