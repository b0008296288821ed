// SPDX-License-Identifier: BSD-2-Clause
/*
 * ratelimit: token buckets on a flow's packets.
 *
 *   ratelimit:
 *     packets_per_second: 1000   # and/or
 *     bytes_per_second: 1250000
 *     burst_packets: 100         # default: a tenth of a second's worth, at least 1
 *     burst_bytes: 125000        # default: likewise
 *     per: flow                  # or source
 *     max_sources: 4096          # per: source only, buckets per worker
 *     direction: client          # or reply, or both
 *
 * A packet passes when every configured bucket holds enough tokens for it
 * (one packet, its frame's bytes); it then takes them.  Otherwise it is
 * dropped as "rate_limited" and takes nothing.  Buckets refill continuously
 * at the rate, up to the burst.
 *
 * Workers share nothing, so a bucket is never shared either:
 *   per: flow    each worker has one bucket with 1/queues of the rate and of
 *                the burst.  The flow's packets spread over the queues by
 *                the NIC's hash, so the sum stays at the configured rate; a
 *                flow whose packets all land on one queue gets only that
 *                queue's share.
 *   per: source  each worker has a fixed table of max_sources buckets keyed
 *                by source address, each with the full rate and burst.  A
 *                source's packets normally reach one queue (one 5-tuple, one
 *                hash); one that spreads over k queues gets up to k times
 *                the rate.  A new source takes a free slot among the 8 its
 *                address hashes to, or evicts the least recently seen of
 *                them.  An evicted source comes back with a full bucket, so
 *                a table too small for the sources loosens the limit
 *                (counted in `evictions`).  Every tick frees buckets idle
 *                long enough to be full again: they are equal to new ones.
 *
 * A flow's chain runs for both directions; by default only the clients'
 * packets are limited and the upstream's replies pass.  `direction: reply`
 * or `both` limits those instead or too (per source, a reply's source is
 * the upstream).
 *
 * Tokens are integers scaled so that the arithmetic is exact and cannot
 * overflow: a bucket holds up to burst * 1e9 units, refills `rate` units per
 * nanosecond, and a packet (or byte) costs 1e9 * divisor units, where the
 * divisor is the number of workers sharing the rate (1 per source). *
 * In the XDP fast path (bpf/ferry_fastpath.h), a chain with one ratelimit
 * forwards its offloaded sessions with the same buckets, per CPU instead of
 * per worker: svc_ratelimit__offload_params() gives ferryd the parameters
 * above for ferry_rl_params, and the drops there come back as this
 * service's `dropped` and over_* counters (svc_ratelimit__offload_counters()).
 * A session's first packets, before it is offloaded, take the worker's
 * bucket and the rest the CPU's, so the total may exceed the rate by those
 * few packets per session (a UDP session's up to 8, a TCP handshake).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"
#include "siphash.h"
#include "svc_args.h"

#define RL_UNIT 1000000000ull /* token units per packet or byte, per sharing worker */
#define RL_PROBE 8	      /* slots a source may live in */
#define RL_SWEEP 1024	      /* slots checked for idle buckets per tick */
#define RL_DEFAULT_SOURCES 4096
#define RL_MIN_SOURCES RL_PROBE
#define RL_MAX_SOURCES (1u << 20)

/* One token bucket's parameters, for one worker. */
struct rl_params {
	bool on;
	uint64_t rate;	  /* units per ns */
	uint64_t cap;	  /* units */
	uint64_t cost;	  /* units per packet, or per byte */
	uint64_t fill_ns; /* from empty to full: a bucket idle this long is full */
};

struct rl_conf {
	enum svc_dir dirs;
	uint32_t pps, bps, burst_packets, burst_bytes;
	bool per_source;
	uint32_t max_sources; /* a power of two */
	struct rl_params pkt, byte;
	uint64_t idle_ns; /* the longer fill time: a bucket idle this long is new */
};

struct rl_bucket {
	uint64_t pkt_tokens;
	uint64_t byte_tokens;
	uint64_t last_ns;
	union ferry_addr addr;
	uint8_t family; /* 0: free slot */
};

enum rl_counter {
	RL_BUCKETS,	 /* buckets in use */
	RL_EVICTIONS,	 /* sources evicted to make room for new ones */
	RL_OVER_PACKETS, /* drops: the packet bucket was short */
	RL_OVER_BYTES,	 /* drops: the packet bucket had room, the byte bucket not */
};

