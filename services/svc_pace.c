// SPDX-License-Identifier: BSD-2-Clause
/*
 * pace: sends a flow's packets evenly spaced at a configured rate instead of
 * in the bursts they arrive in, for a slow link or a receiver with small
 * buffers.
 *
 * Where it sits: pace delays packets that are ready to leave, so it must see
 * them after forward has chosen their egress (FERRY_VERDICT_TX).  It is a
 * .sees_tx service (services/service.h) and must be the last service of its
 * chain: a packet it holds is later sent straight to the out_port forward
 * set, through ferry_worker__send_held(), and would skip any service after
 * it.  A packet that reaches it without a TX verdict has no egress yet; pace
 * leaves it alone.  Packets forward itself holds while a neighbour resolves
 * are sent by forward and are not paced.
 *
 * Schedule: each direction of the flow has its own queue and its own next
 * departure time.  A packet leaves at once if its queue is empty and its
 * time has come; otherwise it gets the next departure time and waits.  Each
 * departure moves the next one on by the packet's interval: 1/rate_pps,
 * or its frame's bits at rate_bps if that is longer.  Departure times are
 * computed when packets are queued, not when they actually leave, so a late
 * wake-up sends the overdue packets together and the average rate holds;
 * an idle flow earns no credit, so after a pause the spacing starts afresh.
 * Packets beyond the queue's capacity are dropped as queue_full.
 *
 * Releasing: tick() comes only every 100 ms, far too coarse, so pace asks
 * the worker for a wake-up at the head packet's departure time
 * (ferry_worker__wake_at()); the worker does not sleep past it and runs
 * tick(), which sends what is due.  process() also sends what is due before
 * it looks at new packets, so a flow keeps its order.  Held packets are
 * copies of the chain's struct ferry_pkt (whose array is scratch) in a
 * per-worker ring allocated in worker_init(); their frames stay "held" in
 * the worker's UMEM accounting until they leave.  At stop, frames still
 * queued are dropped as queue_full.
 *
 * Rates are per worker: with several queues, each worker paces the packets
 * it receives.  A flow's packets from one client address and port arrive on
 * one queue, so a single stream is paced exactly at the configured rate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service.h"
#include "svc_args.h"

#define PACE_DEFAULT_QUEUE 256
#define PACE_MAX_QUEUE 65536
#define PACE_RELEASE_BATCH 64

struct pace_conf {
	char flow_name[CFG_NAME_LEN];
	enum svc_dir dirs;
	uint32_t rate_pps; /* 0: no packet rate */
	uint32_t rate_bps; /* 0: no bit rate */
	uint32_t queue;	   /* held packets per direction and worker */
	bool have_queue;   /* queue was given, not the default */
	uint64_t pps_ns;   /* interval of one packet at rate_pps */
};

struct pace_entry {
	struct ferry_pkt pkt;
	uint64_t due_ns;
};

struct pace_queue {
	struct pace_entry *e;
	uint32_t head, n;
	uint64_t next_ns; /* departure time of the next packet */
};

enum { PACE_C_IMMEDIATE, PACE_C_DELAYED, PACE_C_QUEUE_PEAK };

struct pace_worker {
	struct ferry_worker *w;
	uint32_t cap;
	struct pace_queue q[2]; /* by enum ferry_dir */
	uint64_t counters[FERRY_SERVICE_COUNTERS];
};

static const struct cfg_arg pace_arg_list[] = {
	{ .name = "rate_pps",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct pace_conf, rate_pps),
	  .min = 1,
	  .max = 100000000 },
	{ .name = "rate_bps",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct pace_conf, rate_bps),
	  .min = 1000,
	  .max = UINT32_MAX },
	{ .name = "queue",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct pace_conf, queue),
	  .seen = CFG_SEEN(struct pace_conf, have_queue),
	  .min = 1,
	  .max = PACE_MAX_QUEUE,
	  .def = PACE_DEFAULT_QUEUE },
	SVC_DIR_ARG(struct pace_conf, dirs, SVC_DIR_BOTH),
};

static const struct cfg_args pace_args = {
	.prefix = "pace",
	.expect = " with 'rate_pps' and/or 'rate_bps'",
	.args = pace_arg_list,
	.nr = sizeof(pace_arg_list) / sizeof(pace_arg_list[0]),
};

static int pace_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			  struct cfg_errors *errs, void **confp)
{
	struct pace_conf *c = calloc(1, sizeof(*c));
	bool have_queue;
	int err = 0;

	if (!c)
		return -ENOMEM;
	snprintf(c->flow_name, sizeof(c->flow_name), "%s", ferry_flow__name(fc));
	if (cfg_args_parse(&pace_args, args, c, errs))
		err = -EINVAL;
	have_queue = c->have_queue;
	if (!err && !c->rate_pps && !c->rate_bps) {
		cfg_node_error(errs, args, "pace: missing key 'rate_pps' or 'rate_bps'");
		err = -EINVAL;
	}
	if (!err && svc_entry_index(fc, args) != fc->flow->nr_services - 1) {
		cfg_node_error(errs, args,
			       "pace: must be the last service of the flow: it sends the packets "
			       "it delays straight to their egress");
		err = -EINVAL;
	}
	/* Held frames come out of the worker's UMEM: never so many that RX starves. */
	if (!err && fc->daemon) {
		uint32_t frames = ferry_daemon__config(fc->daemon)->umem.frames;
		uint32_t dirs = c->dirs == SVC_DIR_BOTH ? 2 : 1;

		if (!have_queue && c->queue * dirs > frames / 4)
			c->queue = frames / 4 / dirs;
		if ((uint64_t)c->queue * dirs > frames / 4) {
			cfg_node_error(errs, args,
				       "pace: queue %u holds up to %u frames per worker, more than "
				       "a quarter of umem.frames (%u)",
				       c->queue, c->queue * dirs, frames);
			err = -EINVAL;
		}
	}
	if (err) {
		free(c);
		return err;
	}
	if (c->rate_pps)
		c->pps_ns = 1000000000ull / c->rate_pps;
	*confp = c;
	return 0;
}

