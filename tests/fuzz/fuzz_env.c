// SPDX-License-Identifier: BSD-2-Clause
/*
 * Test double of a running ferryd for the fuzz harnesses (see fuzz_env.h).
 * It replaces daemon/worker.c (ferry_worker__flow_stats()), the netlink
 * lookups of lib/nexthop.c and the kernel's half of the AF_XDP rings; everything else
 * on the packet path is the real code.  The start-up steps are daemon/daemon.c's,
 * which daemon/ferryd.c calls too.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/if_xdp.h>
#include <sanitizer/asan_interface.h>

#include "fuzz.h"
#include "fuzz_env.h"
#include "nat.h"
#include "nexthop.h"
#include "steer.h"
#include "svc_loader.h"

struct fuzz_nh fuzz_nh = { .mtu = 1500 };

/*
 * ---- ferry_worker__flow_stats() (daemon/worker.c), with a bounds check ----
 *
 * The other accessors are daemon/chain.c's, as ferryd has them.
 */

struct ferry_fwd_stats *ferry_worker__flow_stats(struct ferry_worker *w, uint32_t flow_id)
{
	FUZZ_CHECK(flow_id < CFG_MAX_FLOWS, "flow_id %u", flow_id);
	return &w->flow_stats[flow_id];
}

/*
 * ---- daemon/steer.c, for daemon/reload.c ----
 *
 * The harnesses run reload__plan() only, which touches no map; the rest of
 * reload.c is linked with it and must not reach the BPF maps here.
 */

int steer__set_rule(struct steer *s, uint32_t slot, const struct ferry_rule *rule)
{
	FUZZ_CHECK(0, "steer__set_rule() without a steering program");
	return -EOPNOTSUPP;
}

int steer__clear_rules(struct steer *s, uint32_t from_slot)
{
	FUZZ_CHECK(0, "steer__clear_rules() without a steering program");
	return -EOPNOTSUPP;
}

int steer__set_flow_info(struct steer *s, uint32_t flow_id, const char *name)
{
	FUZZ_CHECK(0, "steer__set_flow_info() without a steering program");
	return -EOPNOTSUPP;
}

int steer__set_flow_offload(struct steer *s, uint32_t flow_id, bool offload, const char *why)
{
	FUZZ_CHECK(0, "steer__set_flow_offload() without a steering program");
	return -EOPNOTSUPP;
}

int steer__set_svc_info(struct steer *s, uint32_t flow_id, uint32_t pos, const char *name,
			const char *const counter_names[FERRY_SVC_COUNTERS])
{
	FUZZ_CHECK(0, "steer__set_svc_info() without a steering program");
	return -EOPNOTSUPP;
}

int steer__set_flow_ratelimit(struct steer *s, uint32_t flow_id,
			      const struct ferry_rl_params *p)
{
	FUZZ_CHECK(0, "steer__set_flow_ratelimit() without a steering program");
	return -EOPNOTSUPP;
}

/*
 * ---- the stub resolver ----
 *
 * lib/nexthop.c stays linked (its other parts are plain code), but the
 * harnesses link with -Wl,--wrap for these four, so every call from the
 * services ends here and never opens a netlink socket.  The stub's handle
 * is its own type: the real one is opaque anyway.
 */

struct fuzz_resolver {
	int open;
};

int __wrap_nh_resolver__create(struct nh_resolver **out)
{
	struct fuzz_resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->open = 1;
	*out = (struct nh_resolver *)r;
	return 0;
}

void __wrap_nh_resolver__destroy(struct nh_resolver *r)
{
	free(r);
}

/* Which of two MACs each interface has now: a link notification may change it. */
static uint8_t port_mac_variant[256];

void fuzz_env__port_mac(int ifindex, uint8_t mac[6])
{
	static const uint8_t base[6] = { 0x02, 0x66, 0x65, 0x72, 0x00, 0x00 };

	memcpy(mac, base, 6);
	mac[4] = port_mac_variant[(uint8_t)ifindex];
	mac[5] = (uint8_t)ifindex;
}

void fuzz_env__other_port_mac(int ifindex, uint8_t mac[6])
{
	fuzz_env__port_mac(ifindex, mac);
	mac[4] ^= 1;
}

bool fuzz_env__is_port_mac(int ifindex, const uint8_t mac[6])
{
	uint8_t now[6];

	fuzz_env__port_mac(ifindex, now);
	return !memcmp(mac, now, 4) && mac[5] == now[5];
}

