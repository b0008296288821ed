// SPDX-License-Identifier: BSD-2-Clause
/*
 * The XDP fast path from ferryd's side (see offload.h): which flows may use
 * it, the workers' installs, removals and next-hop updates of their
 * sessions' entries, and the fast path's packets in the published counters.
 *
 * Map writes are syscalls, made per session (install, removal, a next-hop
 * change, an idle check), never per packet; installs are batched after the
 * worker's TX flush.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "log.h"
#include "nat.h"
#include "nh_cache.h"
#include "offload.h"
#include "service.h"
#include "steer.h"
#include "tcp_state.h"
#include "worker.h"

/* One installed session: what its two entries are keyed by, to take them back. */
struct offload_ent {
	struct nat_session *s;
	struct ferry_sess_key key[2]; /* by enum ferry_dir */
};

struct worker_offload {
	int map_fd;	  /* ferry_sessions */
	int stats_fd;	  /* ferry_sess_stats */
	uint32_t base;	  /* first slot of this worker's slice */
	uint32_t capacity; /* slots (sessions) in the slice */
	uint32_t *free;	  /* stack of free slots, relative to base */
	uint32_t nr_free;
	struct offload_ent *ents; /* by relative slot */
	int nr_cpus;
	struct ferry_sess_stats *percpu; /* nr_cpus values of one stats entry */
	struct nat_session *pending[OFFLOAD_PENDING];
	uint32_t pending_id[OFFLOAD_PENDING];
	uint32_t nr_pending;
	uint64_t nh_changes; /* next-hop cache changes the entries follow */
	int last_err;	     /* of the last failed map write, logged once */
};

/* ---- which flows ---- */

void offload__decide(const struct ferry_daemon *d, struct flow_chain *ch,
		     const struct cfg_flow *flow)
{
	ch->offload = false;
	ch->offload_why[0] = '\0';
	if (flow->offload == CFG_OFFLOAD_OFF) {
		snprintf(ch->offload_why, sizeof(ch->offload_why), "offload: off");
		return;
	}
	if (!d->cfg.nat.offload_max_sessions) {
		snprintf(ch->offload_why, sizeof(ch->offload_why), "nat.offload_max_sessions: 0");
		return;
	}
	if (!ch->nr) {
		snprintf(ch->offload_why, sizeof(ch->offload_why), "no services");
		return;
	}
	for (int s = 0, limits = 0; s < ch->nr; s++) {
		if (!service__offloadable(ch->ops[s], ch->conf[s], ch->offload_why,
					  sizeof(ch->offload_why)))
			return;
		/* The fast path has one bucket set per flow (ferry_rl_params). */
		if (service__is_ratelimit(ch->ops[s]) && ++limits > 1) {
			snprintf(ch->offload_why, sizeof(ch->offload_why),
				 "ratelimit: more than one in the chain");
			return;
		}
	}
	/* Only a NAT service ends a chain that sends: forward or lb decides the rewrite. */
	if (strcmp(ch->ops[ch->nr - 1]->name, "forward") && strcmp(ch->ops[ch->nr - 1]->name, "lb")) {
		snprintf(ch->offload_why, sizeof(ch->offload_why), "%s: not a NAT service",
			 ch->ops[ch->nr - 1]->name);
		return;
	}
	ch->offload = true;
}

/* The chain's ratelimit's position, or -1. */
static int rl_pos(const struct flow_chain *ch)
{
	for (int s = 0; s < ch->nr; s++)
		if (service__is_ratelimit(ch->ops[s]))
			return s;
	return -1;
}

