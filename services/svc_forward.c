// SPDX-License-Identifier: BSD-2-Clause
/*
 * forward: full NAT of a flow to one upstream.
 *
 * Client -> flow address:port becomes egress address:NAT port -> upstream,
 * and the upstream's replies come back the same way reversed.  start() asks
 * the kernel for the route to the upstream (which interface, which source
 * address) and adds the steering rule that brings the replies to ferry: from
 * upstream:port to egress address, destination port in the NAT range.
 *
 * The packet path (sessions, next hops through the worker's next-hop cache,
 * rewrites, replies, ICMP errors, TCP state and MSS clamping) is shared with
 * lb and lives in fwd_core.c; forward only says that every new session goes
 * to its one upstream.
 *
 * Beyond the service ABI (services/ferry_service.h) it uses ferryd's
 * internals through services/service.h and services/fwd_core.h: the
 * worker's NAT table and next-hop cache, and a steering rule for the
 * replies.  An out-of-tree service could not be written this way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "fwd_core.h"
#include "log.h"
#include "nexthop.h"
#include "service.h"

struct fwd_conf {
	struct fwd_core core;
	struct fwd_target up;
};

struct fwd_worker {
	struct fwd_nh *nh;
};

struct fwd_args {
	struct cfg_endpoint upstream;
	struct cfg_prefix source;
};

static const struct cfg_arg fwd_arg_list[] = {
	{ .name = "upstream",
	  .type = CFG_ARG_ENDPOINT,
	  .offset = offsetof(struct fwd_args, upstream),
	  .required = true },
	{ .name = "source", .type = CFG_ARG_PREFIX, .offset = offsetof(struct fwd_args, source) },
};

static const struct cfg_args fwd_args = {
	.prefix = "forward",
	.expect = " with 'upstream'",
	.args = fwd_arg_list,
	.nr = sizeof(fwd_arg_list) / sizeof(fwd_arg_list[0]),
};

static int fwd_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **confp)
{
	const struct cfg_prefix *upstream;
	struct fwd_args a = {};
	struct fwd_conf *c;

	if (cfg_args_parse(&fwd_args, args, &a, errs))
		return -EINVAL;
	upstream = &a.upstream.addr;
	if (upstream->family != ferry_flow__family(fc)) {
		cfg_node_error(errs, args,
			       "forward: upstream and the flow's destination are of different "
			       "address families");
		return -EINVAL;
	}
	if (a.source.family && a.source.family != upstream->family) {
		cfg_node_error(errs, args, "forward: source and upstream are of different families");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	fwd_core__init(&c->core, fc, "forward");
	c->core.source = a.source;
	c->up.port = a.upstream.port;
	memcpy(c->up.addr.b, upstream->addr.bytes, upstream->family == AF_INET ? 4 : 16);
	*confp = c;
	return 0;
}

static int fwd_start(const struct ferry_flow_ctx *fc, void *conf)
{
	struct fwd_conf *c = conf;
	struct nh_resolver *nh;
	char addr[64];
	int err;

	fwd_core__setup(&c->core, ferry_daemon__config(fc->daemon));
	err = nh_resolver__create(&nh);
	if (err)
		return err;
	err = fwd_core__resolve(&c->core, nh, fc->daemon, &c->up, "upstream");
	if (err)
		goto out;
	err = fwd_core__add_reply_rule(&c->core, fc, &c->up);
	if (err)
		goto out;
	inet_ntop(c->core.family, c->up.addr.b, addr, sizeof(addr));
	pr_info("flow '%s': forward to %s port %u via ifindex %d", c->core.flow_name, addr,
		c->up.port, c->up.ifindex);
out:
	nh_resolver__destroy(nh);
	return err;
}

static int fwd_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct fwd_conf *c = conf;
	struct fwd_worker *fw;
	int err;

	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	err = fwd_core__nh_get(&c->core, w, &fw->nh);
	if (err) {
		free(fw);
		return err;
	}
	*wstate = fw;
	return 0;
}

static void fwd_worker_destroy(void *conf, void *wstate)
{
	struct fwd_worker *fw = wstate;

	fwd_core__nh_put(fw->nh);
	free(fw);
}

static void fwd_destroy(void *conf)
{
	free(conf);
}

/* Every session goes to the one upstream. */
static const struct fwd_target *fwd_pick(const void *ctx, const struct nat_tuple *client)
{
	const struct fwd_conf *c = ctx;

	return &c->up;
}

static void fwd_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct fwd_worker *fw = wstate;
	struct fwd_conf *c = conf;

	/* Before the batch, so that released frames leave ahead of newer ones. */
	fwd_core__nh_poll(fw->nh, ferry_worker__now_ns(w));
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		const struct fwd_target *created;
		int reason;

		if (p->dir != FERRY_DIR_REPLY)
			reason = fwd_core__from_client(&c->core, fw->nh, w, p, fwd_pick, c,
						       &created);
		else
			reason = fwd_core__from_upstream(&c->core, fw->nh, w, p);
		if (reason)
			ferry_pkt_drop(p, reason);
	}
}

static void fwd_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	struct fwd_worker *fw = wstate;

	/* An idle worker still follows the kernel and times held frames out. */
	fwd_core__nh_poll(fw->nh, ferry_worker__now_ns(w));
}

const struct ferry_service_ops svc_forward_ops = {
	.name = "forward",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = fwd_configure,
	.start = fwd_start,
	.worker_init = fwd_worker_init,
	.process = fwd_process,
	.tick = fwd_tick,
	.worker_destroy = fwd_worker_destroy,
	.destroy = fwd_destroy,
};
