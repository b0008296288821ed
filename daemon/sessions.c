// SPDX-License-Identifier: BSD-2-Clause
/*
 * The workers' side of ferryctl sessions (see sessions.h): a chunk of the
 * worker's own NAT table copied between two loop iterations.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "nat.h"
#include "offload.h"
#include "sessions.h"
#include "worker.h"

static bool addr_is(const union ferry_addr *a, const struct sess_snap *q)
{
	return !memcmp(a->b, q->addr, q->family == 4 ? 4 : 16);
}

static bool wanted(const struct nat_session *s, const struct sess_snap *q)
{
	if ((q->flags & FERRY_CTL_SESS_FLOW) && s->flow_id != q->flow_id)
		return false;
	if (q->flags & FERRY_CTL_SESS_ADDR)
		return s->client.family == q->family &&
		       (addr_is(&s->client.saddr, q) || addr_is(&s->upstream.daddr, q));
	return true;
}

static uint64_t ms_since(uint64_t now_ns, uint64_t then_ns)
{
	return now_ns > then_ns ? (now_ns - then_ns) / 1000000ull : 0;
}

static void fill(struct ferry_ctl_session *r, const struct nat_session *s, uint32_t worker,
		 uint64_t now_ns)
{
	memset(r, 0, sizeof(*r));
	r->family = s->client.family;
	r->proto = s->client.proto;
	r->tcp_state = s->client.proto == IPPROTO_TCP ? s->tcp.state : 0;
	r->flags = (s->offload_slot ? FERRY_CTL_SESS_OFFLOADED : 0) |
		   (s->replied ? FERRY_CTL_SESS_REPLIED : 0) |
		   (s->assured ? FERRY_CTL_SESS_ASSURED : 0);
	r->flow_id = s->flow_id;
	r->worker = worker;
	memcpy(r->client, s->client.saddr.b, 16);
	memcpy(r->flow, s->client.daddr.b, 16);
	memcpy(r->nat, s->upstream.saddr.b, 16);
	memcpy(r->upstream, s->upstream.daddr.b, 16);
	r->client_port = s->client.sport;
	r->flow_port = s->client.dport;
	r->nat_port = s->upstream.sport;
	r->upstream_port = s->upstream.dport;
	r->age_ms = ms_since(now_ns, s->created_ns);
	r->idle_ms = ms_since(now_ns, s->last_seen_ns);
	r->packets_out = s->dir_packets[0];
	r->bytes_out = s->dir_bytes[0];
	r->packets_in = s->dir_packets[1];
	r->bytes_in = s->dir_bytes[1];
}

void sessions__collect(const struct nat_table *t, struct sess_snap *q, uint32_t worker,
		       uint64_t now_ns,
		       int64_t (*xdp_slot)(const void *ctx, const struct nat_session *s),
		       const void *ctx)
{
	uint32_t slot = q->slot, scanned = 0, cap = nat_table__capacity(t);
	uint32_t max = q->max && q->max <= FERRY_CTL_SESS_CHUNK ? q->max : FERRY_CTL_SESS_CHUNK;

	q->nr = 0;
	q->now_ns = now_ns;
	while (q->nr < max && slot < cap && scanned < SESS_SCAN_LIMIT) {
		uint32_t from = slot;
		const struct nat_session *s = nat_table__next(t, &slot, SESS_SCAN_LIMIT - scanned);

		scanned += slot - from;
		if (!s)
			continue;
		if (!wanted(s, q))
			continue;
		fill(&q->recs[q->nr], s, worker, now_ns);
		q->xdp_slot[q->nr] = xdp_slot ? xdp_slot(ctx, s) : -1;
		q->last_seen_ns[q->nr] = s->last_seen_ns;
		q->nr++;
	}
	q->next_slot = slot;
	q->end = slot >= cap;
	q->count = nat_table__count(t);
}

static int64_t worker_xdp_slot(const void *ctx, const struct nat_session *s)
{
	return offload__stats_slot(ctx, s);
}

void sessions__serve(struct ferry_worker *w)
{
	struct sess_snap *q = atomic_load_explicit(&w->snap_req, memory_order_acquire);
	int fd = atomic_load_explicit(&w->control_fd, memory_order_relaxed);
	uint64_t v;

	if (!q)
		return;
	/* The doorbell, reset here: an idle wait must not wake for this request again. */
	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		v = 0;
	sessions__collect(w->nat, q, w->id, w->now_ns, worker_xdp_slot, w);
	atomic_store_explicit(&w->snap_req, NULL, memory_order_relaxed);
	atomic_store_explicit(&q->done, 1, memory_order_release);
}