int offload__write_ratelimit(struct ferry_daemon *d, uint32_t flow_id, bool configured)
{
	/* Names this configuration: buckets of an earlier one (or run) start again full. */
	static uint64_t gen;
	const struct flow_chain *ch = &d->flows[flow_id];
	struct ferry_rl_params p;
	int pos;

	if (flow_id >= CFG_MAX_FLOWS)
		return -ERANGE;
	memset(&p, 0, sizeof(p));
	pos = configured && ch->offload ? rl_pos(ch) : -1;
	if (pos >= 0) {
		struct timespec ts;

		if (!gen && !clock_gettime(CLOCK_REALTIME, &ts))
			gen = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		svc_ratelimit__offload_params(ch->conf[pos], ++gen, &p);
	}
	return steer__set_flow_ratelimit(d->steer, flow_id, &p);
}

/* ---- a worker's slice ---- */

static void offload_removed(struct nat_session *s, void *ctx);
static bool offload_busy(struct nat_session *s, void *ctx);

int offload__worker_init(struct ferry_worker *w)
{
	const struct ferry_daemon *d = w->d;
	uint32_t total = d->cfg.nat.offload_max_sessions;
	struct worker_offload *o;

	if (!total || !d->offload_maps)
		return 0;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->map_fd = d->offload_map_fd;
	o->stats_fd = d->offload_stats_fd;
	o->capacity = total / d->nr_workers;
	o->base = w->id * o->capacity;
	o->nr_cpus = libbpf_num_possible_cpus();
	if (!o->capacity || o->nr_cpus <= 0) {
		free(o);
		return 0;
	}
	o->free = calloc(o->capacity, sizeof(*o->free));
	o->ents = calloc(o->capacity, sizeof(*o->ents));
	o->percpu = calloc((size_t)o->nr_cpus, sizeof(*o->percpu));
	if (!o->free || !o->ents || !o->percpu) {
		free(o->free);
		free(o->ents);
		free(o->percpu);
		free(o);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->capacity; i++)
		o->free[i] = o->capacity - 1 - i;
	o->nr_free = o->capacity;
	w->offload = o;
	nat_table__set_remove_hook(w->nat, offload_removed, w);
	nat_table__set_idle_check(w->nat, offload_busy, w);
	return 0;
}

static void entries_delete(struct worker_offload *o, struct offload_ent *e)
{
	for (int dir = 0; dir < 2; dir++)
		if (bpf_map_delete_elem(o->map_fd, &e->key[dir]) && errno != ENOENT &&
		    errno != o->last_err) {
			o->last_err = errno;
			pr_warn("offload: cannot remove a session's entry from %s: %s",
				FERRY_PIN_SESSIONS, strerror(errno));
		}
}

void offload__worker_destroy(struct ferry_worker *w)
{
	struct worker_offload *o = w->offload;

	if (!o)
		return;
	/* The map outlives a worker (a reload of queues is a restart): leave nothing in it. */
	for (uint32_t i = 0; i < o->capacity; i++)
		if (o->ents[i].s)
			entries_delete(o, &o->ents[i]);
	nat_table__set_remove_hook(w->nat, NULL, NULL);
	nat_table__set_idle_check(w->nat, NULL, NULL);
	free(o->free);
	free(o->ents);
	free(o->percpu);
	free(o);
	w->offload = NULL;
}

void offload__entry(const struct nat_session *s, enum ferry_dir dir, int client_ifindex,
		    int upstream_ifindex, uint32_t slot, uint32_t worker, struct ferry_sess_key *k,
		    struct ferry_sess *v)
{
	const struct nat_tuple *in, *out;
	const struct nat_l2 *l2;
	const struct nat_rw *rw;
	size_t alen = s->client.family == 4 ? 4 : 16;
	struct nat_tuple rev_in, rev_out;
	int in_ifindex, out_ifindex;

