/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The service ABI.
 *
 * Each flow's packets pass through the chain of services its config names.
 * A service is a const struct ferry_service_ops with designated
 * initialisers, registered in services/registry.c.  Services see batches:
 * process() gets every packet of one flow that a worker received in one RX
 * burst and sets a verdict on each.  Packets left at FERRY_VERDICT_NEXT go on
 * to the next service; after the last one a packet that nobody sent is
 * dropped (counted as drop_service), so a chain can never leak a frame.
 *
 * Lifecycle: configure() once per flow when the config is loaded (parse the
 * service's YAML node, report errors as FILE:LINE:COL through errs);
 * start() once the interfaces are up (resolve what needs the network, add
 * steering rules); worker_init() once per worker for per-worker state, so
 * process() never takes a lock; tick() about every 100 ms on each worker;
 * worker_destroy(), then destroy().
 */
#ifndef FERRY_SERVICE_H
#define FERRY_SERVICE_H

#include <stdint.h>

#include "config.h"
#include "ferry_shared.h"
#include "packet.h"

#define FERRY_SERVICE_ABI_VERSION 1

enum ferry_verdict {
	FERRY_VERDICT_NEXT = 0, /* on to the next service */
	FERRY_VERDICT_TX,       /* transmit on pkt->out_port, the chain ends here */
	FERRY_VERDICT_DROP,     /* free the frame, count pkt->drop_reason */
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
};

struct ferry_batch {
	struct ferry_pkt **pkts;
	uint32_t n;
};

struct ferry_worker;  /* opaque: daemon/worker.c */
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
	void (*worker_destroy)(void *conf, void *wstate);
	void (*destroy)(void *conf);
};

const struct ferry_service_ops *service__find(const char *name);
void service__foreach(void (*fn)(const struct ferry_service_ops *ops, void *ctx), void *ctx);

/* What the daemon offers services (daemon/ferryd.c, daemon/worker.c). */
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

static inline void ferry_pkt_drop(struct ferry_pkt *p, enum ferry_drop_reason reason)
{
	p->verdict = FERRY_VERDICT_DROP;
	p->drop_reason = reason;
}

static inline void ferry_pkt_tx(struct ferry_pkt *p, uint16_t out_port)
{
	p->verdict = FERRY_VERDICT_TX;
	p->out_port = out_port;
}

#endif /* FERRY_SERVICE_H */