struct rl_worker {
	uint64_t counters[FERRY_SERVICE_COUNTERS];
	struct siphash_key key;	 /* hash_addr() */
	uint32_t mask;		 /* table size - 1 */
	uint32_t sweep;		 /* next slot the tick looks at */
	struct rl_bucket flow;	 /* per: flow */
	struct rl_bucket *table; /* per: source */
};

/*
 * rate_per_s and burst in packets or bytes; `divisor` workers share them.
 * `min_burst` is what one worker's bucket must at least hold.
 */
static void rl_params_init(struct rl_params *p, uint32_t rate_per_s, uint32_t burst,
			   uint32_t divisor, uint64_t min_burst)
{
	p->on = true;
	p->rate = rate_per_s;
	p->cost = RL_UNIT * divisor;
	p->cap = (uint64_t)burst * RL_UNIT;
	if (p->cap < min_burst * p->cost)
		p->cap = min_burst * p->cost;
	p->fill_ns = (p->cap + p->rate - 1) / p->rate;
}

/* What rl_configure() reads, before it is turned into buckets. */
struct rl_args {
	uint32_t pps, bps, burst_packets, burst_bytes, max_sources;
	int dirs, per_source;
	bool have_pps, have_bps, have_bp, have_bb, have_sources;
};

static const struct cfg_word rl_per_words[] = {
	{ "flow", 0 },
	{ "source", 1 },
	{ NULL, 0 },
};

#define RL_U32_ARG(key, field, lo, hi, dflt)                                                    \
	{                                                                                       \
		.name = key, .type = CFG_ARG_U32, .offset = offsetof(struct rl_args, field),    \
		.seen = CFG_SEEN(struct rl_args, have_##field), .min = lo, .max = hi, .def = dflt \
	}

static const struct cfg_arg rl_arg_list[] = {
	RL_U32_ARG("packets_per_second", pps, 1, UINT32_MAX, 0),
	RL_U32_ARG("bytes_per_second", bps, 1, UINT32_MAX, 0),
	{ .name = "burst_packets",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct rl_args, burst_packets),
	  .seen = CFG_SEEN(struct rl_args, have_bp),
	  .min = 1,
	  .max = UINT32_MAX },
	{ .name = "burst_bytes",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct rl_args, burst_bytes),
	  .seen = CFG_SEEN(struct rl_args, have_bb),
	  .min = 1,
	  .max = UINT32_MAX },
	{ .name = "max_sources",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct rl_args, max_sources),
	  .seen = CFG_SEEN(struct rl_args, have_sources),
	  .min = RL_MIN_SOURCES,
	  .max = RL_MAX_SOURCES,
	  .def = RL_DEFAULT_SOURCES },
	SVC_DIR_ARG(struct rl_args, dirs, SVC_DIR_CLIENT),
	{ .name = "per", .type = CFG_ARG_WORD, .offset = offsetof(struct rl_args, per_source),
	  .words = rl_per_words },
};

static const struct cfg_args rl_args_tbl = {
	.prefix = "ratelimit",
	.expect = " with packets_per_second and/or bytes_per_second",
	.args = rl_arg_list,
	.nr = sizeof(rl_arg_list) / sizeof(rl_arg_list[0]),
};

static int rl_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			struct cfg_errors *errs, void **confp)
{
	const struct ferry_config *cfg = ferry_daemon__config(fc->daemon);
	const struct cfg_node *sources_node = cfg_map_get(args, "max_sources");
	struct rl_args a = {};
	struct rl_conf *c;
	uint32_t divisor;

	if (cfg_args_parse(&rl_args_tbl, args, &a, errs))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pps = a.pps;
	c->bps = a.bps;
	c->burst_packets = a.burst_packets;
	c->burst_bytes = a.burst_bytes;
	c->max_sources = a.max_sources;
	c->dirs = (enum svc_dir)a.dirs;
	c->per_source = a.per_source;
	if (!a.have_pps && !a.have_bps) {
		cfg_node_error(errs, args,
			       "ratelimit: give packets_per_second, bytes_per_second, or both");
		goto err_free;
	}
	if (a.have_bp && !a.have_pps) {
		cfg_node_error(errs, args, "ratelimit: burst_packets needs packets_per_second");
		goto err_free;
	}
	if (a.have_bb && !a.have_bps) {
		cfg_node_error(errs, args, "ratelimit: burst_bytes needs bytes_per_second");
		goto err_free;
	}
	if (a.have_sources && !c->per_source) {
		cfg_node_error(errs, sources_node, "ratelimit: max_sources needs per: source");
		goto err_free;
	}
	/* A tenth of a second's worth absorbs scheduling jitter without being a second flood. */
	if (!a.have_bp)
		c->burst_packets = c->pps / 10 ?: 1;
	if (!a.have_bb)
		c->burst_bytes = c->bps / 10 ?: 1;
	while (c->max_sources & (c->max_sources - 1))
		c->max_sources += c->max_sources & -c->max_sources;

	divisor = c->per_source ? 1 : cfg->queues ?: 1;
	/* Every worker's bucket holds at least one packet, and one whole frame of bytes. */
	if (a.have_pps)
		rl_params_init(&c->pkt, c->pps, c->burst_packets, divisor, 1);
	if (a.have_bps)
		rl_params_init(&c->byte, c->bps, c->burst_bytes, divisor, cfg->umem.frame_size);
	c->idle_ns = c->pkt.fill_ns > c->byte.fill_ns ? c->pkt.fill_ns : c->byte.fill_ns;
	*confp = c;
	return 0;

err_free:
	free(c);
	return -EINVAL;
}