	if (dir == FERRY_DIR_CLIENT) {
		in = &s->client;
		out = &s->upstream;
		l2 = &s->to_upstream;
		rw = &s->rw_upstream;
		in_ifindex = client_ifindex;
		out_ifindex = upstream_ifindex;
	} else {
		/* A reply arrives as upstream -> egress:nat_port, leaves as flow -> client. */
		memset(&rev_in, 0, sizeof(rev_in));
		memset(&rev_out, 0, sizeof(rev_out));
		rev_in.saddr = s->upstream.daddr;
		rev_in.daddr = s->upstream.saddr;
		rev_in.sport = s->upstream.dport;
		rev_in.dport = s->upstream.sport;
		rev_out.saddr = s->client.daddr;
		rev_out.daddr = s->client.saddr;
		in = &rev_in;
		out = &rev_out;
		l2 = &s->to_client;
		rw = &s->rw_client;
		in_ifindex = upstream_ifindex;
		out_ifindex = client_ifindex;
	}
	memset(k, 0, sizeof(*k));
	memcpy(k->saddr, in->saddr.b, alen);
	memcpy(k->daddr, in->daddr.b, alen);
	k->sport = htons(in->sport);
	k->dport = htons(in->dport);
	/* It arrives where the kernel routes its sender: the way back to it. */
	k->ifindex = (__u32)in_ifindex;
	k->family = s->client.family;
	k->l4_proto = s->client.proto;

	memset(v, 0, sizeof(*v));
	memcpy(v->dst_mac, l2->dst_mac, 6);
	memcpy(v->src_mac, l2->src_mac, 6);
	memcpy(v->saddr, out->saddr.b, alen);
	memcpy(v->daddr, out->daddr.b, alen);
	v->sport = rw->sport;
	v->dport = rw->dport;
	v->ip_delta = rw->ip_delta;
	v->l4_delta = rw->l4_delta;
	v->egress_ifindex = (__u32)out_ifindex;
	v->mtu = l2->mtu;
	v->dir = (__u8)dir;
	v->flow_id = s->flow_id;
	v->stats_slot = slot * 2 + dir;
	v->worker = worker;
}

/* The entry of one direction of `s`, with the ifindexes of its ports. */
static void entry_make(const struct ferry_worker *w, const struct nat_session *s,
		       enum ferry_dir dir, uint32_t slot, struct ferry_sess_key *k,
		       struct ferry_sess *v)
{
	const struct ferry_daemon *d = w->d;

	offload__entry(s, dir, d->ports[s->to_client.port].ifindex,
		       d->ports[s->to_upstream.port].ifindex, slot, w->id, k, v);
}

static void count_error(struct worker_offload *o, int err, const char *what)
{
	if (err == o->last_err)
		return;
	o->last_err = err;
	pr_warn("offload: cannot %s %s: %s", what, FERRY_PIN_SESSIONS, strerror(err));
}

/* Both entries of `s`, or neither; its counters start from zero. */
static int install(struct ferry_worker *w, struct nat_session *s)
{
	struct worker_offload *o = w->offload;
	struct ferry_sess v[2];
	struct offload_ent *e;
	uint32_t rel, slot;

	if (!o->nr_free) {
		ferry_worker__flow_stats(w, s->flow_id)->offload_full++;
		s->offload_retry_ns = w->now_ns + OFFLOAD_RETRY_NS;
		return -ENOSPC;
	}
	rel = o->free[o->nr_free - 1];
	slot = o->base + rel;
	e = &o->ents[rel];
	memset(o->percpu, 0, (size_t)o->nr_cpus * sizeof(*o->percpu));
	for (int dir = 0; dir < 2; dir++) {
		__u32 key = slot * 2 + dir;

		entry_make(w, s, (enum ferry_dir)dir, slot, &e->key[dir], &v[dir]);
		if (bpf_map_update_elem(o->stats_fd, &key, o->percpu, BPF_ANY)) {
			count_error(o, errno, "reset a session's counters in");
			goto err_delete;
		}
	}
	for (int dir = 0; dir < 2; dir++) {
		if (!bpf_map_update_elem(o->map_fd, &e->key[dir], &v[dir], BPF_NOEXIST))
			continue;
		if (errno == E2BIG || errno == ENOMEM) {
			/* The map is shared: another worker's sessions may have filled it. */
			ferry_worker__flow_stats(w, s->flow_id)->offload_full++;
			s->offload_retry_ns = w->now_ns + OFFLOAD_RETRY_NS;
		} else {
			count_error(o, errno, "install a session in");
			s->offload_retry_ns = w->now_ns + OFFLOAD_RETRY_NS;
		}
		if (dir)
			bpf_map_delete_elem(o->map_fd, &e->key[0]);
		goto err_delete;
	}
	o->nr_free--;
	e->s = s;
	s->offload_slot = rel + 1;
	ferry_worker__flow_stats(w, s->flow_id)->sessions_offloaded++;
	return 0;

err_delete:
	memset(e, 0, sizeof(*e));
	return -EIO;
}