void fuzz_env__neigh_mac(int family, const union ferry_addr *addr, uint8_t mac[6])
{
	/* A made-up but stable MAC per neighbour: 02:ne:ig:hb:ou:r. */
	mac[0] = 0x02;
	memcpy(mac + 1, addr->b + (family == AF_INET ? 0 : 11), 5);
}

static bool on_server_side(int family, const union ferry_addr *a)
{
	static const uint8_t net4[3] = { 198, 18, 2 };
	static const uint8_t net6[8] = { 0xfd, 0, 0, 2 };

	if (family == AF_INET)
		return !memcmp(a->b, net4, sizeof(net4));
	return !memcmp(a->b, net6, sizeof(net6));
}

int __wrap_nh_resolver__route(struct nh_resolver *nh, int family, const union ferry_addr *dst,
			      struct nh_route *out)
{
	const struct fuzz_resolver *r = (const struct fuzz_resolver *)nh;
	static const union ferry_addr src4[2] = { { .b = { 198, 18, 1, 1 } },
						  { .b = { 198, 18, 2, 1 } } };
	static const union ferry_addr src6[2] = { { .b = { 0xfd, 0, 0, 1, [15] = 1 } },
						  { .b = { 0xfd, 0, 0, 2, [15] = 1 } } };
	int side;

	FUZZ_CHECK(r && r->open, "route lookup on a closed resolver");
	FUZZ_CHECK(family == AF_INET || family == AF_INET6, "family %d", family);
	fuzz_nh.route_calls++;
	if (fuzz_nh.route_fails)
		return -ENETUNREACH;
	memset(out, 0, sizeof(*out));
	out->family = family;
	out->gateway = *dst; /* everything is on-link */
	out->mtu = fuzz_nh.mtu;
	if (on_server_side(family, dst)) {
		side = 1;
		out->ifindex = FUZZ_IFINDEX_S;
	} else {
		side = 0;
		out->ifindex = fuzz_nh.client_route == FUZZ_CLIENT_VIA_C   ? FUZZ_IFINDEX_C
			       : fuzz_nh.client_route == FUZZ_CLIENT_VIA_S ? FUZZ_IFINDEX_S
									   : FUZZ_IFINDEX_OTHER;
	}
	out->prefsrc = family == AF_INET ? src4[side] : src6[side];
	fuzz_env__port_mac(out->ifindex, out->src_mac);
	return 0;
}

int __wrap_nh_resolver__neigh(struct nh_resolver *nh, int family, const union ferry_addr *addr,
			      int ifindex, uint8_t mac[6])
{
	const struct fuzz_resolver *r = (const struct fuzz_resolver *)nh;
	FUZZ_CHECK(r && r->open, "neighbour lookup on a closed resolver");
	FUZZ_CHECK(family == AF_INET || family == AF_INET6, "family %d", family);
	fuzz_nh.neigh_calls++;
	if (on_server_side(family, addr)) {
		if (fuzz_nh.upstream_failed)
			return -EHOSTUNREACH;
		if (fuzz_nh.upstream_unresolved)
			return -EAGAIN;
	} else if (fuzz_nh.client_unresolved) {
		return -EAGAIN;
	}
	fuzz_env__neigh_mac(family, addr, mac);
	return 0;
}

/* ---- stub notifications ---- */

struct fuzz_events {
	int open;
};

static struct nh_event pending_events[FUZZ_MAX_EVENTS];
static unsigned int nr_pending_events;

int fuzz_env__queue_event(const struct nh_event *ev)
{
	if (nr_pending_events == FUZZ_MAX_EVENTS)
		return -ENOSPC;
	pending_events[nr_pending_events++] = *ev;
	return 0;
}

int __wrap_nh_events__create(struct nh_events **out)
{
	struct fuzz_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->open = 1;
	nr_pending_events = 0;
	*out = (struct nh_events *)ev;
	return 0;
}

void __wrap_nh_events__destroy(struct nh_events *ev)
{
	free(ev);
}

int __wrap_nh_events__fd(const struct nh_events *ev)
{
	return -1; /* poll() ignores it */
}

int __wrap_nh_events__drain(struct nh_events *nev, unsigned int max, nh_event_fn fn, void *ctx)
{
	const struct fuzz_events *ev = (const struct fuzz_events *)nev;
	unsigned int n = nr_pending_events < max ? nr_pending_events : max;

	FUZZ_CHECK(ev && ev->open, "drain of closed notifications");
	for (unsigned int i = 0; i < n; i++) {
		const struct nh_event *e = &pending_events[i];

		/* The kernel's state changes as the service hears of it: lookups agree. */
		if (e->type == NH_EV_LINK && e->has_mac)
			port_mac_variant[(uint8_t)e->ifindex] = e->mac[4];
		fn(e, ctx);
	}
	memmove(pending_events, pending_events + n,
		(nr_pending_events - n) * sizeof(pending_events[0]));
	nr_pending_events -= n;
	return (int)n;
}

