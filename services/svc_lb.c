// SPDX-License-Identifier: BSD-2-Clause
/*
 * lb: full NAT of a flow to one of several upstreams, chosen per client flow
 * by Maglev consistent hashing (maglev.h).
 *
 * A new session's upstream is the table entry of a hash of the client's
 * 5-tuple; the NAT session records it, so a flow stays on its upstream for
 * the session's lifetime whatever happens to the table.  The hash has no
 * random seed: a tuple maps to the same upstream on every worker and after
 * a restart.  The table is built in start() from the set of upstreams (not
 * their order) and their weights; a config with an upstream removed builds a
 * table in which almost only the removed upstream's flows move.
 *
 * Everything after the choice (next hops, rewrites, replies, ICMP errors,
 * TCP state) is forward's code, shared through fwd_core.c.  Each upstream
 * gets its own reply rule, with the egress address its route gives it, so
 * upstreams behind different interfaces work.  There are no health checks:
 * an upstream that stops answering keeps its share of new flows.
 *
 * Beyond the service ABI (services/ferry_service.h) it uses ferryd's
 * internals through services/service.h and services/fwd_core.h (the NAT
 * table, next hops, the reply rule), as forward does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "fwd_core.h"
#include "log.h"
#include "maglev.h"
#include "nexthop.h"
#include "service.h"

#define LB_MAX_UPSTREAMS 16
#define LB_DEFAULT_TABLE 65537
/* Maglev balances within about 1% with M >= 100 N (the paper's guidance). */
#define LB_MIN_ENTRIES_PER_UPSTREAM 100
#define LB_SEED_FLOW 0x6c622d666c6f7773ull
#define LB_SEED_KEY 0x6c622d7570737472ull

struct lb_conf {
	struct fwd_core core;
	uint32_t nr;
	struct fwd_target up[LB_MAX_UPSTREAMS];
	uint32_t weight[LB_MAX_UPSTREAMS];
	uint32_t table_size;
	uint8_t *table; /* table_size upstream indexes, built in start() */
};

struct lb_worker {
	struct fwd_nh *nh;
	uint64_t sessions[LB_MAX_UPSTREAMS]; /* new sessions per upstream */
};

/* An upstream's identity for Maglev: its address and port, not its place in the list. */
static uint64_t lb_key(int family, const struct fwd_target *t)
{
	uint8_t buf[19];

	buf[0] = (uint8_t)family;
	memcpy(buf + 1, t->addr.b, 16);
	buf[17] = (uint8_t)(t->port >> 8);
	buf[18] = (uint8_t)t->port;
	return maglev_hash(buf, sizeof(buf), LB_SEED_KEY);
}

/* The client's 5-tuple, as it arrived (client -> flow address). */
static uint64_t lb_flow_hash(const struct nat_tuple *t)
{
	size_t alen = t->family == 4 ? 4 : 16;
	uint8_t buf[37];

	memcpy(buf, t->saddr.b, alen);
	memcpy(buf + alen, t->daddr.b, alen);
	buf[2 * alen] = (uint8_t)(t->sport >> 8);
	buf[2 * alen + 1] = (uint8_t)t->sport;
	buf[2 * alen + 2] = (uint8_t)(t->dport >> 8);
	buf[2 * alen + 3] = (uint8_t)t->dport;
	buf[2 * alen + 4] = t->proto;
	return maglev_hash(buf, 2 * alen + 5, LB_SEED_FLOW);
}

/* One upstream: "ADDR:PORT", or {address: ADDR:PORT, weight: N}. */
struct lb_upstream_args {
	struct lb_conf *c;
	int i;
};

static int lb_parse_address(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct lb_upstream_args *ua = obj;

	return fwd_core__parse_target(&ua->c->core, val, &ua->c->up[ua->i], errs);
}

static int lb_parse_weight(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct lb_upstream_args *ua = obj;

	return cfg_get_u32(val, 1, MAGLEV_MAX_WEIGHT, &ua->c->weight[ua->i], errs);
}

