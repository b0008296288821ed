// SPDX-License-Identifier: BSD-2-Clause
/*
 * Reload: SIGHUP applies a changed config without a restart, all or nothing.
 *
 * 1. Validate, on the main thread, with the workers running untouched: load
 *    the file, configure every service of every flow (so their argument
 *    errors are reported as at start-up), refuse any change outside `flows`
 *    and `log_level` ("changing X needs a restart"), build the client rules,
 *    start() the services of added and changed flows.  All of that goes into
 *    a staging daemon (`nd`), never into the running one: any error logs
 *    every message and frees the staging copy, and nothing has changed.
 *
 * 2. Diff (reload__plan): flows are identified by name.  A flow is unchanged
 *    when config__flow_equal() finds the parsed definitions the same (so
 *    equivalent spellings of a match or an argument change nothing): it keeps its flow id, its chain (ops and conf), every
 *    worker's service state, its sessions and its counters.  The freshly
 *    configured copy of an unchanged flow served only validation and is
 *    destroyed.  A changed flow is a removal plus an addition: its sessions
 *    are removed (not left to expire: a session names its upstream and the
 *    NAT port of the old service, and the client tuple would find it again
 *    and keep sending to the old upstream), and it gets a new flow id.  New
 *    ids are ones neither config uses, so a flow's counters never carry over
 *    to another; only when none is left is a freed id reused.
 *    Except an updated flow: one whose only change is the arguments of
 *    services that take new ones in place (lb: weights, upstreams added or
 *    removed, health settings; updatable()).  It gets a new chain, started
 *    like a changed flow's, but keeps its flow id, its counters and its
 *    sessions (each names its upstream by address, which is all the new
 *    chain needs), except the sessions to an upstream the new arguments no
 *    longer list: their replies lose their rule, so they are removed.
 *
 * 3. XDP rule table, without a moment at which a packet of an unchanged flow
 *    finds no rule (ferry_rules is scanned until the first disabled slot, and
 *    a slot rewritten under the program may be read torn, see
 *    steer__set_rule()):
 *      a. the new table is written after the old one, last slot first, so it
 *         becomes visible in one step when its first slot (the old
 *         terminator) is enabled; every packet still meets the intact old
 *         table first;
 *      b. once the workers use the new table (step 4), it is copied over
 *         slots 0.. in ascending order.  At every step each unchanged rule is
 *         in an untouched slot: either its new copy below the write position
 *         or its old one above it, and the appended copy further down.  A slot
 *         being rewritten holds enabled rules before and after, so it never
 *         ends the scan early;
 *      c. the first slot past the new table is disabled, which cuts off the
 *         rest at once, then the rest is cleared.
 *    A packet the XDP program steers by a rule of another flow during the
 *    change is still classified right: the worker classifies again with its
 *    own copy of the table.  The price is that old and new table must fit
 *    FERRY_MAX_RULES together; a reload that does not fit is refused.
 *    Packets of removed flows may still be steered until (c) and are then
 *    freed as unclassified by the workers; added flows are steered from (a).
 *
 * 4. Swap: every worker parks at the top of its loop (the quiescent point: no
 *    packet in a chain, no TX pending; an idle worker is woken through
 *    park_fd at once, so parking takes microseconds).  With all of them
 *    parked the main thread runs worker_init() of the new services for each
 *    worker, exactly as at start-up (services may assume these hooks run on
 *    the main thread with the worker not running, fwd_core's per-worker
 *    next-hop cache does), then worker_destroy() of the removed services
 *    (held frames go back through the worker's own rings, as at stop),
 *    removes the sessions of removed and changed flows, zeroes their
 *    counters, and swaps the chains, the rules and the config.  Then the
 *    workers resume with the new state; none can see a half-updated one.
 *    Packets arriving meanwhile wait in the RX rings.  A worker_init()
 *    failure undoes the new states and refuses the reload with nothing
 *    changed.  destroy() of removed services runs after the workers resumed,
 *    since no worker can reach them any more.
 *
 * Services' conf of an unchanged flow outlives the YAML document it was
 * configured from: configure() must copy what it needs (services/ferry_service.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include "daemon.h"
#include "log.h"
#include "nat.h"
#include "nexthop.h"
#include "offload.h"
#include "queues.h"
#include "reload.h"
#include "steer.h"
#include "svc_lb.h"
#include "svc_loader.h"
#include "worker.h"

#define PARK_TIMEOUT_US (2 * 1000 * 1000)

/* ---- the diff ---- */

