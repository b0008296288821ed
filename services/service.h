/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The service ABI.
 *
 * Each flow's packets pass through the chain of services its config names.
 * A service is a const struct ferry_service_ops with designated
 * initialisers.  Built-in services are listed in services/registry.c;
 * out-of-tree services are shared objects exporting the same struct under
 * the symbol FERRY_SERVICE_SYMBOL, loaded from the configured service_dir
 * and refused unless their abi_version equals FERRY_SERVICE_ABI_VERSION.
 *
 * Services see batches: process() gets every packet of one flow that a
 * worker received in one RX burst and sets a verdict on each:
 *   FERRY_VERDICT_NEXT  go on to the next service (the default)
 *   FERRY_VERDICT_TX    transmit on pkt->out_port; the chain ends here
 *   FERRY_VERDICT_DROP  free the frame, counted under pkt->drop_reason
 *   FERRY_VERDICT_HOLD  the service keeps the frame (a queue, a pacer) and
 *                       finishes it later with ferry_worker__send_held();
 *                       set only through ferry_worker__hold(), which
 *                       refuses once the worker's services hold their
 *                       budget of frames
 * A service may also emit new packets (ferry_batch__emit: a copy of a packet
 * in a fresh frame from the worker's pool); they join the batch at NEXT and
 * go on with the following services.  After the last service a packet that
 * nobody sent is dropped as "service", so a chain can never leak a frame.
 *
 * Services may rewrite headers and payload in place.  After changing the
 * payload's length or bytes they call ferry_pkt_set_payload_len() and/or
 * ferry_pkt_fix_checksums(), which fix lengths and checksums.
 *
 * Lifecycle: configure() once per flow when the config is loaded (read the
 * service's arguments with cfg_args_parse() and an argument table, which
 * reports errors as FILE:LINE:COL through errs; fc->flow_id is final only
 * from start() on, as a reload configures a flow before it picks its id);
 * start() once the interfaces are up (resolve what needs the network, add
 * steering rules); worker_init() once per worker for per-worker state, so
 * process() never takes a lock; tick() about every 100 ms on each worker;
 * stats() when counters are published; worker_destroy(), then destroy().
 * A reload (daemon/reload.c) calls configure() for every flow again, start()
 * and worker_init() for added and changed flows, worker_destroy() and
 * destroy() for removed and changed ones; worker_init() and
 * worker_destroy() always run on the main thread while the worker is parked
 * or stopped.  An unchanged flow keeps its conf while the document and the
 * cfg_flow it was configured from are freed: configure() copies what it
 * needs and keeps no pointer into args or fc->flow.
 * The chain runner counts packets in/out/dropped/held/emitted per service
 * itself; stats() adds what only the service knows (up to four named
 * counters, named in .counter_names).
 *
 * Packets after TX (.sees_tx): TX normally ends a packet's chain, so nothing
 * placed after forward would ever see a packet.  A service with .sees_tx set
 * is also handed the packets an earlier service of this run set to
 * FERRY_VERDICT_TX (out_port chosen), in one batch with the NEXT ones and in
 * arrival order.  It may leave such a packet at TX (it goes on to later
 * .sees_tx services, then out), DROP it, or HOLD it and finish it later
 * with ferry_worker__send_held() at TX, out_port unchanged; that is how tap
 * copies what leaves and pace delays it.  Services without the flag never
 * see a TX packet, so every existing chain behaves as before.  A packet an
 * earlier service holds (forward waiting for a neighbour) and later sends
 * itself is seen by no later service.
 *
 * Timers: tick() runs about every 100 ms.  A service that must act sooner
 * (pace releasing held packets) calls ferry_worker__wake_at() with a
 * deadline on the worker clock; the worker does not sleep past the earliest
 * deadline and then runs its services' tick() early.  tick() therefore
 * measures time with ferry_worker__now_ns() and never counts calls.
 */
#ifndef FERRY_SERVICE_H
#define FERRY_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ferry_shared.h"
#include "packet.h"

#define FERRY_SERVICE_ABI_VERSION 2
/* The symbol an out-of-tree service exports: const struct ferry_service_ops. */
#define FERRY_SERVICE_SYMBOL "ferry_service"
#define FERRY_SERVICE_COUNTERS 4

enum ferry_verdict {
	FERRY_VERDICT_NEXT = 0, /* on to the next service */
	FERRY_VERDICT_TX,       /* transmit on pkt->out_port, the chain ends here */
	FERRY_VERDICT_DROP,     /* free the frame, count pkt->drop_reason */
	FERRY_VERDICT_HOLD,     /* the service keeps the frame and finishes it later with
				 * ferry_worker__send_held(); it stays "held" in the UMEM */
};

struct ferry_pkt {
	uint8_t *data;         /* frame start (Ethernet header) in the UMEM */
	uint32_t len;          /* frame length */
	uint64_t addr;         /* UMEM address of data */
	struct pkt_info pi;    /* parsed headers */
	uint32_t flow_id;
	uint16_t in_port;      /* ferry port index it arrived on */
	uint16_t out_port;     /* set with FERRY_VERDICT_TX */
	uint8_t dir;           /* enum ferry_dir of the rule it matched */
	uint8_t verdict;       /* enum ferry_verdict */
	uint8_t drop_reason;   /* enum ferry_drop_reason with FERRY_VERDICT_DROP */
	/*
	 * ferryd's own, for forward: the NAT session the receiving worker
	 * found for a reply (NULL if none), so that the reply is not looked up
	 * twice.  A hint only, checked against the table before use
	 * (nat_table__lookup_reply_hint()).
	 */
	struct nat_session *reply_session;
};

struct ferry_batch {
	struct ferry_pkt **pkts;
	uint32_t n;
	uint32_t cap;          /* room in pkts[] for emitted packets */
};

struct ferry_worker;  /* opaque: daemon/worker.c */
struct nat_session;   /* lib/nat.h */
struct ferry_daemon;  /* opaque: daemon/ferryd.c */

/* What a flow's service knows about where it runs. */
struct ferry_flow_ctx {
	const struct cfg_flow *flow;
	uint32_t flow_id;
	struct ferry_daemon *daemon;
};

struct ferry_service_ops {
	const char *name;
	uint32_t abi_version;  /* FERRY_SERVICE_ABI_VERSION */
	int (*configure)(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **conf);
	int (*start)(const struct ferry_flow_ctx *fc, void *conf);
	int (*worker_init)(void *conf, struct ferry_worker *w, void **wstate);
	void (*process)(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b);
	void (*tick)(void *conf, void *wstate, struct ferry_worker *w);
	/* Adds this worker's service-specific counts into counters[i] (named below). */
	void (*stats)(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS]);
	void (*worker_destroy)(void *conf, void *wstate);
	void (*destroy)(void *conf);
	const char *counter_names[FERRY_SERVICE_COUNTERS];
	/* Also gets the packets earlier services set to TX (see above). */
	bool sees_tx;
};

