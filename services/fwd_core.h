/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The full-NAT machinery that forward and lb share, and the next hops and
 * rewrites that mirror and fanout use for their one-way copies.  Internal to
 * the built-in services: not part of the service ABI (services/
 * ferry_service.h); it reaches the worker's NAT table, next-hop cache and
 * steering rules through services/service.h, which ferryd does not export.
 *
 * A NAT service (forward: one upstream; lb: one of several) differs only in
 * which upstream a new session goes to, so it hands fwd_core__from_client()
 * a pick function that is called once per new session; the session records
 * the upstream it got, and everything after (next hops, rewrites, replies,
 * ICMP errors, TCP state, MSS clamping) is the same code for both.
 *
 * Next hops: each worker has one next-hop cache (lib/nh_cache.h) and one
 * notification socket, shared by every flow of these services on it, so a
 * destination several flows send to is resolved once.  The worker owns them
 * (daemon/worker_nh.c, ferry_worker__nh_get()); struct fwd_nh is a
 * service's handle on them, taken in worker_init() and put back in
 * worker_destroy().
 *
 * One-way copies (struct fwd_oneway) have no session: a per-worker template
 * per destination keeps the next hop's cache entry and generation like a
 * session does, and the copy is rewritten with the same NAT rewrite, from
 * the egress address towards the destination, the source port kept.
 */
#ifndef FERRY_FWD_CORE_H
#define FERRY_FWD_CORE_H

#include <stdint.h>

#include "config.h"
#include "nat.h"
#include "nh_cache.h"
#include "service.h"
#include "tcp_state.h"

/* Where a service sends: an upstream, a mirror destination, a subscriber. */
struct fwd_target {
	union ferry_addr addr;
	uint16_t port;
	union ferry_addr egress; /* ferry's source address towards it, from start() */
	int ifindex;		 /* the interface the route used at start() */
};

/* What the shared path needs of one flow's service. */
struct fwd_core {
	char flow_name[CFG_NAME_LEN];
	const char *svc;	    /* the service's name, for messages */
	int family;		    /* AF_INET or AF_INET6: the flow's and every target's */
	struct cfg_prefix source;   /* configured egress source, family 0 = the kernel's choice */
	struct tcp_timeouts tcp_to; /* from the nat section, for TCP sessions */
	struct nh_cache_params nh_params; /* for the worker's next-hop cache */
};

/* A service's handle on its worker's next hops (opaque). */
struct fwd_nh;

/* configure(): the flow's name and family; svc must be a string literal. */
void fwd_core__init(struct fwd_core *c, const struct ferry_flow_ctx *fc, const char *svc);
/*
 * Reads an endpoint "ADDR:PORT" of the flow's family into t->addr/port.
 * Returns 0 or -EINVAL after reporting the error at the node.
 */
int fwd_core__parse_target(const struct fwd_core *c, const struct cfg_node *n, struct fwd_target *t,
			   struct cfg_errors *errs);
/* start(): timeouts and next-hop cache sizes from the loaded config. */
void fwd_core__setup(struct fwd_core *c, const struct ferry_config *cfg);
/*
 * start(): the route to t through a ferry interface, t->egress (the
 * configured source or the kernel's preferred one) and t->ifindex; starts
 * resolving the neighbour.  `what` names t in messages ("upstream").
 */
int fwd_core__resolve(const struct fwd_core *c, struct nh_resolver *nh, struct ferry_daemon *d,
		      struct fwd_target *t, const char *what);
/* start(): the rule that steers t's replies to the flow (t:port -> egress:NAT ports). */
int fwd_core__add_reply_rule(const struct fwd_core *c, const struct ferry_flow_ctx *fc,
			     const struct fwd_target *t);

/* worker_init()/worker_destroy(): the worker's shared next hops. */
int fwd_core__nh_get(const struct fwd_core *c, struct ferry_worker *w, struct fwd_nh **out);
void fwd_core__nh_put(struct fwd_nh *nh);
/* process() before its batch, and tick(): follow the kernel, time held frames out. */
void fwd_core__nh_poll(struct fwd_nh *nh, uint64_t now);

/* The upstream of a new session of `client`'s tuple; never NULL. */
typedef const struct fwd_target *(*fwd_pick_fn)(const void *ctx, const struct nat_tuple *client);

/*
 * A client's packet: to its session's upstream, creating the session (with
 * the upstream pick() names) if there is none.  Returns 0 with the packet
 * sent or held, or the drop reason.  *created is the new session's target
 * when this packet created one, else NULL.
 */
int fwd_core__from_client(const struct fwd_core *c, struct fwd_nh *nh, struct ferry_worker *w,
			  struct ferry_pkt *p, fwd_pick_fn pick, const void *pick_ctx,
			  const struct fwd_target **created);
/* A packet of a reply rule: an upstream's reply or an ICMP error; 0 or the drop reason. */
int fwd_core__from_upstream(const struct fwd_core *c, struct fwd_nh *nh, struct ferry_worker *w,
			    struct ferry_pkt *p);

/* A destination of one-way copies, per worker. */
struct fwd_oneway {
	struct nat_session s; /* template: upstream tuple, next hop; no table slot */
	uint8_t family;	      /* 4 or 6, as struct pkt_info has it */
};

void fwd_core__oneway_init(struct fwd_oneway *o, const struct fwd_core *c,
			   const struct fwd_target *t);
/*
 * Rewrites p into a packet from t's egress address (p's source port kept)
 * to t, with the next hop's MACs, TTL - 1 and fixed checksums, and sends it
 * (FERRY_VERDICT_TX) or holds it for its neighbour.  Returns 0 or the drop
 * reason, the packet unsent.
 */
int fwd_core__oneway_send(struct fwd_nh *nh, struct ferry_worker *w, struct fwd_oneway *o,
			  struct ferry_pkt *p);

#endif /* FERRY_FWD_CORE_H */