/* Takes `s` out of the fast path; its per-session counters are left to be overwritten. */
static void uninstall(struct ferry_worker *w, struct nat_session *s)
{
	struct worker_offload *o = w->offload;
	struct offload_ent *e;

	if (!o || !s->offload_slot || s->offload_slot > o->capacity)
		return;
	e = &o->ents[s->offload_slot - 1];
	if (e->s == s) {
		entries_delete(o, e);
		memset(e, 0, sizeof(*e));
		o->free[o->nr_free++] = s->offload_slot - 1;
	}
	s->offload_slot = 0;
}

static void offload_removed(struct nat_session *s, void *ctx)
{
	struct ferry_worker *w = ctx;

	uninstall(w, s);
	/* A pending install of this slot must not find a stranger there. */
	for (uint32_t i = 0; w->offload && i < w->offload->nr_pending; i++)
		if (w->offload->pending[i] == s)
			w->offload->pending[i] = NULL;
}

/*
 * One direction's counters, newest CPU first: 0 with *last the latest
 * last_seen_ns and *tcp the record of the CPU that saw it, -errno.
 */
void offload__merge_stats(const struct ferry_sess_stats *percpu, int nr_cpus,
			  struct ferry_sess_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < nr_cpus; c++) {
		const struct ferry_sess_stats *st = &percpu[c];

		out->packets += st->packets;
		out->bytes += st->bytes;
		if (st->last_seen_ns > out->last_seen_ns)
			out->last_seen_ns = st->last_seen_ns;
		if (!st->tcp_valid)
			continue;
		/*
		 * The furthest any CPU saw, not the CPU that saw the session
		 * last: segments of one connection may be taken on several
		 * CPUs, and the last one taken need not be the newest.
		 */
		if (!out->tcp_valid || (int32_t)(st->tcp_seq_end - out->tcp_seq_end) > 0)
			out->tcp_seq_end = st->tcp_seq_end;
		if (!out->tcp_valid || (int32_t)(st->tcp_ack - out->tcp_ack) >= 0) {
			out->tcp_ack = st->tcp_ack;
			out->tcp_win = st->tcp_win;
		}
		out->tcp_valid = 1;
	}
}

static int read_stats(struct worker_offload *o, uint32_t key, struct ferry_sess_stats *merged)
{
	memset(merged, 0, sizeof(*merged));
	if (bpf_map_lookup_elem(o->stats_fd, &key, o->percpu))
		return -errno;
	offload__merge_stats(o->percpu, o->nr_cpus, merged);
	return 0;
}

/* nat_table__expire() and early drop ask before they take a session that looks idle. */
static bool offload_busy(struct nat_session *s, void *ctx)
{
	struct ferry_worker *w = ctx;
	struct worker_offload *o = w->offload;
	struct ferry_sess_stats st;
	bool seen = false;

	if (!o || !s->offload_slot)
		return false;
	for (int dir = 0; dir < 2; dir++) {
		uint32_t key = (o->base + s->offload_slot - 1) * 2 + dir;

		if (read_stats(o, key, &st))
			continue;
		if (st.last_seen_ns > s->last_seen_ns) {
			s->last_seen_ns = st.last_seen_ns;
			seen = true;
		}
	}
	return seen;
}

