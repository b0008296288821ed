/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A worker's state, shared by the files of the daemon that run its packet
 * path: worker.c (creation, the loop, idle waits, ticks, counters for the
 * main thread), rx.c (admission, classification, hand-off, grouping per
 * flow) and chain.c (service chains and TX).  Their internal functions are
 * worker__ (the daemon's lifecycle ones are in daemon.h); the
 * ferry_worker__ ones are the service ABI (services/ferry_service.h,
 * daemon/service_api.c) and the built-ins' extras (services/service.h).  Nothing
 * outside daemon/ sees this struct: services use those accessors.
 */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "service.h"
#include "xdp_port.h"

#define WORKER_MAX_BATCH 256
/* Packets services may emit per chain run, and so a chain run's total. */
#define WORKER_MAX_EMIT 256
#define CHAIN_MAX_PKTS (WORKER_MAX_BATCH + WORKER_MAX_EMIT)

#define TICK_NS (100ull * 1000 * 1000)
#define EXPIRE_BUDGET 1024
/* Descriptors the services may ask the worker to sleep on at once. */
#define WORKER_MAX_WAITS 16

struct nh_events;
struct worker_offload;

/* A worker's next hops (daemon/worker_nh.c); all zero until a service asks for them. */
struct worker_nh {
	struct nh_cache *cache;
	struct nh_events *events;
	uint32_t users;              /* services' worker states holding it */
	uint64_t next_drain_ns;      /* notifications are read from then on */
	uint64_t next_lookup_ns;     /* the next slot for queued lookups */
	int last_err;                /* of the last drain, so a failure is logged once */
};

struct ferry_worker {
	uint32_t id;
	uint32_t queue;
	struct ferry_daemon *d;
	struct umem *umem;
	int nr_ports;
	struct port *ports[CFG_MAX_IFACES];
	struct nat_table *nat;
	struct worker_offload *offload; /* daemon/offload.c; NULL without a fast path */
	struct nh_resolver *nh;
	struct worker_nh nexthop;
	uint64_t now_ns;
	uint64_t next_tick_ns;
	uint64_t wake_ns;            /* earliest ferry_worker__wake_at() deadline, 0 = none */
	/*
	 * ferry_worker__wait_fd(): descriptors services expect work on, polled
	 * (poll_ns) while the worker is awake and slept on when it is idle;
	 * forgotten at each tick of the services, like wake_ns.
	 */
	uint64_t poll_ns;            /* earliest awake poll deadline, 0 = none */
	int nr_waits;
	struct worker_wait {
		int fd;
		bool (*arm)(void *ctx);
		void *ctx;
	} waits[WORKER_MAX_WAITS];
	uint64_t coalesce_ns;        /* config coalesce_usecs, interrupt mode only */
	bool small_bursts;           /* the last busy loop received under batch / 2 packets */
	bool yielded;                /* gave the CPU once to what a service waits on (worker__sleep()) */
	uint32_t batch;
	void *svc_state[CFG_MAX_FLOWS][CFG_MAX_SERVICES];
	pthread_t thread;
	bool running;
	volatile int stop;
	atomic_int parked;           /* at the reload quiescent point (daemon/reload.c) */
	/* ferryctl sessions (daemon/sessions.h): a chunk asked of this worker */
	struct sess_snap *_Atomic snap_req;
	/*
	 * The control socket's doorbell, an eventfd (-1 until it sets one),
	 * rung after a request (snap_req, tick_req) and to stop: it only
	 * wakes an idle worker, the requests say what to do.
	 */
	atomic_int control_fd;
	/* Tick the services now: an app slot's new generation to take up. */
	atomic_bool tick_req;
	/* loop iterations; the main thread's watchdog reads it to see the worker is not stuck */
	uint64_t loops;
	/* packets that matched no rule or did not parse (the XDP program disagreed) */
	uint64_t unclassified;
	/*
	 * Frames the services hold (FERRY_VERDICT_HOLD: pace's queues, the
	 * next-hop hold queue) and how many they may hold together: see
	 * worker__hold_budget().  chain_holds are the holds granted in the
	 * current chain run, added to held_frames at its end.
	 */
	uint32_t held_frames;
	uint32_t chain_holds;
	uint32_t hold_budget;
	/* multi-queue (daemon/handoff.c); handoff is NULL with one worker */
	struct handoff *handoff;
	uint64_t handoff_notify;     /* workers handed packets this loop iteration (bits) */
	uint32_t handoff_next;       /* the incoming ring drained first next time */
	uint64_t handoff_in;         /* packets taken over from other workers */
	int cpu;                     /* pinned to this CPU, or -1 */
	enum port_poll_mode poll_mode; /* the most active of its ports' modes */
	/* written by this worker only; read by the main thread to publish */
	struct ferry_fwd_stats flow_stats[CFG_MAX_FLOWS] __attribute__((aligned(64)));
	/* burst scratch */
	struct frame_ref rx_frames[WORKER_MAX_BATCH];
	struct ferry_pkt pkts[WORKER_MAX_BATCH];
	struct ferry_pkt *flow_pkts[WORKER_MAX_BATCH];
	uint8_t grouped[WORKER_MAX_BATCH];
	/* chain run scratch (daemon/chain.c) */
	struct ferry_pkt *chain_pkts[CHAIN_MAX_PKTS];
	struct ferry_pkt *chain_all[CHAIN_MAX_PKTS];
	uint32_t chain_nr_all;
	uint32_t chain_nr_emitted;
	struct ferry_pkt emit_pkts[WORKER_MAX_EMIT];
	struct ferry_svc_stats svc_stats[CFG_MAX_FLOWS][CFG_MAX_SERVICES];
	struct frame_ref tx_frames[CFG_MAX_IFACES][CHAIN_MAX_PKTS];
	uint32_t tx_flow[CFG_MAX_IFACES][CHAIN_MAX_PKTS];
	uint32_t nr_tx[CFG_MAX_IFACES];
};

/*
 * How many frames a worker's services may hold together.  A held frame is
 * out of reach of the FILL rings until it leaves, so the services together
 * get what is left once every port's FILL ring and its TX and COMPLETION
 * side (ring_size each: the frames in flight between a send and its
 * completion) and one chain run's packets (CHAIN_MAX_PKTS) are set aside;
 * beyond it a hold is refused and the packet dropped as hold_budget, and
 * RX never starves however many flows pace or wait for a neighbour, even
 * with every TX ring full.  At least an eighth of the frames, for
 * configurations whose rings alone take the whole UMEM (the defaults:
 * 8192 frames, 2 ports of ring_size 2048).
 */
static inline uint32_t worker__hold_budget(uint32_t frames, uint32_t ring_size, uint32_t nr_ports)
{
	uint64_t reserve = 2ull * ring_size * nr_ports + CHAIN_MAX_PKTS;
	uint32_t floor = frames / 8;

	if (reserve >= frames || frames - reserve < floor)
		return floor;
	return (uint32_t)(frames - reserve);
}

/*
 * One idle sleep of the worker loop (interrupt mode): on its sockets, the
 * park and control eventfds, the hand-off doorbell and the services' waits,
 * bounded by their deadlines.  Exported for the unit tests.
 */
void worker__idle_wait(struct ferry_worker *w);

/*
 * The control socket's requests, taken at the top of each loop iteration,
 * whatever the poll mode and whoever emptied the doorbell: a listing's
 * chunk, a tick of the services.  Exported for the unit tests.
 */
void worker__control_requests(struct ferry_worker *w);

/* Asks w to stop and wakes it from an idle wait; worker__stop() joins it. */
void worker__request_stop(struct ferry_worker *w);

/*
 * The loop's sleep in interrupt mode: a coalescing nap after a small burst
 * (coalesce_usecs), unless a service waits on a descriptor of its own, or
 * worker__idle_wait().  Exported for the unit tests.
 */
void worker__sleep(struct ferry_worker *w);

/*
 * daemon/rx.c: admission, classification and hand-off.  The worker loop
 * calls worker__rx() per port and worker__take_handoffs(); the unit harness
 * and the fuzzers drive the same functions below it.
 */
/* Reads one burst from ports[port], admits it and runs its chains; returns the frames read. */
uint32_t worker__rx(struct ferry_worker *w, int port);
/*
 * Takes up to one batch of what other workers handed us, starting with a
 * different ring each time so no sender is starved, into frames of our own
 * pool, and processes it as if our socket on its port had received it.
 * Returns whether there was anything.
 */
bool worker__take_handoffs(struct ferry_worker *w);
/* Wakes the workers we handed packets to this loop, if they sleep: once each. */
void worker__notify_owners(struct ferry_worker *w);
/*
 * Describes the frame at addr (len bytes) received on port in p, parses it,
 * trims it to its IP packet and classifies it with the daemon's rule table
 * (first match, as the XDP program does).  Returns the rule, with
 * p->flow_id and p->dir set, or NULL when the frame does not parse or
 * matches no rule.
 */
const struct ferry_rule *worker__classify(struct ferry_worker *w, struct ferry_pkt *p,
					  uint64_t addr, uint32_t len, const struct port *port);
/*
 * Classifies one held frame into w->pkts[*nr] and counts it (*nr + 1), or
 * frees it when it does not classify (false).  A reply received here whose
 * NAT port is in another worker's slice goes to that worker instead (false);
 * one handed to us (handed_in) is ours.  A reply takes its session's flow.
 */
bool worker__admit(struct ferry_worker *w, uint64_t addr, uint32_t len, const struct port *port,
		   bool handed_in, uint32_t *nr);
/*
 * Runs the chains over w->pkts[0..nr): one batch per flow, in order of
 * first appearance.  It is worker__burst_begin(), then
 * worker__run_chain(w, flow, w->flow_pkts, m) for each batch
 * worker__burst_next() returns, until it returns 0 (*pos starts at 0).
 */
void worker__run_burst(struct ferry_worker *w, uint32_t nr);
void worker__burst_begin(struct ferry_worker *w, uint32_t nr);
uint32_t worker__burst_next(struct ferry_worker *w, uint32_t nr, uint32_t *pos, uint32_t *flow);

/* daemon/chain.c: the chain runner and TX. */
/* Runs flow_id's chain over its packets of this burst; queues TX, frees drops. */
void worker__run_chain(struct ferry_worker *w, uint32_t flow_id, struct ferry_pkt **pkts,
		       uint32_t n);
/* Sends what worker__run_chain() queued, per egress port; counts what found a full ring. */
void worker__flush_tx(struct ferry_worker *w);

/*
 * Shared by the chain runner and daemon/service_api.c (send_held): inline,
 * as they run per packet.
 */
/* worker__count_drop() indexes the drop fields by reason. */
_Static_assert(offsetof(struct ferry_fwd_stats, drop_app_unavailable) -
			       offsetof(struct ferry_fwd_stats, drop_malformed) ==
		       (FERRY_DROP__MAX - 1) * sizeof(__u64),
	       "struct ferry_fwd_stats drop fields out of FERRY_DROP_REASONS order");

static inline void worker__count_drop(struct ferry_fwd_stats *st, enum ferry_drop_reason reason)
{
	/* The drop fields are laid out in FERRY_DROP_REASONS order. */
	(&st->drop_malformed)[reason]++;
}

/*
 * Queues p on its egress port's TX queue.  Emitted packets can outnumber a
 * burst, and held ones are sent between chain runs too: a full queue is
 * flushed first, so it is never overrun.
 */
static inline void worker__queue_tx(struct ferry_worker *w, const struct ferry_pkt *p,
				    uint32_t flow_id)
{
	uint32_t k;

	if (w->nr_tx[p->out_port] == CHAIN_MAX_PKTS)
		worker__flush_tx(w);
	k = w->nr_tx[p->out_port]++;
	w->tx_frames[p->out_port][k].addr = p->addr;
	w->tx_frames[p->out_port][k].len = p->len;
	w->tx_flow[p->out_port][k] = flow_id | (uint32_t)p->dir << 31;
}

#endif /* FERRY_WORKER_H */
