// SPDX-License-Identifier: BSD-2-Clause
/*
 * fanout: one producer, many consumers.  Every datagram of the flow goes to
 * every subscriber: N - 1 copies (ferry_batch__emit) and the original, each
 * rewritten for its subscriber like a NAT packet that ferry originates: from
 * the egress address the kernel's route to the subscriber gives, the
 * producer's source port kept, to the subscriber's address and port, with
 * the next hop's MACs, TTL - 1 and incrementally fixed checksums
 * (fwd_core.c).  The original goes to the first subscriber, so a fanout of
 * one subscriber costs no copy.
 *
 * One-way: there is no session and no reply rule, so what subscribers send
 * back is not steered to the producer; it reaches the proxy's kernel (which
 * answers a datagram to a closed port with an ICMP error).  For the same
 * reason only UDP flows are accepted: a TCP connection cannot be fanned out.
 *
 * Losing one subscriber's copy (no frame, no route, no neighbour) is counted
 * with its reason and does not hold up the others.  The counters are the
 * datagrams sent (or held for the neighbour) per subscriber.
 *
 * Beyond the service ABI (services/ferry_service.h) it uses ferryd's
 * internals through services/service.h and services/copy_out.h: the
 * worker's next-hop cache and per-flow counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "copy_out.h"
#include "fwd_core.h"
#include "log.h"
#include "service.h"

/* One counter per subscriber: the ABI has four. */
#define FANOUT_MAX_SUBSCRIBERS COPY_OUT_MAX_DESTS

struct fanout_conf {
	struct fwd_core core;
	uint32_t nr;
	struct fwd_target sub[FANOUT_MAX_SUBSCRIBERS];
};

static int fanout_parse_sub(const struct cfg_node *item, int i, void *obj,
			    struct cfg_errors *errs)
{
	struct fanout_conf *c = obj;

	if (fwd_core__parse_target(&c->core, item, &c->sub[i], errs))
		return -EINVAL;
	for (int j = 0; j < i; j++) {
		if (c->sub[j].port == c->sub[i].port &&
		    !memcmp(c->sub[j].addr.b, c->sub[i].addr.b, 16)) {
			cfg_node_error(errs, item, "fanout: subscriber listed twice");
			return -EINVAL;
		}
	}
	c->nr = (uint32_t)i + 1;
	return 0;
}

static const struct cfg_arg fanout_arg_list[] = {
	{ .name = "subscribers",
	  .type = CFG_ARG_LIST,
	  .required = true,
	  .max = FANOUT_MAX_SUBSCRIBERS,
	  .item = fanout_parse_sub },
};

static const struct cfg_args fanout_args = {
	.prefix = "fanout",
	.expect = " with 'subscribers'",
	.args = fanout_arg_list,
	.nr = sizeof(fanout_arg_list) / sizeof(fanout_arg_list[0]),
};

static int fanout_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			    struct cfg_errors *errs, void **confp)
{
	struct fanout_conf *c;

	if (cfg_node_is_map(args) && ferry_flow__l4_proto(fc) != IPPROTO_UDP) {
		cfg_node_error(errs, args, "fanout: only UDP flows can be fanned out");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	fwd_core__init(&c->core, fc, "fanout");
	if (cfg_args_parse(&fanout_args, args, c, errs)) {
		free(c);
		return -EINVAL;
	}
	*confp = c;
	return 0;
}

static int fanout_start(const struct ferry_flow_ctx *fc, void *conf)
{
	struct fanout_conf *c = conf;
	char addr[64];
	int err;

	err = copy_out__start(&c->core, fc, c->sub, c->nr, "subscriber");
	if (err)
		return err;
	for (uint32_t i = 0; i < c->nr; i++) {
		inet_ntop(c->core.family, c->sub[i].addr.b, addr, sizeof(addr));
		pr_info("flow '%s': fanout subscriber %u: %s port %u via ifindex %d",
			c->core.flow_name, i, addr, c->sub[i].port, c->sub[i].ifindex);
	}
	return 0;
}

static int fanout_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct fanout_conf *c = conf;

	return copy_out__worker_init(&c->core, c->sub, c->nr, w, wstate);
}

static void fanout_worker_destroy(void *conf, void *wstate)
{
	copy_out__worker_destroy(wstate);
}

static void fanout_destroy(void *conf)
{
	free(conf);
}

static void fanout_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct copy_out_worker *fw = wstate;
	struct fanout_conf *c = conf;
	/* The copies join the batch behind the originals: only the originals are ours. */
	uint32_t n = b->n;

	copy_out__poll(fw, w);
	for (uint32_t i = 0; i < n; i++) {
		struct ferry_pkt *p = b->pkts[i];

		/* No reply rule of ours: a reply belongs to someone else's rule. */
		if (p->dir != FERRY_DIR_CLIENT)
			continue;
		/* Copies first, while the original's bytes are still the producer's. */
		copy_out__copies(fw, w, b, p, 1, c->nr);
		copy_out__send(fw, w, 0, p);
	}
}

static void fanout_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	/* Datagrams held for a neighbour leave or time out even while no packet comes. */
	copy_out__poll(wstate, w);
}

static void fanout_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	copy_out__stats(wstate, counters);
}

const struct ferry_service_ops svc_fanout_ops = {
	.name = "fanout",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = fanout_configure,
	.start = fanout_start,
	.worker_init = fanout_worker_init,
	.process = fanout_process,
	.tick = fanout_tick,
	.stats = fanout_stats,
	.worker_destroy = fanout_worker_destroy,
	.destroy = fanout_destroy,
	.counter_names = { "subscriber0", "subscriber1", "subscriber2", "subscriber3" },
};