/*
 * ---- the daemon (daemon/ferryd.c's start-up, without XDP) ----
 *
 * The flows' chains, their client rules and start() are daemon/daemon.c's,
 * as ferryd calls them; only the sorting stands in for install_rules().
 */

/* Reply rules first, as the XDP program's table has them. */
static void sort_rules(struct ferry_daemon *d)
{
	struct ferry_rule sorted[FERRY_MAX_RULES];
	uint32_t n = 0;

	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < d->nr_rules; i++)
			if ((d->rules[i].dir == FERRY_DIR_REPLY) == (pass == 0))
				sorted[n++] = d->rules[i];
	memcpy(d->rules, sorted, n * sizeof(sorted[0]));
}

int fuzz_env__daemon_create(struct ferry_daemon **out, const char *yaml)
{
	static const struct ferry_port_info ports[] = {
		{ .ifname = "fz-c", .ifindex = FUZZ_IFINDEX_C },
		{ .ifname = "fz-s", .ifindex = FUZZ_IFINDEX_S },
	};
	struct ferry_daemon *d = calloc(1, sizeof(*d));
	struct cfg_errors errs = { 0 };
	int err;

	if (!d)
		return -ENOMEM;
	err = config__load_string(&d->cfg, "fuzz_env.yaml", yaml, NULL);
	if (err) {
		free(d);
		return err;
	}
	d->nr_ports = 2;
	memcpy(d->ports, ports, sizeof(ports));
	d->nr_workers = 1;
	errs.file = d->cfg.file;
	err = ferry_daemon__configure_flows(d, &errs);
	if (!err)
		err = ferry_daemon__client_rules(d);
	if (!err)
		err = ferry_daemon__start_services(d);
	if (err) {
		fuzz_env__daemon_destroy(d);
		return err;
	}
	sort_rules(d);
	*out = d;
	return 0;
}

void fuzz_env__daemon_destroy(struct ferry_daemon *d)
{
	if (!d)
		return;
	ferry_daemon__destroy_flows(d);
	/* After every destroy(), as in ferryd. */
	svc_loader__destroy(d->loader);
	config__free(&d->cfg);
	free(d);
}

/* ---- a worker with a UMEM and rings in plain memory ---- */

/*
 * Every frame the pool hands out is whole: fuzz_chain poisons the tail of
 * a received frame, and a service may get that frame back for a packet of
 * its own (ferry_batch__emit()) in the same burst it was dropped in.
 */
bool __real_umem__alloc(struct umem *u, uint64_t *addr);
bool __wrap_umem__alloc(struct umem *u, uint64_t *addr);
bool __wrap_umem__alloc(struct umem *u, uint64_t *addr)
{
	if (!__real_umem__alloc(u, addr))
		return false;
	ASAN_UNPOISON_MEMORY_REGION(umem__data(u, *addr), u->frame_size);
	return true;
}

/*
 * The big blocks (UMEM area, worker) are kept from one input to the next:
 * ASan maps and unmaps blocks this large on every allocation, which would
 * cost the chain harness most of its speed.
 */
static void *spare_area, *spare_worker;
static size_t spare_area_size, spare_worker_size;

static void *big_alloc(void **spare, size_t *spare_size, size_t size, bool clear)
{
	void *p = *spare;

	if (p && *spare_size == size)
		*spare = NULL;
	else
		p = aligned_alloc(4096, (size + 4095) & ~4095ul);
	if (p && clear)
		memset(p, 0, size);
	return p;
}

static void big_free(void **spare, size_t *spare_size, void *p, size_t size)
{
	if (!p)
		return;
	free(*spare);
	*spare = p;
	*spare_size = size;
}

static int fake_umem_create(struct umem **out, uint32_t nr_frames, uint32_t frame_size)
{
	struct umem *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->frame_size = frame_size;
	u->nr_frames = nr_frames;
	u->size = (uint64_t)nr_frames * frame_size;
	/* Frames are written before they are read: no need to clear them. */
	u->area = big_alloc(&spare_area, &spare_area_size, u->size, false);
	u->stack = calloc(nr_frames, sizeof(*u->stack));
	if (!u->area || !u->stack) {
		big_free(&spare_area, &spare_area_size, u->area, u->size);
		free(u->stack);
		free(u);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr_frames; i++)
		u->stack[i] = (uint64_t)(nr_frames - 1 - i) * frame_size;
	u->nr_free = nr_frames;
	*out = u;
	return 0;
}