void ferry_worker__offload_tcp_sync(struct ferry_worker *w, struct nat_session *s)
{
	struct worker_offload *o = w->offload;
	struct ferry_sess_stats st;

	if (!o || !s->offload_slot)
		return;
	for (int dir = 0; dir < 2; dir++) {
		uint32_t key = (o->base + s->offload_slot - 1) * 2 + dir;

		if (read_stats(o, key, &st) || !st.tcp_valid)
			continue;
		/* FERRY_DIR_CLIENT is TCP_DIR_CLIENT, FERRY_DIR_REPLY TCP_DIR_UPSTREAM. */
		tcp_track_resync(&s->tcp, dir == FERRY_DIR_CLIENT ? TCP_DIR_CLIENT : TCP_DIR_UPSTREAM,
				 st.tcp_seq_end, st.tcp_ack, (uint16_t)st.tcp_win);
		if (st.last_seen_ns > s->last_seen_ns)
			s->last_seen_ns = st.last_seen_ns;
	}
}

/* ---- when ---- */

/* Whether `s` belongs in the fast path now. */
static bool qualifies(const struct ferry_worker *w, const struct nat_session *s)
{
	if (s->flow_id >= CFG_MAX_FLOWS || !w->d->flows[s->flow_id].offload)
		return false;
	if (!s->rw_upstream.ready || !s->rw_client.ready)
		return false;
	/* Both ways out must take XDP redirects (offload_egress.c), or it gains nothing. */
	if (w->d->egress_state[s->to_upstream.port] != 1 || w->d->egress_state[s->to_client.port] != 1)
		return false;
	if (s->client.proto == IPPROTO_TCP)
		return s->tcp.state == TCP_ST_ESTABLISHED && !s->tcp.fin_sent && !s->tcp.fin_seen;
	return s->replied || s->packets >= OFFLOAD_UDP_PACKETS;
}

void ferry_worker__offload(struct ferry_worker *w, struct nat_session *s)
{
	struct worker_offload *o = w->offload;

	if (!o)
		return;
	if (s->offload_slot) {
		if (!qualifies(w, s))
			uninstall(w, s);
		return;
	}
	if (w->now_ns < s->offload_retry_ns || !qualifies(w, s))
		return;
	for (uint32_t i = 0; i < o->nr_pending; i++)
		if (o->pending[i] == s)
			return;
	if (o->nr_pending == OFFLOAD_PENDING)
		return;
	o->pending[o->nr_pending] = s;
	o->pending_id[o->nr_pending] = s->id;
	o->nr_pending++;
}

enum hops {
	HOPS_READY,   /* both next hops known: entries may be written */
	HOPS_PENDING, /* one is being resolved: what is installed stays */
	HOPS_GONE,    /* no route or no neighbour: back to the worker, which drops as before */
};

/*
 * Both next hops of `s`, refreshed from the worker's next-hop cache;
 * *changed when either moved since the session last copied it.
 */
static enum hops hops_check(struct ferry_worker *w, struct nat_session *s, bool *changed)
{
	struct nh_cache *c = w->nexthop.cache;
	int family = s->client.family == 4 ? AF_INET : AF_INET6;
	uint32_t up_gen = s->nh_upstream_gen, cl_gen = s->nh_client_gen;
	enum nh_verdict up, cl;

	if (!c)
		return HOPS_GONE;
	up = nh_cache__prepare(c, family, &s->upstream.daddr, &s->nh_upstream, &s->nh_upstream_gen,
			       &s->to_upstream, w->now_ns);
	cl = nh_cache__prepare_deferred(c, family, &s->client.saddr, &s->nh_client,
					&s->nh_client_gen, &s->to_client, w->now_ns);
	if (changed)
		*changed = up_gen != s->nh_upstream_gen || cl_gen != s->nh_client_gen;
	if (up > NH_HOLD || cl > NH_HOLD)
		return HOPS_GONE;
	return up == NH_SEND && cl == NH_SEND ? HOPS_READY : HOPS_PENDING;
}

