// SPDX-License-Identifier: BSD-2-Clause
/*
 * mirror: a copy of each client packet to every configured destination,
 * while the original goes on unchanged to the next service.
 *
 * Each copy is a new frame (ferry_batch__emit) rewritten like a NAT packet
 * that ferry originates: from the egress address the kernel's route to the
 * destination gives, with the client's source port kept so that a collector
 * can tell the client flows apart, to the destination's address and port,
 * with the next hop's MACs from the worker's next-hop cache, TTL - 1 and
 * incrementally fixed checksums (fwd_core.c).  It is sent straight away
 * (or held while the destination's neighbour resolves) and never seen by
 * the services after mirror.
 *
 * Copies are best effort and never hold up the original: a copy that gets
 * no frame (the pool or the chain run's emit budget is exhausted) is counted
 * as a no_frame drop, one that cannot be sent as a drop of its reason, and
 * the original goes on either way.  Only packets of the client direction
 * are copied; replies and ICMP errors that a later service's reply rule
 * brings pass through untouched.  Nothing steers a destination's answers
 * back: they reach the proxy's kernel.
 *
 * Beyond the service ABI (services/ferry_service.h) it uses ferryd's
 * internals through services/service.h and services/copy_out.h: the
 * worker's next-hop cache and per-flow counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "copy_out.h"
#include "fwd_core.h"
#include "log.h"
#include "service.h"

/* One counter per destination: the ABI has four. */
#define MIRROR_MAX_DESTS COPY_OUT_MAX_DESTS

struct mirror_conf {
	struct fwd_core core;
	uint32_t nr;
	struct fwd_target to[MIRROR_MAX_DESTS];
};

static int mirror_parse_dest(const struct cfg_node *item, int i, void *obj,
			     struct cfg_errors *errs)
{
	struct mirror_conf *c = obj;

	if (fwd_core__parse_target(&c->core, item, &c->to[i], errs))
		return -EINVAL;
	c->nr = (uint32_t)i + 1;
	return 0;
}

static const struct cfg_arg mirror_arg_list[] = {
	{ .name = "to",
	  .type = CFG_ARG_LIST,
	  .required = true,
	  .max = MIRROR_MAX_DESTS,
	  .item = mirror_parse_dest },
};

static const struct cfg_args mirror_args = {
	.prefix = "mirror",
	.expect = " with 'to'",
	.args = mirror_arg_list,
	.nr = sizeof(mirror_arg_list) / sizeof(mirror_arg_list[0]),
};

static int mirror_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			    struct cfg_errors *errs, void **confp)
{
	struct mirror_conf *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	fwd_core__init(&c->core, fc, "mirror");
	if (cfg_args_parse(&mirror_args, args, c, errs)) {
		free(c);
		return -EINVAL;
	}
	*confp = c;
	return 0;
}

static int mirror_start(const struct ferry_flow_ctx *fc, void *conf)
{
	struct mirror_conf *c = conf;
	char addr[64];
	int err;

	err = copy_out__start(&c->core, fc, c->to, c->nr, "destination");
	if (err)
		return err;
	for (uint32_t i = 0; i < c->nr; i++) {
		inet_ntop(c->core.family, c->to[i].addr.b, addr, sizeof(addr));
		pr_info("flow '%s': mirror %u to %s port %u via ifindex %d", c->core.flow_name, i,
			addr, c->to[i].port, c->to[i].ifindex);
	}
	return 0;
}

static int mirror_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct mirror_conf *c = conf;

	return copy_out__worker_init(&c->core, c->to, c->nr, w, wstate);
}

static void mirror_worker_destroy(void *conf, void *wstate)
{
	copy_out__worker_destroy(wstate);
}

static void mirror_destroy(void *conf)
{
	free(conf);
}

static void mirror_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct copy_out_worker *mw = wstate;
	struct mirror_conf *c = conf;
	/* The copies join the batch behind the originals: only the originals are ours. */
	uint32_t n = b->n;

	copy_out__poll(mw, w);
	for (uint32_t i = 0; i < n; i++) {
		const struct ferry_pkt *p = b->pkts[i];

		if (p->dir != FERRY_DIR_CLIENT)
			continue;
		/* Counted per destination: sent or held for their neighbour. */
		copy_out__copies(mw, w, b, p, 0, c->nr);
	}
}

static void mirror_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	/* Copies held for a neighbour leave or time out even while no packet comes. */
	copy_out__poll(wstate, w);
}

static void mirror_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	copy_out__stats(wstate, counters);
}

const struct ferry_service_ops svc_mirror_ops = {
	.name = "mirror",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = mirror_configure,
	.start = mirror_start,
	.worker_init = mirror_worker_init,
	.process = mirror_process,
	.tick = mirror_tick,
	.stats = mirror_stats,
	.worker_destroy = mirror_worker_destroy,
	.destroy = mirror_destroy,
	.counter_names = { "copies_to0", "copies_to1", "copies_to2", "copies_to3" },
};
