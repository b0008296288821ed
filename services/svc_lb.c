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
 * upstreams behind different interfaces work.
 *
 * Health and drain (lb_health.h, whose checker thread start() starts and
 * destroy() joins): a new session whose table entry names an
 * upstream that is down takes the next entry, in table order, whose
 * upstream is up.  Every entry of an up upstream is left as it is, so its
 * flows keep their upstream exactly; only the down one's flows move, spread
 * over the others about as their shares are.  An upstream of weight 0
 * (drained) has no entry at all: the table is built over the weighted ones,
 * which is the table of the same set without it, so it, too, moves only its
 * own flows.  Sessions keep the upstream they have, down or drained.  When
 * every weighted upstream is down, new sessions go by the table as if all
 * were up (failing open: nothing better is known).
 *
 * Beyond the service ABI (services/ferry_service.h) it uses ferryd's
 * internals through services/service.h and services/fwd_core.h (the NAT
 * table, next hops, the reply rule), as forward does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "fwd_core.h"
#include "icmp.h"
#include "lb_health.h"
#include "log.h"
#include "maglev.h"
#include "nexthop.h"
#include "service.h"
#include "svc_lb.h"

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
	uint32_t weighted; /* bit i: weight[i] > 0 (upstream i has table entries) */
	struct lb_hc_conf hc;
	const struct cfg_node *health_node; /* configure() only, for messages */
	struct lb_checker *chk; /* the health state the workers read, and its thread */
};

struct lb_worker {
	struct fwd_nh *nh;
	struct lb_wcount wc; /* new sessions and passive failures per upstream */
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

	/* 0 drains: sessions it has stay, it gets no new ones. */
	return cfg_get_u32(val, 0, MAGLEV_MAX_WEIGHT, &ua->c->weight[ua->i], errs);
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

static const struct cfg_word lb_hc_types[] = {
	{ "tcp", LB_HC_TCP },
	{ "udp", LB_HC_UDP },
	{ "exec", LB_HC_EXEC },
	{ NULL, 0 },
};

#define LB_HC_STR(key, field)                                                       \
	{ .name = key, .type = CFG_ARG_STRING, .offset = offsetof(struct lb_hc_conf, field), \
	  .seen = CFG_SEEN(struct lb_hc_conf, field##_seen),                           \
	  .size = sizeof(((struct lb_hc_conf *)0)->field) }

static const struct cfg_arg lb_hc_arg_list[] = {
	{ .name = "type",
	  .type = CFG_ARG_WORD,
	  .offset = offsetof(struct lb_hc_conf, type),
	  .required = true,
	  .words = lb_hc_types },
	{ .name = "interval_ms",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct lb_hc_conf, interval_ms),
	  .min = 50,
	  .max = 3600000,
	  .def = 2000 },
	{ .name = "timeout_ms",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct lb_hc_conf, timeout_ms),
	  .min = 10,
	  .max = 3600000,
	  .def = 1000 },
	{ .name = "rise",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct lb_hc_conf, rise),
	  .min = 1,
	  .max = 100,
	  .def = 2 },
	{ .name = "fall",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct lb_hc_conf, fall),
	  .min = 1,
	  .max = 100,
	  .def = 3 },
	{ .name = "port",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct lb_hc_conf, port),
	  .seen = CFG_SEEN(struct lb_hc_conf, port_seen),
	  .min = 1,
	  .max = 65535 },
	LB_HC_STR("send", send),
	LB_HC_STR("expect", expect),
	LB_HC_STR("command", command),
};

static const struct cfg_args lb_hc_args = {
	.prefix = "lb: health",
	.in = "health",
	.expect = " with 'type'",
	.args = lb_hc_arg_list,
	.nr = sizeof(lb_hc_arg_list) / sizeof(lb_hc_arg_list[0]),
};