static void bucket_fill(const struct rl_conf *c, struct rl_bucket *b, uint64_t now)
{
	b->pkt_tokens = c->pkt.cap;
	b->byte_tokens = c->byte.cap;
	b->last_ns = now;
}

static int rl_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	const struct rl_conf *c = conf;
	struct rl_worker *rw;
	int err = -ENOMEM;

	rw = calloc(1, sizeof(*rw));
	if (!rw)
		return -ENOMEM;
	if (c->per_source) {
		rw->table = calloc(c->max_sources, sizeof(*rw->table));
		if (!rw->table)
			goto err_free;
		rw->mask = c->max_sources - 1;
		/*
		 * Unpredictable slots: nobody can aim many sources at one window
		 * (and evict the others).  No entropy, no table: a guessable key
		 * would give that back.
		 */
		err = siphash_key_random(&rw->key);
		if (err)
			goto err_free_table;
	} else {
		bucket_fill(c, &rw->flow, ferry_worker__now_ns(w));
		rw->counters[RL_BUCKETS] = 1;
	}
	*wstate = rw;
	return 0;

err_free_table:
	free(rw->table);
err_free:
	free(rw);
	return err;
}

static void refill(const struct rl_params *p, uint64_t *tokens, uint64_t dt)
{
	if (!p->on)
		return;
	/* dt < fill_ns keeps rate * dt below cap + rate: no overflow. */
	if (dt >= p->fill_ns)
		*tokens = p->cap;
	else if ((*tokens += p->rate * dt) > p->cap)
		*tokens = p->cap;
}

/*
 * Keyed SipHash-1-3 of the source (lib/siphash.h): the address's words as
 * the parser leaves them (zero past an IPv4 address, as the compare below
 * assumes too), then the family.
 */
static uint64_t hash_addr(const struct siphash_key *key, const struct pkt_info *pi)
{
	uint64_t w[3];

	memcpy(w, pi->saddr.b, 16);
	w[2] = pi->family;
	return siphash13(key, w, 3);
}

/* The source's bucket: found, a free slot of its window, or the window's stalest. */
static struct rl_bucket *source_bucket(const struct rl_conf *c, struct rl_worker *rw,
				       const struct pkt_info *pi, uint64_t now)
{
	uint32_t base = (uint32_t)hash_addr(&rw->key, pi), slot;
	struct rl_bucket *free_b = NULL, *oldest = NULL, *b;

	for (uint32_t i = 0; i < RL_PROBE; i++) {
		slot = (base + i) & rw->mask;
		b = &rw->table[slot];
		if (!b->family) {
			if (!free_b)
				free_b = b;
			continue;
		}
		if (b->family == pi->family && !memcmp(&b->addr, &pi->saddr, sizeof(b->addr)))
			return b;
		if (!oldest || b->last_ns < oldest->last_ns)
			oldest = b;
	}
	if (free_b) {
		b = free_b;
		rw->counters[RL_BUCKETS]++;
	} else {
		b = oldest;
		rw->counters[RL_EVICTIONS]++;
	}
	b->family = pi->family;
	b->addr = pi->saddr;
	bucket_fill(c, b, now);
	return b;
}