/*
 * An installed session's entries after its next hops moved: written over
 * in place (the fast path never misses them), new keys first and the old
 * ones removed after when its interfaces moved.
 */
static void rewrite_entries(struct ferry_worker *w, struct nat_session *s)
{
	struct worker_offload *o = w->offload;
	struct offload_ent *e = &o->ents[s->offload_slot - 1];
	struct ferry_sess_key k[2];
	struct ferry_sess v[2];
	uint32_t slot = o->base + s->offload_slot - 1;

	for (int dir = 0; dir < 2; dir++) {
		entry_make(w, s, (enum ferry_dir)dir, slot, &k[dir], &v[dir]);
		if (bpf_map_update_elem(o->map_fd, &k[dir], &v[dir], BPF_ANY)) {
			count_error(o, errno, "rewrite a session in");
			/* Half old, half new is worse than the worker's path. */
			bpf_map_delete_elem(o->map_fd, &k[dir]);
			uninstall(w, s);
			return;
		}
	}
	for (int dir = 0; dir < 2; dir++) {
		if (memcmp(&k[dir], &e->key[dir], sizeof(k[dir])))
			bpf_map_delete_elem(o->map_fd, &e->key[dir]);
		e->key[dir] = k[dir];
	}
}

void offload__flush(struct ferry_worker *w)
{
	struct worker_offload *o = w->offload;

	if (!o || !o->nr_pending)
		return;
	for (uint32_t i = 0; i < o->nr_pending; i++) {
		struct nat_session *s = o->pending[i];

		/* Removed since (offload_removed()), or its slot reused by another session. */
		if (!s || s->id != o->pending_id[i] || s->offload_slot || !qualifies(w, s))
			continue;
		if (hops_check(w, s, NULL) != HOPS_READY)
			continue;
		install(w, s);
	}
	o->nr_pending = 0;
}

/*
 * A route, neighbour or link changed: every installed entry is checked
 * against its next hops (which also keeps their cache entries in use while
 * no packet of theirs reaches the worker) and rewritten if they moved, or
 * taken back when they no longer resolve.  The ingress interface is part of
 * the key, so a moved interface means new keys.
 */
void offload__tick(struct ferry_worker *w)
{
	struct worker_offload *o = w->offload;
	struct nh_cache_stats st;

	if (!o || !w->nexthop.cache || o->nr_free == o->capacity)
		return;
	nh_cache__stats(w->nexthop.cache, &st);
	if (st.changes == o->nh_changes && !st.dirty)
		goto touch;
	o->nh_changes = st.changes;
	for (uint32_t rel = 0; rel < o->capacity; rel++) {
		struct offload_ent *e = &o->ents[rel];
		struct nat_session *s = e->s;
		bool changed = false;

		if (!s)
			continue;
		switch (hops_check(w, s, &changed)) {
		case HOPS_GONE:
			uninstall(w, s);
			break;
		case HOPS_READY:
			if (changed)
				rewrite_entries(w, s);
			break;
		case HOPS_PENDING:
			break;
		}
	}
	return;
touch:
	/* Nothing changed: keep the next-hop entries from idling out, a slice per tick. */
	for (uint32_t n = 0, rel = (uint32_t)(w->now_ns / TICK_NS) % 8; n < o->capacity / 8 + 1;
	     n++, rel += 8) {
		if (rel >= o->capacity)
			break;
		struct nat_session *s = o->ents[rel].s;
		bool changed = false;
		enum hops h;

		if (!s)
			continue;
		h = hops_check(w, s, &changed);
		if (h == HOPS_GONE || !qualifies(w, s))
			uninstall(w, s);
		else if (h == HOPS_READY && changed)
			rewrite_entries(w, s);
	}
}

/* ---- a run before this one ---- */