static int lb_parse_health(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct lb_conf *c = obj;
	struct lb_hc_conf *hc = &c->hc;

	c->health_node = val;
	if (cfg_args_parse(&lb_hc_args, val, hc, errs))
		return -EINVAL;
	/* Each type's own keys only: a key another type would read is a mistake here. */
	if (hc->timeout_ms > hc->interval_ms) {
		cfg_node_error(errs, val, "lb: health: timeout_ms %u is longer than interval_ms %u",
			       hc->timeout_ms, hc->interval_ms);
		return -EINVAL;
	}
	if (hc->type == LB_HC_EXEC && !hc->command[0]) {
		cfg_node_error(errs, val, "lb: health: type exec needs a 'command'");
		return -EINVAL;
	}
	if (hc->type != LB_HC_EXEC && hc->command_seen) {
		cfg_node_error(errs, val, "lb: health: 'command' is for type exec only");
		return -EINVAL;
	}
	if (hc->type != LB_HC_UDP && (hc->send_seen || hc->expect_seen)) {
		cfg_node_error(errs, val, "lb: health: 'send' and 'expect' are for type udp only");
		return -EINVAL;
	}
	if (hc->type == LB_HC_EXEC && hc->port_seen) {
		cfg_node_error(errs, val, "lb: health: 'port' is not for type exec");
		return -EINVAL;
	}
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
	{ .name = "health", .type = CFG_ARG_NODE, .parse = lb_parse_health },
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
	for (uint32_t i = 0; i < c->nr; i++)
		if (c->weight[i])
			c->weighted |= 1u << i;
	if (!c->weighted) {
		cfg_node_error(errs, args, "lb: every upstream has weight 0: none could take a "
					   "session");
		goto err_free;
	}
	if (c->core.source.family && c->core.source.family != c->core.family) {
		cfg_node_error(errs, args, "lb: source and upstreams are of different families");
		goto err_free;
	}
	c->health_node = NULL; /* the document may go: reload keeps conf */
	c->chk = calloc(1, sizeof(*c->chk));
	if (!c->chk) {
		err = -ENOMEM;
		goto err_free;
	}
	lb_checker__init(c->chk);
	*confp = c;
	return 0;

err_free:
	free(c);
	return err;
}

static int lb_build_table(struct lb_conf *c)
{
	struct maglev_backend b[LB_MAX_UPSTREAMS];
	uint8_t idx[LB_MAX_UPSTREAMS];
	uint32_t n = 0;
	int err;

	/* Drained upstreams have no entries: the table of the weighted ones alone. */
	for (uint32_t i = 0; i < c->nr; i++) {
		if (!c->weight[i])
			continue;
		b[n].key = lb_key(c->core.family, &c->up[i]);
		b[n].weight = c->weight[i];
		idx[n++] = (uint8_t)i;
	}
	c->table = malloc(c->table_size);
	if (!c->table)
		return -ENOMEM;
	err = maglev_build(c->table, c->table_size, b, n);
	if (err)
		return err;
	for (uint32_t s = 0; s < c->table_size; s++)
		c->table[s] = idx[c->table[s]];
	return 0;
}

