// SPDX-License-Identifier: BSD-2-Clause
/*
 * A worker serves one RX queue on every interface: one UMEM, one AF_XDP
 * socket per interface on it, its own session table and netlink resolver.
 * Nothing on its packet path is shared with another worker, so it takes no
 * lock.  Its loop:
 *
 *   completions -> FILL refill -> RX burst per port -> classify each packet
 *   with the same rule match as the XDP program -> run each flow's chain over
 *   that flow's packets as one batch -> TX bursts per egress port
 *
 * Syscalls happen only when a ring asks for a wake-up (need_wakeup), when
 * the worker is idle (poll), and when a new session needs a next hop.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "worker.h"
#include "ferry_match.h"
#include "log.h"
#include "nat.h"
#include "nexthop.h"
#include "steer.h"
#include "umem.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t ferry_worker__now_ns(const struct ferry_worker *w)
{
	return w->now_ns;
}

uint32_t ferry_worker__id(const struct ferry_worker *w)
{
	return w->id;
}

struct nat_table *ferry_worker__nat(struct ferry_worker *w)
{
	return w->nat;
}

struct nh_resolver *ferry_worker__resolver(struct ferry_worker *w)
{
	return w->nh;
}

int ferry_worker__port_of_ifindex(const struct ferry_worker *w, int ifindex)
{
	return ferry_daemon__port_of_ifindex(w->d, ifindex);
}

struct ferry_fwd_stats *ferry_worker__flow_stats(struct ferry_worker *w, uint32_t flow_id)
{
	return &w->flow_stats[flow_id];
}

int worker__cpu_slot(const struct ferry_worker *w)
{
	return (int)w->id;
}

void worker__add_flow_stats(const struct ferry_worker *w, uint32_t flow_id,
			    struct ferry_fwd_stats *sum)
{
	const __u64 *src = (const __u64 *)&w->flow_stats[flow_id];
	__u64 *dst = (__u64 *)sum;

	for (size_t i = 0; i < sizeof(*sum) / sizeof(__u64); i++)
		dst[i] += src[i];
}

static void session_expired(struct nat_session *s, void *ctx)
{
	struct ferry_worker *w = ctx;

	w->flow_stats[s->flow_id].sessions_expired++;
}

/* Which flow, and which direction, a parsed packet belongs to: first matching rule. */
static const struct ferry_rule *classify(const struct ferry_daemon *d, const struct pkt_info *pi,
					 int ifindex)
{
	struct ferry_match_key k = {
		.sport = pi->sport,
		.dport = pi->dport,
		.family = pi->family,
		.l4_proto = pi->l4_proto,
		.ports_valid = 1,
		.ifindex = (__u32)ifindex,
	};

	memcpy(k.saddr, pi->saddr.w, sizeof(k.saddr));
	memcpy(k.daddr, pi->daddr.w, sizeof(k.daddr));
	for (uint32_t i = 0; i < d->nr_rules; i++)
		if (ferry_rule_match(&d->rules[i], &k))
			return &d->rules[i];
	return NULL;
}

static void process_burst(struct ferry_worker *w, struct xsk_port *port, uint32_t n)
{
	struct ferry_daemon *d = w->d;
	uint32_t nr = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct ferry_pkt *p = &w->pkts[nr];
		const struct ferry_rule *rule;

		p->addr = w->rx_frames[i].addr;
		p->len = w->rx_frames[i].len;
		p->data = umem__data(w->umem, p->addr);
		p->in_port = port->index;
		p->verdict = FERRY_VERDICT_NEXT;
		p->drop_reason = 0;
		if (pkt_parse(p->data, p->len, &p->pi) != PKT_OK ||
		    !(rule = classify(d, &p->pi, port->ifindex))) {
			w->unclassified++;
			umem__free(w->umem, p->addr);
			continue;
		}
		p->flow_id = rule->flow_id;
		p->dir = rule->dir;
		w->flow_stats[p->flow_id].rx_packets++;
		w->flow_stats[p->flow_id].rx_bytes += p->len;
		nr++;
	}

	/* One batch per flow, in order of first appearance; bursts are mostly one flow. */
	memset(w->grouped, 0, nr);
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t flow = w->pkts[i].flow_id, m = 0;

		if (w->grouped[i])
			continue;
		for (uint32_t j = i; j < nr; j++) {
			if (!w->grouped[j] && w->pkts[j].flow_id == flow) {
				w->grouped[j] = 1;
				w->flow_pkts[m++] = &w->pkts[j];
			}
		}
		chain__run(w, flow, w->flow_pkts, m);
	}
}

static void tick(struct ferry_worker *w)
{
	struct ferry_daemon *d = w->d;

	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++)
			if (ch->ops[s]->tick)
				ch->ops[s]->tick(ch->conf[s], w->svc_state[f][s], w);
	}
	nat_table__expire(w->nat, w->now_ns, (uint64_t)d->cfg.nat.udp_timeout_s * 1000000000ull,
			  EXPIRE_BUDGET, session_expired, w);
}

static void idle_wait(struct ferry_worker *w)
{
	struct pollfd fds[CFG_MAX_IFACES];
	bool tx_busy = false;

	for (int i = 0; i < w->nr_ports; i++) {
		fds[i].fd = xsk_socket__fd(w->ports[i]->xsk);
		fds[i].events = POLLIN;
		tx_busy |= w->ports[i]->tx_in_flight != 0;
	}
	/* While frames are in flight, completions must be read back soon. */
	poll(fds, w->nr_ports, tx_busy ? 1 : 100);
}