static void fake_umem_destroy(struct umem *u)
{
	if (!u)
		return;
	big_free(&spare_area, &spare_area_size, u->area, u->size);
	free(u->stack);
	free(u);
}

int fuzz_env__worker_create(struct ferry_worker **out, struct ferry_daemon *d, uint32_t nr_frames,
			    uint32_t tx_ring_size)
{
	const struct ferry_config *cfg = &d->cfg;
	struct ferry_worker *w;
	int err;

	if (!tx_ring_size || tx_ring_size & (tx_ring_size - 1))
		return -EINVAL;
	w = big_alloc(&spare_worker, &spare_worker_size, sizeof(*w), true);
	if (!w)
		return -ENOMEM;
	w->d = d;
	memset(port_mac_variant, 0, sizeof(port_mac_variant));
	w->batch = cfg->umem.batch < WORKER_MAX_BATCH ? cfg->umem.batch : WORKER_MAX_BATCH;
	w->hold_budget = worker__hold_budget(nr_frames, tx_ring_size, (uint32_t)d->nr_ports);
	w->nat = nat_table__create(cfg->nat.max_sessions, cfg->nat.ports.lo, cfg->nat.ports.hi);
	err = w->nat ? __wrap_nh_resolver__create(&w->nh) : -ENOMEM;
	if (!err)
		err = fake_umem_create(&w->umem, nr_frames, cfg->umem.frame_size);
	for (int i = 0; !err && i < d->nr_ports; i++) {
		err = port__create_memory(&w->ports[i], w->umem, d->ports[i].ifname,
					  d->ports[i].ifindex, (uint16_t)i, tx_ring_size);
		if (!err)
			w->nr_ports++;
	}
	for (int f = 0; !err && f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; !err && s < ch->nr; s++)
			if (ch->ops[s]->worker_init)
				err = ch->ops[s]->worker_init(ch->conf[s], w, &w->svc_state[f][s]);
	}
	if (err) {
		fuzz_env__worker_destroy(w);
		return err;
	}
	*out = w;
	return 0;
}

void fuzz_env__worker_stop_services(struct ferry_worker *w)
{
	struct ferry_daemon *d = w->d;

	for (int f = 0; f < d->nr_flows; f++) {
		const struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++) {
			if (ch->ops[s]->worker_destroy && w->svc_state[f][s])
				ch->ops[s]->worker_destroy(ch->conf[s], w->svc_state[f][s]);
			w->svc_state[f][s] = NULL;
		}
	}
}

void fuzz_env__worker_destroy(struct ferry_worker *w)
{
	if (!w)
		return;
	fuzz_env__worker_stop_services(w);
	for (int i = 0; i < w->nr_ports; i++)
		port__destroy(w->ports[i], -1);
	fake_umem_destroy(w->umem);
	__wrap_nh_resolver__destroy(w->nh);
	nat_table__destroy(w->nat);
	big_free(&spare_worker, &spare_worker_size, w, sizeof(*w));
}

struct kernel_tx {
	struct ferry_worker *w;
	int port;
	void (*sent)(const uint8_t *frame, uint32_t len, int port, void *ctx);
	void *ctx;
};

static void kernel_tx_desc(const struct xdp_desc *desc, void *ctx)
{
	struct kernel_tx *k = ctx;
	const struct umem *u = k->w->umem;
	uint64_t off = desc->addr % u->frame_size;

	/* What the kernel's xskq_cons_is_valid_desc() would refuse. */
	FUZZ_CHECK(desc->addr < u->size && desc->len && off + desc->len <= u->frame_size,
		   "port %d: bad TX descriptor addr %llu len %u", k->port,
		   (unsigned long long)desc->addr, desc->len);
	if (k->sent)
		k->sent(umem__data(u, desc->addr), desc->len, k->port, k->ctx);
}

uint32_t fuzz_env__kernel_tx(struct ferry_worker *w, int port,
			     void (*sent)(const uint8_t *frame, uint32_t len, int port, void *ctx),
			     void *ctx)
{
	struct kernel_tx k = { .w = w, .port = port, .sent = sent, .ctx = ctx };
	uint32_t n = port__memory_tx(w->ports[port], kernel_tx_desc, &k);

	/* Stopped by a full COMPLETION ring: port__complete() was not called often enough. */
	FUZZ_CHECK(!port__memory_tx_pending(w->ports[port]), "port %d: COMPLETION ring overflow",
		   port);
	return n;
}
