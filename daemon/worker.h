/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A worker's state, shared by the files of the daemon that run its packet
 * path (worker.c: rings and loop; chain.c: service chains and TX).  Nothing
 * outside daemon/ sees it: services use the accessors of services/service.h.
 */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
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

struct ferry_worker {
	uint32_t id;
	uint32_t queue;
	struct ferry_daemon *d;
	struct umem *umem;
	int nr_ports;
	struct port *ports[CFG_MAX_IFACES];
	struct nat_table *nat;
	struct nh_resolver *nh;
	uint64_t now_ns;
	uint64_t next_tick_ns;
	uint64_t wake_ns;            /* earliest ferry_worker__wake_at() deadline, 0 = none */
	uint64_t coalesce_ns;        /* config coalesce_usecs, interrupt mode only */
	bool small_bursts;           /* the last busy loop received under batch / 2 packets */
	uint32_t batch;
	void *svc_state[CFG_MAX_FLOWS][CFG_MAX_SERVICES];
	pthread_t thread;
	bool running;
	volatile int stop;
	atomic_int parked;           /* at the reload quiescent point (daemon/reload.c) */
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
 * get what is left once every port's FILL ring (ring_size each) and one
 * chain run's packets (CHAIN_MAX_PKTS) are set aside; beyond it a hold is
 * refused and the packet dropped as hold_budget, and RX never starves
 * however many flows pace or wait for a neighbour.  At least an eighth of
 * the frames, for configurations whose rings alone take the whole UMEM.
 */
static inline uint32_t worker__hold_budget(uint32_t frames, uint32_t ring_size, uint32_t nr_ports)
{
	uint64_t reserve = (uint64_t)ring_size * nr_ports + CHAIN_MAX_PKTS;
	uint32_t floor = frames / 8;

	if (reserve >= frames || frames - reserve < floor)
		return floor;
	return (uint32_t)(frames - reserve);
}

/* daemon/chain.c */
/* Runs flow_id's chain over its packets of this burst; queues TX, frees drops. */
void chain__run(struct ferry_worker *w, uint32_t flow_id, struct ferry_pkt **pkts, uint32_t n);
/* Sends what chain__run queued, per egress port; counts what found a full ring. */
void chain__flush_tx(struct ferry_worker *w);
/* chain__run() itself, or a wrapper around it (the fuzz harness's). */
typedef void (*chain_run_fn)(struct ferry_worker *w, uint32_t flow_id, struct ferry_pkt **pkts,
			     uint32_t n, void *ctx);
/*
 * Runs the chains over w->pkts[0..nr): one batch per flow, in order of
 * first appearance, through run (NULL: chain__run()).
 */
void chain__run_burst(struct ferry_worker *w, uint32_t nr, chain_run_fn run, void *ctx);
/*
 * Describes the frame at addr (len bytes) received on port in p, parses it
 * and classifies it with the daemon's rule table (first match, as the XDP
 * program does).  Returns the rule, with p->flow_id and p->dir set, or NULL
 * when the frame does not parse or matches no rule.
 */
const struct ferry_rule *chain__classify(struct ferry_worker *w, struct ferry_pkt *p,
					 uint64_t addr, uint32_t len, const struct port *port);
/* A classified reply's flow: its session's, whichever flow's reply rule matched. */
void chain__reply_flow(struct ferry_worker *w, struct ferry_pkt *p);

#endif /* FERRY_WORKER_H */