const struct ferry_service_ops *service__find(const char *name);
void service__foreach(void (*fn)(const struct ferry_service_ops *ops, void *ctx), void *ctx);

/* What the daemon offers services (daemon/daemon.c, worker.c, chain.c, worker_nh.c). */
struct nat_table;
struct nh_resolver;

/* ferry port index of an interface ferry runs on, or -ENOENT. */
int ferry_daemon__port_of_ifindex(struct ferry_daemon *d, int ifindex);
/* Adds a steering rule for this flow (e.g. the replies of a NAT); returns 0 or -errno. */
int ferry_daemon__add_rule(struct ferry_daemon *d, const struct ferry_rule *rule);
const struct ferry_config *ferry_daemon__config(struct ferry_daemon *d);

uint64_t ferry_worker__now_ns(const struct ferry_worker *w);
uint32_t ferry_worker__id(const struct ferry_worker *w);
struct nat_table *ferry_worker__nat(struct ferry_worker *w);
struct nh_resolver *ferry_worker__resolver(struct ferry_worker *w);
int ferry_worker__port_of_ifindex(const struct ferry_worker *w, int ifindex);
/* Counters of this worker for a flow, published as ferry_fwd_stats. */
struct ferry_fwd_stats *ferry_worker__flow_stats(struct ferry_worker *w, uint32_t flow_id);
/*
 * The worker's next hops: one next-hop cache (lib/nh_cache.h) per worker,
 * kept current by the kernel's route, neighbour and link notifications and
 * shared by every service on the worker.  ferry_worker__nh_get() (from
 * worker_init()) creates it with `params` the first time and returns it;
 * each get is paired with a ferry_worker__nh_put() (from worker_destroy()),
 * the last of which destroys it, handing its held frames back as drops.
 */