static void *worker__run(void *arg)
{
	struct ferry_worker *w = arg;

	while (!w->stop) {
		bool busy = false;

		w->now_ns = now_ns();
		for (int i = 0; i < w->nr_ports; i++) {
			port__complete(w->ports[i]);
			port__refill(w->ports[i]);
		}
		for (int i = 0; i < w->nr_ports; i++) {
			uint32_t n = port__rx(w->ports[i], w->rx_frames, w->batch);

			if (n) {
				busy = true;
				process_burst(w, w->ports[i], n);
			}
		}
		chain__flush_tx(w);
		if (w->now_ns >= w->next_tick_ns) {
			tick(w);
			w->next_tick_ns = w->now_ns + TICK_NS;
		}
		if (!busy)
			idle_wait(w);
	}
	return NULL;
}

int worker__create(struct ferry_worker **out, struct ferry_daemon *d, uint32_t id)
{
	const struct ferry_config *cfg = &d->cfg;
	uint32_t span, lo, hi;
	struct ferry_worker *w;
	int err;

	w = aligned_alloc(64, (sizeof(*w) + 63) & ~63ul);
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->queue = id;
	w->d = d;
	w->batch = cfg->umem.batch < WORKER_MAX_BATCH ? cfg->umem.batch : WORKER_MAX_BATCH;

	/* Each worker allocates NAT ports from its own slice: no collisions, no locks. */
	span = (uint32_t)(cfg->nat.ports.hi - cfg->nat.ports.lo + 1) / d->nr_workers;
	lo = cfg->nat.ports.lo + id * span;
	hi = id == d->nr_workers - 1 ? cfg->nat.ports.hi : lo + span - 1;
	w->nat = nat_table__create(cfg->nat.max_sessions / d->nr_workers ?: 1, lo, hi);
	if (!w->nat) {
		err = -ENOMEM;
		pr_err("worker %u: cannot allocate the session table", id);
		goto err_free;
	}
	err = nh_resolver__create(&w->nh);
	if (err) {
		pr_err("worker %u: cannot open rtnetlink: %s", id, strerror(-err));
		goto err_destroy_nat;
	}
	err = umem__create(&w->umem, cfg->umem.frames, cfg->umem.frame_size, cfg->umem.ring_size);
	if (err)
		goto err_destroy_nh;
	for (int i = 0; i < d->nr_ports; i++) {
		const struct ferry_port_info *pi = &d->ports[i];

		err = port__create(&w->ports[i], w->umem, pi->ifname, w->queue, (uint16_t)i,
				   cfg->umem.ring_size, steer__xsks_fd(d->steer, pi->ifname),
				   false);
		if (err)
			goto err_destroy_ports;
		w->nr_ports++;
	}
	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++) {
			if (!ch->ops[s]->worker_init)
				continue;
			err = ch->ops[s]->worker_init(ch->conf[s], w, &w->svc_state[f][s]);
			if (err) {
				pr_err("worker %u: flow '%s': service '%s' failed to start: %s", id,
				       ch->fc.flow->name, ch->ops[s]->name, strerror(-err));
				goto err_destroy_svc;
			}
		}
	}
	*out = w;
	return 0;

err_destroy_svc:
	worker__destroy(w);
	return err;
err_destroy_ports:
	while (w->nr_ports--)
		port__destroy(w->ports[w->nr_ports],
			      steer__xsks_fd(d->steer, d->ports[w->nr_ports].ifname));
	umem__destroy(w->umem);
err_destroy_nh:
	nh_resolver__destroy(w->nh);
err_destroy_nat:
	nat_table__destroy(w->nat);
err_free:
	free(w);
	return err;
}

int worker__start(struct ferry_worker *w)
{
	char name[16];
	int err;

	err = pthread_create(&w->thread, NULL, worker__run, w);
	if (err) {
		pr_err("worker %u: cannot start thread: %s", w->id, strerror(err));
		return -err;
	}
	snprintf(name, sizeof(name), "ferry-q%u", w->queue);
	pthread_setname_np(w->thread, name);
	w->running = true;
	return 0;
}

void worker__stop(struct ferry_worker *w)
{
	if (!w || !w->running)
		return;
	w->stop = 1;
	pthread_join(w->thread, NULL);
	w->running = false;
}

/* Frames still in the kernel come back when the sockets close; count them home first. */
static void drain(struct ferry_worker *w)
{
	for (int round = 0; round < 100 && w->umem->kernel_tx; round++) {
		for (int i = 0; i < w->nr_ports; i++)
			port__complete(w->ports[i]);
		if (w->umem->kernel_tx)
			usleep(1000);
	}
}

void worker__destroy(struct ferry_worker *w)
{
	struct ferry_daemon *d;

	if (!w)
		return;
	d = w->d;
	worker__stop(w);
	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++)
			if (ch->ops[s]->worker_destroy && w->svc_state[f][s])
				ch->ops[s]->worker_destroy(ch->conf[s], w->svc_state[f][s]);
	}
	if (w->nr_ports)
		drain(w);
	if (w->umem) {
		const struct umem *u = w->umem;

		if (!umem__check(u, "worker"))
			pr_info("worker %u: frame accounting holds: free %u + kernel_rx %u + "
				"kernel_tx %u + held %u == %u frames",
				w->id, u->nr_free, u->kernel_rx, u->kernel_tx, u->held, u->nr_frames);
		if (u->kernel_tx)
			pr_warn("worker %u: %u frames still in flight at stop", w->id,
				u->kernel_tx);
	}
	for (int i = 0; i < w->nr_ports; i++)
		port__destroy(w->ports[i], steer__xsks_fd(d->steer, d->ports[i].ifname));
	umem__destroy(w->umem);
	nh_resolver__destroy(w->nh);
	nat_table__destroy(w->nat);
	free(w);
}

uint64_t worker__unclassified(const struct ferry_worker *w)
{
	return w->unclassified;
}