static bool ifaces_equal(const struct ferry_config *a, const struct ferry_config *b)
{
	if (a->nr_ifaces != b->nr_ifaces)
		return false;
	for (int i = 0; i < a->nr_ifaces; i++) {
		const struct cfg_iface *x = &a->ifaces[i], *y = &b->ifaces[i];

		if (strcmp(x->name, y->name) || x->xdp_mode != y->xdp_mode ||
		    x->poll_mode != y->poll_mode || x->busy_poll_usecs != y->busy_poll_usecs)
			return false;
	}
	return true;
}

static bool nat_equal(const struct cfg_nat *a, const struct cfg_nat *b)
{
	return a->ports.lo == b->ports.lo && a->ports.hi == b->ports.hi &&
	       a->max_sessions == b->max_sessions && a->udp_timeout_s == b->udp_timeout_s &&
	       a->tcp_syn_timeout_s == b->tcp_syn_timeout_s &&
	       a->tcp_established_timeout_s == b->tcp_established_timeout_s &&
	       a->tcp_closing_timeout_s == b->tcp_closing_timeout_s &&
	       a->max_sessions_per_source == b->max_sessions_per_source;
}

static bool umem_equal(const struct cfg_umem *a, const struct cfg_umem *b)
{
	return a->frames == b->frames && a->frame_size == b->frame_size &&
	       a->ring_size == b->ring_size && a->batch == b->batch;
}

/* What the workers, sockets, maps and loaded objects were built from. */
static int check_static(const struct ferry_config *old, const struct ferry_config *new,
			struct cfg_errors *errs)
{
	const struct cfg_mark none = {};
	int before = errs->count;

	if (!ifaces_equal(old, new))
		cfg_mark_error(errs, none, "changing interfaces needs a restart");
	if (old->queues != new->queues)
		cfg_mark_error(errs, none, "changing queues needs a restart");
	if (old->nr_cpus != new->nr_cpus ||
	    memcmp(old->cpus, new->cpus, (size_t)old->nr_cpus * sizeof(old->cpus[0])))
		cfg_mark_error(errs, none, "changing cpus needs a restart");
	if (old->worker_priority != new->worker_priority)
		cfg_mark_error(errs, none, "changing worker_priority needs a restart");
	if (old->coalesce_usecs != new->coalesce_usecs)
		cfg_mark_error(errs, none, "changing coalesce_usecs needs a restart");
	if (!umem_equal(&old->umem, &new->umem))
		cfg_mark_error(errs, none, "changing umem needs a restart");
	if (!nat_equal(&old->nat, &new->nat))
		cfg_mark_error(errs, none, "changing nat needs a restart");
	if (strcmp(old->pin_path, new->pin_path))
		cfg_mark_error(errs, none, "changing pin_path needs a restart");
	if (strcmp(old->service_dir, new->service_dir))
		cfg_mark_error(errs, none, "changing service_dir needs a restart");
	if (strcmp(old->control_socket, new->control_socket))
		cfg_mark_error(errs, none, "changing control_socket needs a restart");
	return errs->count != before ? -EINVAL : 0;
}

/* The services whose new arguments an updated flow takes in place (see the top). */
static bool updatable(const struct cfg_flow *f, uint32_t services)
{
	for (int i = 0; i < f->nr_services; i++)
		if ((services >> i & 1) && strcmp(f->services[i].name, "lb"))
			return false;
	return true;
}

static int free_id(uint64_t taken)
{
	for (int id = 0; id < CFG_MAX_FLOWS; id++)
		if (!(taken >> id & 1))
			return id;
	return -ENOSPC;
}