static void rl_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	const struct rl_conf *c = conf;
	struct rl_worker *rw = wstate;
	uint64_t now = ferry_worker__now_ns(w);

	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		struct rl_bucket *bk;
		uint64_t dt, bytes_cost;

		if (!svc_dir_match(c->dirs, p))
			continue;
		bk = c->per_source ? source_bucket(c, rw, &p->pi, now) : &rw->flow;
		dt = now > bk->last_ns ? now - bk->last_ns : 0;
		refill(&c->pkt, &bk->pkt_tokens, dt);
		refill(&c->byte, &bk->byte_tokens, dt);
		bk->last_ns = now;
		bytes_cost = c->byte.cost * p->len;
		if (c->pkt.on && bk->pkt_tokens < c->pkt.cost) {
			rw->counters[RL_OVER_PACKETS]++;
			ferry_pkt_drop(p, FERRY_DROP_rate_limited);
			continue;
		}
		if (c->byte.on && bk->byte_tokens < bytes_cost) {
			rw->counters[RL_OVER_BYTES]++;
			ferry_pkt_drop(p, FERRY_DROP_rate_limited);
			continue;
		}
		if (c->pkt.on)
			bk->pkt_tokens -= c->pkt.cost;
		if (c->byte.on)
			bk->byte_tokens -= bytes_cost;
	}
}

/* Frees buckets that have refilled: a new source gets exactly the same. */
static void rl_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	const struct rl_conf *c = conf;
	struct rl_worker *rw = wstate;
	uint64_t now = ferry_worker__now_ns(w);

	if (!c->per_source)
		return;
	for (uint32_t i = 0; i < RL_SWEEP && i <= rw->mask; i++) {
		struct rl_bucket *b = &rw->table[rw->sweep];

		rw->sweep = (rw->sweep + 1) & rw->mask;
		if (b->family && now >= b->last_ns && now - b->last_ns >= c->idle_ns) {
			b->family = 0;
			rw->counters[RL_BUCKETS]--;
		}
	}
}

static void rl_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct rl_worker *rw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += rw->counters[i];
}

static void rl_worker_destroy(void *conf, void *wstate)
{
	struct rl_worker *rw = wstate;

	free(rw->table);
	free(rw);
}

/* ---- the XDP fast path (daemon/offload.c, bpf/ferry_fastpath.h) ---- */

/*
 * Either kind of bucket runs in XDP with the workers' arithmetic and
 * shares: a bucket per CPU, as per worker.  daemon/offload.c keeps a
 * chain with two ratelimits on the workers' path.
 */
bool svc_ratelimit__offloadable(const void *conf, char *why, size_t len)
{
	(void)conf;
	(void)why;
	(void)len;
	return true;
}

static void rl_offload_bucket(const struct rl_params *p, struct ferry_rl_bucket_params *out)
{
	memset(out, 0, sizeof(*out));
	if (!p->on)
		return;
	out->rate = p->rate;
	out->cap = p->cap;
	out->cost = p->cost;
	out->fill_ns = p->fill_ns;
}

void svc_ratelimit__offload_params(const void *conf, uint64_t gen, struct ferry_rl_params *out)
{
	const struct rl_conf *c = conf;

	memset(out, 0, sizeof(*out));
	out->gen = gen;
	out->dirs = (__u8)c->dirs;
	out->per_source = c->per_source;
	rl_offload_bucket(&c->pkt, &out->pkt);
	rl_offload_bucket(&c->byte, &out->byte);
}

/*
 * The fast path's drops, as the service's own counters: over_packets and
 * over_bytes.  buckets_in_use and evictions are the workers' tables only.
 */
void svc_ratelimit__offload_counters(const void *conf, uint64_t over_packets,
				     uint64_t over_bytes,
				     uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	(void)conf;
	counters[RL_OVER_PACKETS] += over_packets;
	counters[RL_OVER_BYTES] += over_bytes;
}

static void rl_destroy(void *conf)
{
	free(conf);
}

const struct ferry_service_ops svc_ratelimit_ops = {
	.name = "ratelimit",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = rl_configure,
	.worker_init = rl_worker_init,
	.process = rl_process,
	.tick = rl_tick,
	.stats = rl_stats,
	.worker_destroy = rl_worker_destroy,
	.destroy = rl_destroy,
	.counter_names = {
		[RL_BUCKETS] = "buckets_in_use",
		[RL_EVICTIONS] = "evictions",
		[RL_OVER_PACKETS] = "over_packets",
		[RL_OVER_BYTES] = "over_bytes",
	},
};