static int lb_start_checker(struct lb_conf *c, const struct ferry_config *cfg)
{
	struct lb_checker *k = c->chk;

	k->hc = c->hc;
	snprintf(k->flow_name, sizeof(k->flow_name), "%s", c->core.flow_name);
	k->family = c->core.family;
	k->nr = c->nr;
	for (uint32_t i = 0; i < c->nr; i++) {
		k->addr[i] = c->up[i].addr;
		k->port[i] = c->up[i].port;
	}
	k->nat_ports = cfg->nat.ports;
	return lb_checker__start(k);
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
	err = lb_start_checker(c, ferry_daemon__config(fc->daemon));
	if (err) {
		pr_err("flow '%s': lb: cannot start the health checker: %s", c->core.flow_name,
		       strerror(-err));
		return err;
	}

	for (uint32_t s = 0; s < c->table_size; s++)
		share[c->table[s]]++;
	pr_info("flow '%s': lb over %u upstreams, table of %u entries", c->core.flow_name, c->nr,
		c->table_size);
	for (uint32_t i = 0; i < c->nr; i++) {
		inet_ntop(c->core.family, c->up[i].addr.b, addr, sizeof(addr));
		pr_info("flow '%s': lb upstream %u: %s port %u, weight %u%s, %u entries, via "
			"ifindex %d",
			c->core.flow_name, i, addr, c->up[i].port, c->weight[i],
			c->weight[i] ? "" : " (drained)", c->weighted >> i & 1 ? share[i] : 0,
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
	lb_checker__add_worker(c->chk, &lw->wc);
	*wstate = lw;
	return 0;
}

static void lb_worker_destroy(void *conf, void *wstate)
{
	struct lb_conf *c = conf;
	struct lb_worker *lw = wstate;

	lb_checker__del_worker(c->chk, &lw->wc);
	fwd_core__nh_put(lw->nh);
	free(lw);
}

static void lb_destroy(void *conf)
{
	struct lb_conf *c = conf;

	lb_checker__stop(c->chk);
	free(c->chk);
	free(c->table);
	free(c);
}

/* Called once per new session, never for packets of an existing one. */
static const struct fwd_target *lb_pick(const void *ctx, const struct nat_tuple *client)
{
	const struct lb_conf *c = ctx;
	uint32_t up = atomic_load_explicit(&c->chk->up_mask, memory_order_acquire);
	uint32_t usable = up & c->weighted;
	uint32_t slot = maglev_slot(lb_flow_hash(client), c->table_size);

	/* None usable: fail open, by the table (weighted upstreams only). */
	return &c->up[maglev_pick_usable(c->table, c->table_size, slot, usable ?: c->weighted)];
}

/* The upstream at addr:port, or -1. */
static int lb_index(const struct lb_conf *c, const union ferry_addr *addr, uint16_t port)
{
	for (uint32_t i = 0; i < c->nr; i++)
		if (c->up[i].port == port && !memcmp(c->up[i].addr.b, addr->b, 16))
			return (int)i;
	return -1;
}

/*
 * A reply-rule packet that tells an upstream is failing, before forward's
 * code rewrites it: an ICMP destination unreachable about a session to it,
 * or its RST to a SYN (the session has seen nothing but the SYN).  Counted
 * only when the packet then matched its session.  Its index or -1.
 */
static int lb_passive_upstream(const struct lb_conf *c, struct ferry_worker *w,
			       const struct ferry_pkt *p)
{
	const struct nat_session *s;
	struct nat_tuple t;

	if (icmp_is_error(&p->pi)) {
		if (p->pi.icmp_type != (p->pi.family == 4 ? 3 : 1)) /* destination unreachable */
			return -1;
		icmp_quote_reply_tuple(&t, &p->pi);
		return lb_index(c, &t.saddr, t.sport);
	}
	if (p->pi.l4_proto != IPPROTO_TCP || p->pi.payload_off < p->pi.l4_off + 14 ||
	    !(p->data[p->pi.l4_off + 13] & 0x04))
		return -1;
	nat_tuple_from_pkt(&t, &p->pi);
	s = nat_table__lookup_reply_hint(ferry_worker__nat(w), p->reply_session, &t);
	if (!s || s->flow_id != p->flow_id || s->tcp.state != TCP_ST_SYN_SENT)
		return -1;
	return lb_index(c, &s->upstream.daddr, s->upstream.dport);
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
		int reason, failing = -1;

		if (p->dir != FERRY_DIR_REPLY) {
			reason = fwd_core__from_client(&c->core, lw->nh, w, p, lb_pick, c,
						       &created);
		} else {
			if (p->pi.l4_proto != IPPROTO_UDP)
				failing = lb_passive_upstream(c, w, p);
			reason = fwd_core__from_upstream(&c->core, lw->nh, w, p);
		}
		if (reason)
			ferry_pkt_drop(p, reason);
		else if (failing >= 0)
			lb_count(&lw->wc.passive[failing]);
		if (created)
			lb_count(&lw->wc.sessions[created - c->up]);
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
		counters[i] += atomic_load_explicit(&lw->wc.sessions[i], memory_order_relaxed);
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

_Static_assert(LB_MAX_UPSTREAMS == FERRY_LB_MAX_UPSTREAMS, "ferry_lb_upstreams has 16 per flow");

bool svc_lb__is_lb(const struct ferry_service_ops *ops)
{
	return ops == &svc_lb_ops;
}

uint32_t svc_lb__upstreams(void *conf, struct ferry_lb_upstream_stats out[FERRY_LB_MAX_UPSTREAMS])
{
	struct lb_conf *c = conf;
	struct lb_checker *k = c->chk;
	uint32_t up = atomic_load_explicit(&k->up_mask, memory_order_acquire);
	char addr[INET6_ADDRSTRLEN];

	for (uint32_t i = 0; i < c->nr; i++) {
		struct ferry_lb_upstream_stats *o = &out[i];
		struct lb_up_stats *st = &k->st[i];
		uint64_t sessions;

		memset(o, 0, sizeof(*o));
		inet_ntop(c->core.family, c->up[i].addr.b, addr, sizeof(addr));
		snprintf(o->address, sizeof(o->address), c->core.family == AF_INET ? "%s:%u" : "[%s]:%u",
			 addr, c->up[i].port);
		o->configured = 1;
		o->up = up >> i & 1;
		o->weight = c->weight[i];
		o->checked = c->hc.type != LB_HC_NONE;
		lb_checker__sums(k, i, &sessions, NULL);
		o->sessions = sessions;
		o->checks_ok = atomic_load(&st->checks_ok);
		o->checks_failed = atomic_load(&st->checks_failed);
		o->passive_failures = atomic_load(&st->passive_failures);
		o->went_down = atomic_load(&st->went_down);
		o->went_up = atomic_load(&st->went_up);
	}
	return c->nr;
}

struct lb_checker *svc_lb__checker(void *conf)
{
	return ((struct lb_conf *)conf)->chk;
}

bool svc_lb__has_upstream(void *conf, const union ferry_addr *addr, uint16_t port)
{
	return lb_index(conf, addr, port) >= 0;
}

void svc_lb__adopt(void *nconf, void *oconf)
{
	struct lb_conf *n = nconf, *o = oconf;
	uint32_t oup = atomic_load_explicit(&o->chk->up_mask, memory_order_acquire);
	uint32_t nup = atomic_load_explicit(&n->chk->up_mask, memory_order_relaxed);

	for (uint32_t i = 0; i < n->nr; i++) {
		int j = lb_index(o, &n->up[i].addr, n->up[i].port);
		struct lb_up_stats *ns = &n->chk->st[i], *os;

		if (j < 0)
			continue;
		os = &o->chk->st[j];
		n->chk->hs[i].up = oup >> j & 1;
		if (!(oup >> j & 1))
			nup &= ~(1u << i);
		atomic_store(&ns->checks_ok, atomic_load(&os->checks_ok));
		atomic_store(&ns->checks_failed, atomic_load(&os->checks_failed));
		atomic_store(&ns->passive_failures, atomic_load(&os->passive_failures));
		atomic_store(&ns->went_down, atomic_load(&os->went_down));
		atomic_store(&ns->went_up, atomic_load(&os->went_up));
	}
	atomic_store_explicit(&n->chk->up_mask, nup, memory_order_release);
}

void svc_lb__carry_sessions(void *nconf, void *oconf)
{
	struct lb_conf *n = nconf, *o = oconf;

	for (uint32_t i = 0; i < n->nr; i++) {
		int j = lb_index(o, &n->up[i].addr, n->up[i].port);
		uint64_t sessions;

		if (j < 0)
			continue;
		lb_checker__sums(o->chk, (uint32_t)j, &sessions, NULL);
		pthread_mutex_lock(&n->chk->lock);
		n->chk->gone_sessions[i] += sessions;
		pthread_mutex_unlock(&n->chk->lock);
	}
}