int reload__plan(const struct ferry_config *old, const uint32_t old_id[CFG_MAX_FLOWS],
		 const struct ferry_config *new, struct reload_plan *plan, struct cfg_errors *errs)
{
	uint64_t old_mask = 0, taken;
	int err;

	memset(plan, 0, sizeof(*plan));
	err = check_static(old, new, errs);
	if (err)
		return err;
	for (int i = 0; i < old->nr_flows; i++)
		old_mask |= 1ull << old_id[i];
	plan->nr_flows = new->nr_flows;
	for (int i = 0; i < new->nr_flows; i++) {
		for (int j = 0; j < old->nr_flows; j++) {
			uint32_t differ;

			if (strcmp(new->flows[i].name, old->flows[j].name))
				continue;
			if (config__flow_equal(&old->flows[j], &new->flows[i])) {
				plan->unchanged[i] = true;
				plan->new_id[i] = old_id[j];
				plan->keep_mask |= 1ull << old_id[j];
			} else if (config__flow_args_differ(&old->flows[j], &new->flows[i],
							    &differ) &&
				   updatable(&new->flows[i], differ)) {
				plan->updated[i] = true;
				plan->new_id[i] = old_id[j];
				plan->update_mask |= 1ull << old_id[j];
				plan->updated_count++;
			} else {
				plan->changed++;
			}
			break;
		}
	}
	plan->drop_mask = old_mask & ~plan->keep_mask & ~plan->update_mask;
	/* Prefer ids neither generation uses: counters never pass to another flow. */
	taken = old_mask | plan->keep_mask;
	for (int i = 0; i < new->nr_flows; i++) {
		int id;

		if (plan->unchanged[i] || plan->updated[i])
			continue;
		id = free_id(taken);
		if (id < 0)
			id = free_id(plan->keep_mask | plan->update_mask | plan->add_mask);
		if (id < 0)
			return -ENOSPC; /* more than CFG_MAX_FLOWS flows: the config refuses that */
		plan->new_id[i] = (uint32_t)id;
		plan->add_mask |= 1ull << id;
		taken |= 1ull << id;
	}
	for (int i = 0; i < new->nr_flows; i++) {
		if (plan->new_id[i] + 1 > plan->nr_ids)
			plan->nr_ids = plan->new_id[i] + 1;
		plan->unchanged_count += plan->unchanged[i];
	}
	plan->added = new->nr_flows - plan->unchanged_count - plan->changed - plan->updated_count;
	plan->removed = old->nr_flows - plan->unchanged_count - plan->changed - plan->updated_count;
	return 0;
}

/* ---- the report (ferryctl reload) ---- */

void reload_report__printf(struct reload_report *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!r)
		return;
	for (;;) {
		size_t room = r->cap - r->len;

		va_start(ap, fmt);
		n = vsnprintf(r->text ? r->text + r->len : NULL, r->text ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (r->text && (size_t)n < room) {
			r->len += (size_t)n;
			return;
		}
		{
			size_t cap = (r->cap ? r->cap * 2 : 1024) + (size_t)n;
			char *t = realloc(r->text, cap);

			/* A short report beats none: the log has every line anyway. */
			if (!t) {
				r->truncated = true;
				return;
			}
			r->text = t;
			r->cap = cap;
			if (!r->len)
				r->text[0] = '\0';
		}
	}
}

void reload_report__free(struct reload_report *r)
{
	free(r->text);
	r->text = NULL;
	r->len = r->cap = 0;
}

void reload__describe(const struct ferry_config *old, const struct ferry_config *new,
		      const struct reload_plan *plan, struct reload_report *r)
{
	char buf[96];

	for (int i = 0; i < new->nr_flows; i++) {
		const struct cfg_flow *was = config__find_flow(old, new->flows[i].name);

		if (!was)
			reload_report__printf(r, "added %s\n", new->flows[i].name);
		else if (plan->updated[i])
			reload_report__printf(r, "updated %s in place: %s; its sessions stay\n",
					      new->flows[i].name,
					      config__flow_change(was, &new->flows[i], buf,
								  sizeof(buf)) ?: "its services");
		else if (!plan->unchanged[i])
			reload_report__printf(r, "changed %s: %s\n", new->flows[i].name,
					      config__flow_change(was, &new->flows[i], buf,
								  sizeof(buf)) ?: "its services");
	}
	for (int j = 0; j < old->nr_flows; j++)
		if (!config__find_flow(new, old->flows[j].name))
			reload_report__printf(r, "removed %s\n", old->flows[j].name);
	for (int i = 0; i < new->nr_flows; i++)
		if (plan->unchanged[i])
			reload_report__printf(r, "unchanged %s\n", new->flows[i].name);
}