static void pace_destroy(void *conf)
{
	free(conf);
}

static int pace_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	const struct pace_conf *c = conf;
	struct pace_worker *pw;

	pw = calloc(1, sizeof(*pw));
	if (!pw)
		return -ENOMEM;
	pw->w = w;
	pw->cap = c->queue;
	for (int d = 0; d < 2; d++) {
		if (!(c->dirs & (1u << d)))
			continue;
		pw->q[d].e = calloc(pw->cap, sizeof(*pw->q[d].e));
		if (!pw->q[d].e)
			goto err_free;
	}
	*wstate = pw;
	return 0;

err_free:
	free(pw->q[0].e);
	free(pw);
	return -ENOMEM;
}

/* How long the link is busy with this packet at the configured rates. */
static uint64_t pace_interval(const struct pace_conf *c, const struct ferry_pkt *p)
{
	uint64_t ns = c->pps_ns;

	if (c->rate_bps) {
		uint64_t bits_ns = (uint64_t)p->len * 8 * 1000000000ull / c->rate_bps;

		if (bits_ns > ns)
			ns = bits_ns;
	}
	return ns;
}

/* Sends the queue's head packets whose departure time is `until` or earlier. */
static void pace_release_queue(struct pace_worker *pw, struct pace_queue *q, uint64_t until)
{
	struct ferry_pkt *out[PACE_RELEASE_BATCH];

	while (q->n && q->e[q->head].due_ns <= until) {
		uint32_t k = 0;

		while (k < q->n && k < PACE_RELEASE_BATCH) {
			struct pace_entry *e = &q->e[(q->head + k) % pw->cap];

			if (e->due_ns > until)
				break;
			out[k++] = &e->pkt;
		}
		ferry_worker__send_held(pw->w, out, k);
		q->head = (q->head + k) % pw->cap;
		q->n -= k;
	}
}

/* Sends what is due, then asks for a wake-up at the next departure. */
static void pace_release(struct pace_worker *pw, uint64_t now)
{
	uint64_t next = 0;

	for (int d = 0; d < 2; d++) {
		struct pace_queue *q = &pw->q[d];

		pace_release_queue(pw, q, now);
		if (q->n && (!next || q->e[q->head].due_ns < next))
			next = q->e[q->head].due_ns;
	}
	if (next)
		ferry_worker__wake_at(pw->w, next);
}

static void pace_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	const struct pace_conf *c = conf;
	struct pace_worker *pw = wstate;
	uint64_t now = ferry_worker__now_ns(w);

	/* What is due leaves ahead of this batch: the flow keeps its order. */
	for (int d = 0; d < 2; d++)
		pace_release_queue(pw, &pw->q[d], now);
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		struct pace_queue *q;
		struct pace_entry *e;

		if (p->verdict != FERRY_VERDICT_TX || !svc_dir_match(c->dirs, p))
			continue;
		q = &pw->q[p->dir];
		if (!q->n && now >= q->next_ns) {
			q->next_ns = now + pace_interval(c, p);
			pw->counters[PACE_C_IMMEDIATE]++;
			continue;
		}
		if (q->n == pw->cap) {
			ferry_pkt_drop(p, FERRY_DROP_queue_full);
			continue;
		}
		/* The copy keeps the TX verdict it will leave with. */
		e = &q->e[(q->head + q->n) % pw->cap];
		e->pkt = *p;
		/* The worker's budget across all flows, as well as this queue's. */
		if (ferry_worker__hold(w, p))
			continue;
		q->n++;
		e->due_ns = q->next_ns > now ? q->next_ns : now;
		q->next_ns = e->due_ns + pace_interval(c, p);
		pw->counters[PACE_C_DELAYED]++;
		if (q->n > pw->counters[PACE_C_QUEUE_PEAK])
			pw->counters[PACE_C_QUEUE_PEAK] = q->n;
	}
	pace_release(pw, now);
}

static void pace_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	pace_release(wstate, ferry_worker__now_ns(w));
}

static void pace_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct pace_worker *pw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += pw->counters[i];
}

static void pace_worker_destroy(void *conf, void *wstate)
{
	struct pace_worker *pw = wstate;

	/* Nothing will send them any more: back to the pool, counted. */
	for (int d = 0; d < 2; d++) {
		struct pace_queue *q = &pw->q[d];

		for (uint32_t k = 0; k < q->n; k++)
			ferry_pkt_drop(&q->e[(q->head + k) % pw->cap].pkt, FERRY_DROP_queue_full);
		pace_release_queue(pw, q, UINT64_MAX);
		free(q->e);
	}
	free(pw);
}

const struct ferry_service_ops svc_pace_ops = {
	.name = "pace",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = pace_configure,
	.worker_init = pace_worker_init,
	.process = pace_process,
	.tick = pace_tick,
	.stats = pace_stats,
	.worker_destroy = pace_worker_destroy,
	.destroy = pace_destroy,
	.counter_names = { "immediate", "delayed", "queue_peak" },
	.sees_tx = true,
};