static const struct cfg_arg lb_upstream_arg_list[] = {
	{ .name = "address", .type = CFG_ARG_NODE, .required = true, .parse = lb_parse_address },
	{ .name = "weight", .type = CFG_ARG_NODE, .parse = lb_parse_weight },
};

static const struct cfg_args lb_upstream_args = {
	.prefix = "lb",
	.in = "an upstream",
	.args = lb_upstream_arg_list,
	.nr = sizeof(lb_upstream_arg_list) / sizeof(lb_upstream_arg_list[0]),
};

static int lb_parse_upstream(const struct cfg_node *item, int i, void *obj,
			     struct cfg_errors *errs)
{
	struct lb_conf *c = obj;
	struct fwd_target *t = &c->up[i];
	struct lb_upstream_args ua = { .c = c, .i = i };
	int err;

	c->weight[i] = 1;
	if (!cfg_node_is_map(item))
		err = fwd_core__parse_target(&c->core, item, t, errs);
	else
		err = cfg_args_parse(&lb_upstream_args, item, &ua, errs);
	if (err)
		return err;
	for (int j = 0; j < i; j++) {
		if (c->up[j].port == t->port && !memcmp(c->up[j].addr.b, t->addr.b, 16)) {
			cfg_node_error(errs, item, "lb: upstream listed twice");
			return -EINVAL;
		}
	}
	c->nr = (uint32_t)i + 1;
	return 0;
}

static const struct cfg_arg lb_arg_list[] = {
	{ .name = "upstreams",
	  .type = CFG_ARG_LIST,
	  .required = true,
	  .max = LB_MAX_UPSTREAMS,
	  .item = lb_parse_upstream },
	{ .name = "table_size",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct lb_conf, table_size),
	  .min = MAGLEV_MIN_SIZE,
	  .max = MAGLEV_MAX_SIZE,
	  .def = LB_DEFAULT_TABLE },
	{ .name = "source", .type = CFG_ARG_PREFIX, .offset = offsetof(struct lb_conf, core.source) },
};

static const struct cfg_args lb_args = {
	.prefix = "lb",
	.expect = " with 'upstreams'",
	.args = lb_arg_list,
	.nr = sizeof(lb_arg_list) / sizeof(lb_arg_list[0]),
};

static int lb_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			struct cfg_errors *errs, void **confp)
{
	const struct cfg_node *size_node = cfg_map_get(args, "table_size");
	struct lb_conf *c = calloc(1, sizeof(*c));
	int err = -EINVAL;

	if (!c)
		return -ENOMEM;
	fwd_core__init(&c->core, fc, "lb");
	if (cfg_args_parse(&lb_args, args, c, errs))
		goto err_free;
	if (!maglev_is_prime(c->table_size)) {
		cfg_node_error(errs, size_node, "lb: table_size %u is not a prime", c->table_size);
		goto err_free;
	}
	if (c->table_size < LB_MIN_ENTRIES_PER_UPSTREAM * c->nr) {
		cfg_node_error(errs, size_node ?: args,
			       "lb: table_size %u is too small for %u upstreams (at least %u)",
			       c->table_size, c->nr, LB_MIN_ENTRIES_PER_UPSTREAM * c->nr);
		goto err_free;
	}
	if (c->core.source.family && c->core.source.family != c->core.family) {
		cfg_node_error(errs, args, "lb: source and upstreams are of different families");
		goto err_free;
	}
	*confp = c;
	return 0;

err_free:
	free(c);
	return err;
}

static int lb_build_table(struct lb_conf *c)
{
	struct maglev_backend b[LB_MAX_UPSTREAMS];

	for (uint32_t i = 0; i < c->nr; i++) {
		b[i].key = lb_key(c->core.family, &c->up[i]);
		b[i].weight = c->weight[i];
	}
	c->table = malloc(c->table_size);
	if (!c->table)
		return -ENOMEM;
	return maglev_build(c->table, c->table_size, b, c->nr);
}