/* Logged, and the report's reason. */
#define refuse(rep, fmt, ...)                                                  \
	do {                                                                   \
		pr_err("reload: " fmt, ##__VA_ARGS__);                         \
		reload_report__printf(rep, "refused: " fmt "\n", ##__VA_ARGS__); \
	} while (0)

/* ---- staging ---- */

/*
 * Every service of every new flow, as at start-up, reporting all errors.
 * This comes before the diff: configuring reduces each service's arguments
 * to the values its table read, and those are what reload__plan() compares
 * (the running flows were configured the same way).  The chains are staged
 * at their flows' positions until place_chains() moves them to their ids.
 */
static int configure_all(struct ferry_daemon *d, struct ferry_daemon *nd,
			 struct cfg_errors *errs)
{
	/* The running daemon's loader: an object stays loaded until stop. */
	for (int f = 0; f < nd->cfg.nr_flows; f++)
		ferry_daemon__configure_chain(d, nd, &nd->cfg.flows[f], (uint32_t)f, errs);
	return errs->count ? -EINVAL : 0;
}

static int place_chains(struct ferry_daemon *nd, const struct reload_plan *plan)
{
	struct flow_chain *staged = malloc(sizeof(nd->flows));

	if (!staged)
		return -ENOMEM;
	memcpy(staged, nd->flows, sizeof(nd->flows));
	memset(nd->flows, 0, sizeof(nd->flows));
	for (int f = 0; f < nd->cfg.nr_flows; f++) {
		struct flow_chain *ch = &nd->flows[plan->new_id[f]];

		*ch = staged[f];
		ch->fc.flow_id = plan->new_id[f];
	}
	free(staged);
	return 0;
}

/*
 * The staged rule table: the unchanged flows' rules as they run (their
 * services are not started again), the client rules and start()ed reply
 * rules of the others; reply rules first, each group in config order, as at
 * start-up.
 */
static int build_rules(struct ferry_daemon *d, struct ferry_daemon *nd,
		       const struct reload_plan *plan, struct reload_report *rep)
{
	struct ferry_rule sorted[FERRY_MAX_RULES];
	uint32_t n = 0;
	int err;

	for (int f = 0; f < nd->cfg.nr_flows; f++) {
		struct flow_chain *ch = &nd->flows[plan->new_id[f]];

		if (plan->unchanged[f]) {
			for (uint32_t i = 0; i < d->nr_rules; i++) {
				if (d->rules[i].flow_id != plan->new_id[f])
					continue;
				if (nd->nr_rules >= FERRY_MAX_RULES)
					return -ENOSPC;
				nd->rules[nd->nr_rules++] = d->rules[i];
			}
			continue;
		}
		/* An updated lb knows at once which of its upstreams are down. */
		for (int s = 0; plan->updated[f] && s < ch->nr; s++)
			if (svc_lb__is_lb(ch->ops[s]) && d->flows[plan->new_id[f]].nr > s &&
			    d->flows[plan->new_id[f]].ops[s] == ch->ops[s])
				svc_lb__adopt(ch->conf[s], d->flows[plan->new_id[f]].conf[s]);
		err = ferry_daemon__add_client_rule(nd, &nd->cfg.flows[f].match, plan->new_id[f]);
		if (err) {
			refuse(rep, "flow '%s': cannot add its rule: %s", ch->fc.flow->name,
			       strerror(-err));
			return err;
		}
		for (int s = 0; s < ch->nr; s++) {
			if (!ch->ops[s]->start)
				continue;
			err = ch->ops[s]->start(&ch->fc, ch->conf[s]);
			if (err) {
				refuse(rep, "flow '%s': service '%s' failed to start: %s",
				       ch->fc.flow->name, ch->ops[s]->name, strerror(-err));
				return err;
			}
		}
	}
	for (int pass = 0; pass < 2; pass++)
		for (int f = 0; f < nd->cfg.nr_flows; f++)
			for (uint32_t i = 0; i < nd->nr_rules; i++)
				if (nd->rules[i].flow_id == plan->new_id[f] &&
				    (nd->rules[i].dir == FERRY_DIR_REPLY) == (pass == 0))
					sorted[n++] = nd->rules[i];
	memcpy(nd->rules, sorted, n * sizeof(sorted[0]));
	nd->nr_rules = n;
	return 0;
}

/* ---- parking the workers ---- */

static void unpark(struct ferry_daemon *d)
{
	uint64_t v;

	/* Reset the doorbell first, so no worker wakes for nothing afterwards. */
	if (d->park_fd >= 0 && read(d->park_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("reload: cannot reset the workers' doorbell: %s", strerror(errno));
	atomic_store_explicit(&d->park, 0, memory_order_release);
	for (uint32_t i = 0; i < d->nr_workers; i++)
		while (atomic_load_explicit(&d->workers[i]->parked, memory_order_acquire))
			usleep(10);
}

static int park_all(struct ferry_daemon *d)
{
	uint64_t one = 1;

	atomic_store_explicit(&d->park, 1, memory_order_release);
	if (d->park_fd >= 0 && write(d->park_fd, &one, sizeof(one)) < 0)
		pr_warn("reload: cannot wake the workers: %s", strerror(errno));
	for (uint32_t i = 0; i < d->nr_workers; i++) {
		struct ferry_worker *w = d->workers[i];

		for (int waited = 0;
		     w->running && !atomic_load_explicit(&w->parked, memory_order_acquire);
		     waited += 20) {
			if (waited >= PARK_TIMEOUT_US) {
				pr_err("reload: worker %u did not reach its quiescent point in "
				       "%d ms",
				       w->id, PARK_TIMEOUT_US / 1000);
				unpark(d);
				return -ETIMEDOUT;
			}
			usleep(20);
		}
	}
	return 0;
}

/* ---- the rule table (step 3) ---- */

static int write_appended(struct ferry_daemon *d, const struct ferry_daemon *nd)
{
	int err;

	/* Last slot first: the table shows up whole when its first slot is enabled. */
	for (uint32_t i = nd->nr_rules; i-- > 0;) {
		err = steer__set_rule(d->steer, d->nr_rules + i, &nd->rules[i]);
		if (err) {
			steer__clear_rules(d->steer, d->nr_rules);
			return err;
		}
	}
	return 0;
}

static int write_final(struct ferry_daemon *d)
{
	int err;

	for (uint32_t i = 0; i < d->nr_rules; i++) {
		err = steer__set_rule(d->steer, i, &d->rules[i]);
		if (err)
			return err;
	}
	return steer__clear_rules(d->steer, d->nr_rules);
}

/*
 * A reply rule takes replies only on the interface of the route to its
 * upstream (services/fwd_core.c).  When a route moved, every reply rule's
 * upstream is looked up again; a rule whose upstream is now reached through
 * another ferry interface is rewritten, in the BPF map and in the workers'
 * copy, with the workers parked so that they never read it half-written.
 * A route through no ferry interface leaves the rule as it was: ferry
 * cannot forward there anyway.  Main thread only.
 */
int reload__follow_routes(struct ferry_daemon *d, struct nh_resolver *nh)
{
	uint32_t ifindex[FERRY_MAX_RULES];
	bool moved = false;
	int err;

	for (uint32_t i = 0; i < d->nr_rules; i++) {
		const struct ferry_rule *r = &d->rules[i];
		union ferry_addr up;
		struct nh_route rt;

		ifindex[i] = r->ifindex;
		if (r->dir != FERRY_DIR_REPLY || !r->ifindex)
			continue;
		memcpy(up.w, r->src, sizeof(up.w));
		if (nh_resolver__route(nh, r->family == 4 ? AF_INET : AF_INET6, &up, &rt))
			continue;
		if (rt.ifindex <= 0 || (uint32_t)rt.ifindex == r->ifindex ||
		    ferry_daemon__port_of_ifindex(d, rt.ifindex) < 0)
			continue;
		ifindex[i] = (uint32_t)rt.ifindex;
		moved = true;
	}
	if (!moved)
		return 0;
	err = park_all(d);
	if (err)
		return err;
	for (uint32_t i = 0; i < d->nr_rules && !err; i++) {
		struct ferry_rule *r = &d->rules[i];
		char addr[INET6_ADDRSTRLEN] = "?", from[IF_NAMESIZE] = "?", to[IF_NAMESIZE] = "?";

		if (ifindex[i] == r->ifindex)
			continue;
		inet_ntop(r->family == 4 ? AF_INET : AF_INET6, r->src, addr, sizeof(addr));
		if_indextoname(r->ifindex, from);
		if_indextoname(ifindex[i], to);
		pr_info("flow '%s': replies from %s port %u now arrive on %s, not %s",
			d->flows[r->flow_id].fc.flow ? d->flows[r->flow_id].fc.flow->name : "?",
			addr, r->sport_lo, to, from);
		r->ifindex = ifindex[i];
		err = steer__set_rule(d->steer, i, r);
	}
	unpark(d);
	return err;
}

/* ---- swap (step 4) ---- */

static void free_states(struct ferry_daemon *nd, uint32_t nr_workers, void ***st)
{
	for (uint32_t i = 0; i < nr_workers; i++) {
		for (int id = 0; id < CFG_MAX_FLOWS; id++) {
			const struct flow_chain *ch = &nd->flows[id];

			for (int s = 0; s < ch->nr; s++) {
				void **p = &st[i][id * CFG_MAX_SERVICES + s];

				if (*p && ch->ops[s]->worker_destroy)
					ch->ops[s]->worker_destroy(ch->conf[s], *p);
				*p = NULL;
			}
		}
	}
}

/* worker_init() of the added flows' services, into st; workers parked. */
static int init_states(struct ferry_daemon *d, struct ferry_daemon *nd,
		       const struct reload_plan *plan, void ***st, struct reload_report *rep)
{
	for (uint32_t i = 0; i < d->nr_workers; i++) {
		struct ferry_worker *w = d->workers[i];

		for (int id = 0; id < CFG_MAX_FLOWS; id++) {
			const struct flow_chain *ch = &nd->flows[id];

			if (!((plan->add_mask | plan->update_mask) >> id & 1))
				continue;
			for (int s = 0; s < ch->nr; s++) {
				int err;

				if (!ch->ops[s]->worker_init)
					continue;
				err = ch->ops[s]->worker_init(ch->conf[s], w,
							      &st[i][id * CFG_MAX_SERVICES + s]);
				if (err) {
					refuse(rep,
					       "worker %u: flow '%s': service '%s' failed "
					       "to start: %s",
					       w->id, ch->fc.flow->name, ch->ops[s]->name,
					       strerror(-err));
					free_states(nd, d->nr_workers, st);
					return err;
				}
			}
		}
	}
	return 0;
}

/* A session of an updated flow to an upstream its new lb does not list. */
static bool upstream_gone(const struct nat_session *s, void *arg)
{
	const struct ferry_daemon *nd = arg;
	const struct flow_chain *ch = &nd->flows[s->flow_id];

	for (int pos = 0; pos < ch->nr; pos++)
		if (svc_lb__is_lb(ch->ops[pos]))
			return !svc_lb__has_upstream(ch->conf[pos], &s->upstream.daddr,
						     s->upstream.dport);
	return false;
}

/* Everything here cannot fail: the workers are parked. */
static uint32_t swap(struct ferry_daemon *d, struct ferry_daemon *nd,
		     const struct reload_plan *plan, void ***st, struct flow_chain *dead)
{
	uint64_t reset = plan->drop_mask | plan->add_mask;
	uint32_t sessions = 0;

	for (uint32_t i = 0; i < d->nr_workers; i++) {
		struct ferry_worker *w = d->workers[i];

		for (int id = 0; id < CFG_MAX_FLOWS; id++) {
			const struct flow_chain *ch = &d->flows[id];

			if ((plan->drop_mask | plan->update_mask) >> id & 1) {
				for (int s = 0; s < ch->nr; s++)
					if (ch->ops[s]->worker_destroy && w->svc_state[id][s])
						ch->ops[s]->worker_destroy(ch->conf[s],
									   w->svc_state[id][s]);
			}
			if (reset >> id & 1) {
				memset(w->svc_state[id], 0, sizeof(w->svc_state[id]));
				memset(&w->flow_stats[id], 0, sizeof(w->flow_stats[id]));
				memset(w->svc_stats[id], 0, sizeof(w->svc_stats[id]));
			}
			if ((plan->add_mask | plan->update_mask) >> id & 1)
				memcpy(w->svc_state[id], &st[i][id * CFG_MAX_SERVICES],
				       sizeof(w->svc_state[id]));
		}
		if (plan->drop_mask)
			sessions += nat_table__remove_flows(w->nat, plan->drop_mask);
		if (plan->update_mask)
			sessions += nat_table__remove_if(w->nat, plan->update_mask, upstream_gone,
							 nd);
	}
	/* An updated lb's per-upstream session counts go on (its old states are gone by now). */
	for (int id = 0; id < CFG_MAX_FLOWS; id++) {
		if (!(plan->update_mask >> id & 1))
			continue;
		for (int s = 0; s < nd->flows[id].nr && s < d->flows[id].nr; s++)
			if (svc_lb__is_lb(nd->flows[id].ops[s]) &&
			    d->flows[id].ops[s] == nd->flows[id].ops[s])
				svc_lb__carry_sessions(nd->flows[id].conf[s], d->flows[id].conf[s]);
	}
	/* Their fast-path entries went with their sessions: count from here. */
	for (int id = 0; id < CFG_MAX_FLOWS; id++)
		if (reset >> id & 1)
			offload__rebase(d, (uint32_t)id);
	for (int id = 0; id < CFG_MAX_FLOWS; id++) {
		if ((plan->drop_mask | plan->update_mask) >> id & 1)
			dead[id] = d->flows[id];
		if (plan->keep_mask >> id & 1)
			nd->flows[id] = d->flows[id];
	}
	memcpy(d->flows, nd->flows, sizeof(d->flows));
	d->nr_flows = (int)plan->nr_ids;
	memcpy(d->rules, nd->rules, nd->nr_rules * sizeof(nd->rules[0]));
	d->nr_rules = nd->nr_rules;
	config__free(&d->cfg);
	config__move(&d->cfg, &nd->cfg);
	for (int id = 0; id < CFG_MAX_FLOWS; id++)
		d->flows[id].fc.flow = NULL;
	for (int f = 0; f < d->cfg.nr_flows; f++) {
		struct flow_chain *ch = &d->flows[plan->new_id[f]];

		ch->fc.flow = &d->cfg.flows[f];
		ch->fc.flow_id = plan->new_id[f];
		ch->fc.daemon = d;
	}
	return sessions;
}

/* ferryctl reads names from the maps: removed flows unmarked, added ones named. */
static void update_info(struct ferry_daemon *d, const struct reload_plan *plan,
			const struct flow_chain *dead)
{
	for (int id = 0; id < CFG_MAX_FLOWS; id++) {
		const struct flow_chain *ch = &d->flows[id];
		int old_nr = dead[id].nr;

		if (!((plan->drop_mask | plan->add_mask) >> id & 1))
			continue;
		if (plan->add_mask >> id & 1) {
			steer__set_flow_info(d->steer, (uint32_t)id, ch->fc.flow->name);
			steer__set_flow_offload(d->steer, (uint32_t)id, ch->offload, ch->offload_why);
			offload__write_ratelimit(d, (uint32_t)id, true);
			for (int pos = 0; pos < ch->nr; pos++)
				steer__set_svc_info(d->steer, (uint32_t)id, (uint32_t)pos,
						    ch->ops[pos]->name,
						    ch->ops[pos]->counter_names);
		} else {
			steer__set_flow_info(d->steer, (uint32_t)id, NULL);
			offload__write_ratelimit(d, (uint32_t)id, false);
		}
		for (int pos = (plan->add_mask >> id & 1) ? ch->nr : 0; pos < old_nr; pos++)
			steer__set_svc_info(d->steer, (uint32_t)id, (uint32_t)pos, NULL, NULL);
	}
}

static void ***alloc_states(uint32_t nr_workers)
{
	void ***st = calloc(nr_workers, sizeof(*st));

	if (!st)
		return NULL;
	for (uint32_t i = 0; i < nr_workers; i++) {
		st[i] = calloc(CFG_MAX_FLOWS * CFG_MAX_SERVICES, sizeof(void *));
		if (!st[i]) {
			while (i--)
				free(st[i]);
			free(st);
			return NULL;
		}
	}
	return st;
}

static void free_state_arrays(void ***st, uint32_t nr_workers)
{
	for (uint32_t i = 0; st && i < nr_workers; i++)
		free(st[i]);
	free(st);
}

static void old_ids(const struct ferry_daemon *d, uint32_t ids[CFG_MAX_FLOWS])
{
	for (int id = 0; id < d->nr_flows; id++) {
		const struct cfg_flow *fl = d->flows[id].fc.flow;

		if (fl)
			ids[fl - d->cfg.flows] = (uint32_t)id;
	}
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

static const char *plural(int n)
{
	return n == 1 ? "" : "s";
}

int reload__run(struct ferry_daemon *d, const char *file, bool keep_log_level,
		struct reload_report *rep)
{
	struct flow_chain *dead = NULL;
	struct cfg_errors errs = { .file = file };
	uint32_t ids[CFG_MAX_FLOWS] = {};
	bool dry_run = rep && rep->dry_run;
	struct reload_plan plan;
	struct ferry_daemon *nd;
	enum ferry_log_level level;
	void ***st = NULL;
	uint64_t parked_at;
	uint32_t sessions;
	int err;

	pr_info("reload: %s %s", dry_run ? "dry run of" : "loading", file);
	nd = calloc(1, sizeof(*nd));
	dead = calloc(CFG_MAX_FLOWS, sizeof(*dead));
	/* The errors' lines, for the report: a malloc'd "" starts the capture. */
	if (rep)
		errs.capture = calloc(1, 1);
	if (!nd || !dead) {
		err = -ENOMEM;
		refuse(rep, "out of memory; the running config stays in force");
		goto out_free;
	}
	nd->steer = d->steer;
	nd->nr_ports = d->nr_ports;
	memcpy(nd->ports, d->ports, sizeof(nd->ports));
	nd->park_fd = -1;
	old_ids(d, ids);
	err = config__load(&nd->cfg, file, &errs);
	/* Only auto is resolved again: a count that differs is refused as a restart below. */
	if (!err && nd->cfg.queues_auto)
		err = queues__resolve(&nd->cfg, queues__channels, NULL, &errs);
	if (!err)
		err = configure_all(d, nd, &errs);
	if (!err)
		err = reload__plan(&d->cfg, ids, &nd->cfg, &plan, &errs);
	if (!err)
		err = place_chains(nd, &plan);
	if (err) {
		if (errs.count)
			refuse(rep, "%s: %d error%s; the running config stays in force", file,
			       errs.count, plural(errs.count));
		else
			refuse(rep, "%s: %s; the running config stays in force", file,
			       strerror(-err));
		if (errs.capture)
			reload_report__printf(rep, "%s", errs.capture);
		goto out_destroy_staged;
	}
	reload__describe(&d->cfg, &nd->cfg, &plan, rep);
	if (dry_run) {
		reload_report__printf(rep,
				      "dry run: %d flow%s would be added, %d changed, %d removed, "
				      "%d unchanged, %d updated in place; nothing applied\n",
				      plan.added, plural(plan.added), plan.changed, plan.removed,
				      plan.unchanged_count, plan.updated_count);
		pr_info("reload: dry run: %d flow%s would be added, %d changed, %d removed, %d "
			"unchanged, %d updated in place",
			plan.added, plural(plan.added), plan.changed, plan.removed,
			plan.unchanged_count, plan.updated_count);
		goto out_destroy_staged;
	}
	/* Unchanged flows keep their running chain: this copy only validated. */
	for (int f = 0; f < nd->cfg.nr_flows; f++)
		if (plan.unchanged[f])
			ferry_daemon__destroy_chain(&nd->flows[plan.new_id[f]]);
	err = build_rules(d, nd, &plan, rep);
	if (err) {
		refuse(rep, "the running config stays in force");
		goto out_destroy_staged;
	}
	if (d->nr_rules + nd->nr_rules > FERRY_MAX_RULES) {
		err = -ENOSPC;
		refuse(rep,
		       "the old and new rule tables need %u slots together, more than %d; "
		       "restart ferryd to apply this config",
		       d->nr_rules + nd->nr_rules, FERRY_MAX_RULES);
		goto out_destroy_staged;
	}
	st = alloc_states(d->nr_workers);
	if (!st) {
		err = -ENOMEM;
		refuse(rep, "out of memory; the running config stays in force");
		goto out_destroy_staged;
	}
	err = write_appended(d, nd);
	if (err) {
		refuse(rep, "cannot write the rule table; the running config stays in force");
		goto out_destroy_staged;
	}
	parked_at = mono_us();
	err = park_all(d);
	if (err) {
		refuse(rep, "the workers did not pause; the running config stays in force");
		goto out_clear_appended;
	}
	err = init_states(d, nd, &plan, st, rep);
	if (err) {
		unpark(d);
		refuse(rep, "the running config stays in force");
		goto out_clear_appended;
	}
	sessions = swap(d, nd, &plan, st, dead);
	unpark(d);
	pr_debug("reload: the workers paused for %llu us",
		 (unsigned long long)(mono_us() - parked_at));

	err = write_final(d);
	if (err) {
		pr_err("reload: cannot rewrite the rule table; new flows may not be steered");
		reload_report__printf(rep, "warning: cannot rewrite the rule table; new flows "
					   "may not be steered\n");
	}
	update_info(d, &plan, dead);
	for (int id = 0; id < CFG_MAX_FLOWS; id++)
		ferry_daemon__destroy_chain(&dead[id]);
	if (!keep_log_level && d->cfg.log_level[0] &&
	    !log__parse_level(d->cfg.log_level, &level))
		log__set_level(level);
	/* The closed sessions include those of upstreams that updated flows dropped. */
	pr_info("reload: %d flow%s added, %d changed, %d removed, %d unchanged, %d updated in "
		"place; %u session%s of changed and removed flows closed",
		plan.added, plural(plan.added), plan.changed, plan.removed, plan.unchanged_count,
		plan.updated_count, sessions, plural((int)sessions));
	reload_report__printf(rep,
			      "applied: %d flow%s added, %d changed, %d removed, %d unchanged, "
			      "%d updated in place; %u session%s of changed and removed flows "
			      "closed\n",
			      plan.added, plural(plan.added), plan.changed, plan.removed,
			      plan.unchanged_count, plan.updated_count, sessions,
			      plural((int)sessions));
	err = 0;
	goto out_free;

out_clear_appended:
	steer__clear_rules(d->steer, d->nr_rules);
out_destroy_staged:
	for (int id = 0; id < CFG_MAX_FLOWS; id++)
		ferry_daemon__destroy_chain(&nd->flows[id]);
	config__free(&nd->cfg);
out_free:
	free_state_arrays(st, d->nr_workers);
	free(errs.capture);
	free(dead);
	free(nd);
	return err;
}

int reload__init(struct ferry_daemon *d)
{
	d->park_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->park_fd < 0) {
		int err = -errno;

		pr_warn("reload: no eventfd (%s): parking an idle worker waits for its poll "
			"timeout",
			strerror(-err));
		return err;
	}
	return 0;
}

void reload__fini(struct ferry_daemon *d)
{
	if (d->park_fd >= 0)
		close(d->park_fd);
	d->park_fd = -1;
}