struct nh_cache;
struct nh_cache_params;
int ferry_worker__nh_get(struct ferry_worker *w, const struct nh_cache_params *params,
			 struct nh_cache **out);
void ferry_worker__nh_put(struct ferry_worker *w);
/*
 * From process() (before the batch) and tick(): reads the kernel's
 * notifications, never waiting, runs queued lookups and times held frames
 * out, rate-limited (often while neighbours resolve, rarely otherwise).
 */
void ferry_worker__nh_poll(struct ferry_worker *w, uint64_t now);
/*
 * A service's nh_cache__prepare_deferred() queued a lookup for a packet of
 * flow_id: counts it (nh_lookups) and has the worker run it at its next
 * lookup slot, even when idle.
 */
void ferry_worker__nh_lookup_queued(struct ferry_worker *w, uint32_t flow_id, uint64_t now);
/*
 * Finishes packets a service held (FERRY_VERDICT_HOLD) after their chain run:
 * each must now be FERRY_VERDICT_TX (queued on out_port) or FERRY_VERDICT_DROP
 * (freed and counted for its flow_id).  The TX queues are flushed before it
 * returns, so it may be called from process() or tick() alike.
 */
void ferry_worker__send_held(struct ferry_worker *w, struct ferry_pkt **pkts, uint32_t n);
/*
 * Asks the worker to run its services' tick() at `deadline_ns` (worker
 * clock) instead of waiting for the next 100 ms tick; the earliest deadline
 * asked for wins, and each early run forgets it, so a service asks again
 * for every deadline it still has.
 */
void ferry_worker__wake_at(struct ferry_worker *w, uint64_t deadline_ns);

/*
 * A copy of `from` (frame bytes and parsed headers) in a new frame from the
 * worker's pool, appended to the batch at FERRY_VERDICT_NEXT: the emitting
 * service does not see it again, the following services do.  NULL when the
 * pool or the batch is full: the caller counts that as a drop of its own.
 */
struct ferry_pkt *ferry_batch__emit(struct ferry_worker *w, struct ferry_batch *b,
				    const struct ferry_pkt *from);
/* Bytes a packet's frame can hold from its data start (for payload growth). */
uint32_t ferry_worker__frame_room(const struct ferry_worker *w, const struct ferry_pkt *p);

/*
 * After a service changed a UDP packet's payload length: sets the IP and UDP
 * length fields, p->len and p->pi, and recomputes the checksums.  -EMSGSIZE
 * when the frame has no room, -EINVAL for anything but UDP.
 */
int ferry_pkt_set_payload_len(struct ferry_worker *w, struct ferry_pkt *p, uint32_t len);
/* Recomputes the IPv4 header checksum and the L4 checksum from scratch. */
void ferry_pkt_fix_checksums(struct ferry_pkt *p);

static inline void ferry_pkt_drop(struct ferry_pkt *p, enum ferry_drop_reason reason)
{
	p->verdict = FERRY_VERDICT_DROP;
	p->drop_reason = reason;
}

/*
 * Holds p (FERRY_VERDICT_HOLD) if the worker's services together hold fewer
 * frames than the worker's budget, which keeps enough frames for its FILL
 * rings; otherwise drops it as hold_budget and returns -ENOBUFS.  Called
 * from process() before the service keeps the packet anywhere.
 */
int ferry_worker__hold(struct ferry_worker *w, struct ferry_pkt *p);

static inline void ferry_pkt_tx(struct ferry_pkt *p, uint16_t out_port)
{
	p->verdict = FERRY_VERDICT_TX;
	p->out_port = out_port;
}

#endif /* FERRY_SERVICE_H */
