/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ferryd's state: the loaded config, the XDP side (steer), the flows with
 * their service chains, and the workers.  The main thread owns all of it;
 * workers read the parts that do not change while they run (ports, rules,
 * chains) and write only their own counters and sessions.
 */
#ifndef FERRY_DAEMON_H
#define FERRY_DAEMON_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ferry_shared.h"
#include "service.h"

struct steer;
struct ferry_worker;
struct handoff;
struct svc_loader;

struct flow_chain {
	struct ferry_flow_ctx fc;
	int nr;
	const struct ferry_service_ops *ops[CFG_MAX_SERVICES];
	void *conf[CFG_MAX_SERVICES];
	/* Its sessions may forward in XDP (daemon/offload.h); if not, why. */
	bool offload;
	char offload_why[48];
};

struct ferry_port_info {
	char ifname[IF_NAMESIZE];
	int ifindex;
};

struct ferry_daemon {
	struct ferry_config cfg;
	struct steer *steer;
	int nr_ports;
	struct ferry_port_info ports[CFG_MAX_IFACES];
	int nr_flows;
	struct flow_chain flows[CFG_MAX_FLOWS];
	uint32_t nr_rules;
	struct ferry_rule rules[FERRY_MAX_RULES];
	uint32_t nr_workers;
	struct ferry_worker **workers;
	struct handoff *handoff;       /* rings between workers; NULL with one worker */
	struct svc_loader *loader;     /* out-of-tree services; NULL until a flow names one */
	volatile sig_atomic_t stop;
	/*
	 * Reload (daemon/reload.c): set by the main thread to park every
	 * worker at the top of its loop; park_fd (an eventfd, -1 when unused)
	 * wakes the idle ones at once.
	 */
	atomic_int park;
	int park_fd;
	/*
	 * The fast path's per-flow counters when each flow id's counters were
	 * last reset (daemon/offload.c): they count from there.
	 */
	struct {
		uint64_t client, client_bytes, reply, reply_bytes;
		uint64_t rl_client, rl_client_bytes, rl_reply, rl_reply_bytes, rl_over_bytes;
	} offload_base[CFG_MAX_FLOWS];
	/* The fast path's maps (steer.h), set by ferryd once they exist: offload_maps. */
	bool offload_maps;
	uint8_t egress_state[CFG_MAX_IFACES]; /* 0 unknown, 1 in ferry_tx_ports, 2 out */
	int offload_map_fd;
	int offload_stats_fd;
	int flow_stats_fd;
};

/*
 * daemon/daemon.c: the flows' chains, as start-up, reload and the fuzz
 * harnesses build them.
 *
 * Finds and configures every service of `flow` into cd's chain of flow_id;
 * an out-of-tree service comes from ld's loader (created when first needed;
 * ld is cd except in a reload).  Reports every error in errs and goes on.
 */
void ferry_daemon__configure_chain(struct ferry_daemon *ld, struct ferry_daemon *cd,
				   const struct cfg_flow *flow, uint32_t flow_id,
				   struct cfg_errors *errs);
/* Every flow of d->cfg, in config order (d->nr_flows); -EINVAL after any error. */
int ferry_daemon__configure_flows(struct ferry_daemon *d, struct cfg_errors *errs);
/* destroy() of every configured service of a chain, of every flow. */
void ferry_daemon__destroy_chain(struct flow_chain *ch);
void ferry_daemon__destroy_flows(struct ferry_daemon *d);
/* The client rule of flow_id with match m; ferry_daemon__add_rule()'s result. */
int ferry_daemon__add_client_rule(struct ferry_daemon *d, const struct cfg_match *m,
				  uint32_t flow_id);
/* The client rule of every flow, in config order. */
int ferry_daemon__client_rules(struct ferry_daemon *d);
/* start() of every service of every flow; logs and returns the first failure. */
int ferry_daemon__start_services(struct ferry_daemon *d);

/* daemon/worker.c */
int worker__create(struct ferry_worker **out, struct ferry_daemon *d, uint32_t id);
int worker__start(struct ferry_worker *w);
void worker__stop(struct ferry_worker *w);
void worker__destroy(struct ferry_worker *w);
/* Adds this worker's per-flow counters into `sum` (main thread, any time). */
void worker__add_flow_stats(const struct ferry_worker *w, uint32_t flow_id,
			    struct ferry_fwd_stats *sum);
/*
 * Adds this worker's counters of service `pos` of flow_id's chain into `sum`:
 * the chain runner's generic ones and the service's own (its stats()).
 */
void worker__add_svc_stats(const struct ferry_worker *w, uint32_t flow_id, int pos,
			   struct ferry_svc_stats *sum);
int worker__cpu_slot(const struct ferry_worker *w);
/* daemon/rx.c: the slice lo..hi of nat.ports that worker `id` allocates NAT ports from. */
void worker__nat_slice(const struct ferry_daemon *d, uint32_t id, uint16_t *lo, uint16_t *hi);
/* The worker whose slice holds NAT port `port`, or -ENOENT outside nat.ports. */
int worker__nat_owner(const struct ferry_daemon *d, uint16_t port);
uint64_t worker__unclassified(const struct ferry_worker *w);
/* Loop iterations so far; idle workers still loop at least every 100 ms (TICK_NS). */
uint64_t worker__loops(const struct ferry_worker *w);
/*
 * The counters of the worker's socket on config port `port`: the kernel's
 * XDP_STATISTICS (getsockopt) and its struct port_stats.  Main thread.
 */
int worker__queue_stats(const struct ferry_worker *w, int port, struct ferry_queue_stats *qs);

#endif /* FERRY_DAEMON_H */