int offload__adopt_session(struct ferry_worker *w, struct nat_session *s, uint32_t old_slot,
			   const struct ferry_sess_key keys[2], const struct ferry_sess vals[2])
{
	struct worker_offload *o = w->offload;
	struct offload_ent *e;
	uint32_t rel, slot;

	if (!o || !o->nr_free)
		return -ENOSPC;
	/* Its own slot when free: the per-session counters go on where they are. */
	rel = o->nr_free;
	if (old_slot >= o->base && old_slot - o->base < o->capacity &&
	    !o->ents[old_slot - o->base].s) {
		for (uint32_t i = 0; i < o->nr_free; i++)
			if (o->free[i] == old_slot - o->base) {
				rel = i;
				break;
			}
	}
	if (rel == o->nr_free) {
		/* Another slot: its counters move with it (last_seen above all). */
		rel = o->nr_free - 1;
		for (int dir = 0; dir < 2; dir++) {
			__u32 from = old_slot * 2 + dir, to = (o->base + o->free[rel]) * 2 + dir;

			if (bpf_map_lookup_elem(o->stats_fd, &from, o->percpu) ||
			    bpf_map_update_elem(o->stats_fd, &to, o->percpu, BPF_ANY))
				return -errno;
		}
	}
	slot = o->free[rel];
	o->free[rel] = o->free[o->nr_free - 1];
	o->nr_free--;
	e = &o->ents[slot];
	for (int dir = 0; dir < 2; dir++) {
		struct ferry_sess v = vals[dir];

		v.flow_id = s->flow_id;
		v.worker = w->id;
		v.stats_slot = (o->base + slot) * 2 + dir;
		e->key[dir] = keys[dir];
		if (bpf_map_update_elem(o->map_fd, &keys[dir], &v, BPF_ANY)) {
			int err = -errno;

			memset(e, 0, sizeof(*e));
			o->free[o->nr_free++] = slot;
			return err;
		}
	}
	e->s = s;
	s->offload_slot = slot + 1;
	return 0;
}

/* ---- counters ---- */

int offload__flow_counts(struct ferry_daemon *d, uint32_t flow_id, struct offload_counts *out)
{
	int ncpus = libbpf_num_possible_cpus();
	struct ferry_flow_stats *vals;
	uint64_t off = 0, off_b = 0, rep = 0, rep_b = 0;
	uint64_t rl = 0, rl_b = 0, rl_rep = 0, rl_rep_b = 0, rl_over_b = 0;

	memset(out, 0, sizeof(*out));
	if (!d->offload_maps || ncpus <= 0 || flow_id >= CFG_MAX_FLOWS)
		return -EINVAL;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(d->flow_stats_fd, &flow_id, vals)) {
		free(vals);
		return -errno;
	}
	for (int c = 0; c < ncpus; c++) {
		off += vals[c].offloaded;
		off_b += vals[c].offloaded_bytes;
		rep += vals[c].offloaded_reply;
		rep_b += vals[c].offloaded_reply_bytes;
		rl += vals[c].offload_rate_limited;
		rl_b += vals[c].offload_rate_limited_bytes;
		rl_rep += vals[c].offload_rate_limited_reply;
		rl_rep_b += vals[c].offload_rate_limited_reply_bytes;
		rl_over_b += vals[c].offload_rate_limited_over_bytes;
	}
	free(vals);
	/* Since the flow id was last reset; the XDP program's counters never are. */
	off -= d->offload_base[flow_id].client + d->offload_base[flow_id].reply;
	off_b -= d->offload_base[flow_id].client_bytes + d->offload_base[flow_id].reply_bytes;
	rep -= d->offload_base[flow_id].reply;
	rep_b -= d->offload_base[flow_id].reply_bytes;
	out->client = off - rep;
	out->client_bytes = off_b - rep_b;
	out->reply = rep;
	out->reply_bytes = rep_b;
	rl -= d->offload_base[flow_id].rl_client + d->offload_base[flow_id].rl_reply;
	rl_b -= d->offload_base[flow_id].rl_client_bytes + d->offload_base[flow_id].rl_reply_bytes;
	rl_rep -= d->offload_base[flow_id].rl_reply;
	rl_rep_b -= d->offload_base[flow_id].rl_reply_bytes;
	rl_over_b -= d->offload_base[flow_id].rl_over_bytes;
	out->rl_client = rl - rl_rep;
	out->rl_client_bytes = rl_b - rl_rep_b;
	out->rl_reply = rl_rep;
	out->rl_reply_bytes = rl_rep_b;
	out->rl_over_bytes = rl_over_b;
	return 0;
}