static int lb_start(const struct ferry_flow_ctx *fc, void *conf)
{
	uint32_t share[LB_MAX_UPSTREAMS] = {};
	struct lb_conf *c = conf;
	struct nh_resolver *nh;
	char addr[64];
	int err;

	fwd_core__setup(&c->core, ferry_daemon__config(fc->daemon));
	err = lb_build_table(c);
	if (err) {
		pr_err("flow '%s': lb: cannot build the table of %u entries: %s", c->core.flow_name,
		       c->table_size, strerror(-err));
		return err;
	}
	err = nh_resolver__create(&nh);
	if (err)
		return err;
	for (uint32_t i = 0; i < c->nr && !err; i++) {
		err = fwd_core__resolve(&c->core, nh, fc->daemon, &c->up[i], "upstream");
		if (!err)
			err = fwd_core__add_reply_rule(&c->core, fc, &c->up[i]);
	}
	nh_resolver__destroy(nh);
	if (err)
		return err;

	for (uint32_t s = 0; s < c->table_size; s++)
		share[c->table[s]]++;
	pr_info("flow '%s': lb over %u upstreams, table of %u entries", c->core.flow_name, c->nr,
		c->table_size);
	for (uint32_t i = 0; i < c->nr; i++) {
		inet_ntop(c->core.family, c->up[i].addr.b, addr, sizeof(addr));
		pr_info("flow '%s': lb upstream %u: %s port %u, weight %u, %u entries, via "
			"ifindex %d",
			c->core.flow_name, i, addr, c->up[i].port, c->weight[i], share[i],
			c->up[i].ifindex);
	}
	return 0;
}

static int lb_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct lb_conf *c = conf;
	struct lb_worker *lw;
	int err;

	/* No table: start() did not run or failed, and nothing may be sent. */
	if (!c->table)
		return -EINVAL;
	lw = calloc(1, sizeof(*lw));
	if (!lw)
		return -ENOMEM;
	err = fwd_core__nh_get(&c->core, w, &lw->nh);
	if (err) {
		free(lw);
		return err;
	}
	*wstate = lw;
	return 0;
}

static void lb_worker_destroy(void *conf, void *wstate)
{
	struct lb_worker *lw = wstate;

	fwd_core__nh_put(lw->nh);
	free(lw);
}

static void lb_destroy(void *conf)
{
	struct lb_conf *c = conf;

	free(c->table);
	free(c);
}

/* Called once per new session, never for packets of an existing one. */
static const struct fwd_target *lb_pick(const void *ctx, const struct nat_tuple *client)
{
	const struct lb_conf *c = ctx;

	return &c->up[c->table[maglev_slot(lb_flow_hash(client), c->table_size)]];
}

static void lb_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	struct lb_worker *lw = wstate;
	struct lb_conf *c = conf;

	/* Before the batch, so that released frames leave ahead of newer ones. */
	fwd_core__nh_poll(lw->nh, ferry_worker__now_ns(w));
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		const struct fwd_target *created = NULL;
		int reason;

		if (p->dir != FERRY_DIR_REPLY)
			reason = fwd_core__from_client(&c->core, lw->nh, w, p, lb_pick, c,
						       &created);
		else
			reason = fwd_core__from_upstream(&c->core, lw->nh, w, p);
		if (reason)
			ferry_pkt_drop(p, reason);
		if (created)
			lw->sessions[created - c->up]++;
	}
}

static void lb_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	struct lb_worker *lw = wstate;

	/* An idle worker still follows the kernel and times held frames out. */
	fwd_core__nh_poll(lw->nh, ferry_worker__now_ns(w));
}

static void lb_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	struct lb_worker *lw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS && i < LB_MAX_UPSTREAMS; i++)
		counters[i] += lw->sessions[i];
}

const struct ferry_service_ops svc_lb_ops = {
	.name = "lb",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = lb_configure,
	.start = lb_start,
	.worker_init = lb_worker_init,
	.process = lb_process,
	.tick = lb_tick,
	.stats = lb_stats,
	.worker_destroy = lb_worker_destroy,
	.destroy = lb_destroy,
	.counter_names = { "upstream0_sessions", "upstream1_sessions", "upstream2_sessions",
			   "upstream3_sessions" },
};