void offload__rebase(struct ferry_daemon *d, uint32_t flow_id)
{
	struct offload_counts now;

	if (flow_id >= CFG_MAX_FLOWS)
		return;
	memset(&d->offload_base[flow_id], 0, sizeof(d->offload_base[flow_id]));
	if (offload__flow_counts(d, flow_id, &now))
		return;
	d->offload_base[flow_id].client = now.client;
	d->offload_base[flow_id].client_bytes = now.client_bytes;
	d->offload_base[flow_id].reply = now.reply;
	d->offload_base[flow_id].reply_bytes = now.reply_bytes;
	d->offload_base[flow_id].rl_client = now.rl_client;
	d->offload_base[flow_id].rl_client_bytes = now.rl_client_bytes;
	d->offload_base[flow_id].rl_reply = now.rl_reply;
	d->offload_base[flow_id].rl_reply_bytes = now.rl_reply_bytes;
	d->offload_base[flow_id].rl_over_bytes = now.rl_over_bytes;
}

/*
 * As the workers count a packet they receive and send: rx, then tx or
 * reply; or one the ratelimit dropped: rx, then drop_rate_limited.
 */
void offload__add_fwd(const struct offload_counts *c, struct ferry_fwd_stats *st)
{
	st->rx_packets += c->rl_client + c->rl_reply;
	st->rx_bytes += c->rl_client_bytes + c->rl_reply_bytes;
	st->drop_rate_limited += c->rl_client + c->rl_reply;
	st->rx_packets += c->client + c->reply;
	st->rx_bytes += c->client_bytes + c->reply_bytes;
	st->tx_packets += c->client;
	st->tx_bytes += c->client_bytes;
	st->reply_packets += c->reply;
	st->reply_bytes += c->reply_bytes;
}

/*
 * Every service saw each packet the fast path forwarded; the last one
 * (forward or lb) sent it.  One the ratelimit dropped passed the services
 * before it, was dropped by the ratelimit, and the ones after never saw it.
 */
void offload__add_svc(const struct ferry_daemon *d, uint32_t flow_id, int pos,
		      const struct offload_counts *c, struct ferry_svc_stats *st)
{
	const struct flow_chain *ch = &d->flows[flow_id];
	uint64_t n = c->client + c->reply, dropped = c->rl_client + c->rl_reply;
	uint64_t client = c->client, reply = c->reply;
	int limit = rl_pos(ch);

	st->packets_in += n;
	st->bytes_in += c->client_bytes + c->reply_bytes;
	if (pos == ch->nr - 1)
		st->sent += n;
	else
		st->passed += n;
	if (limit >= 0 && pos <= limit) {
		st->packets_in += dropped;
		st->bytes_in += c->rl_client_bytes + c->rl_reply_bytes;
		if (pos == limit) {
			st->dropped += dropped;
			service__offload_drop_counters(ch->ops[pos], ch->conf[pos],
						       dropped - c->rl_over_bytes,
						       c->rl_over_bytes,
						       (uint64_t *)st->counters);
		} else {
			st->passed += dropped;
			client += c->rl_client;
			reply += c->rl_reply;
		}
	}
	service__offload_counters(ch->ops[pos], ch->conf[pos], client, reply,
				  (uint64_t *)st->counters);
}

int64_t offload__stats_slot(const struct ferry_worker *w, const struct nat_session *s)
{
	const struct worker_offload *o = w->offload;

	if (!o || !s->offload_slot || s->offload_slot > o->capacity)
		return -1;
	return (int64_t)(o->base + s->offload_slot - 1);
}
