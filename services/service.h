/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The built-in services' view of ferryd: the service ABI
 * (services/ferry_service.h, the same one out-of-tree services get, which
 * describes the lifecycle, verdicts and every call a service makes) plus
 * what only built-ins linked into ferryd may use: the registry, the
 * daemon's config and steering rules, the worker's NAT table, next-hop
 * cache and per-flow counters.  forward, lb, mirror and fanout
 * (services/fwd_core.c, copy_out.c) need those; nothing here is exported
 * from ferryd (services/ferry_service.map lists what is), so an
 * out-of-tree service never includes this header.
 *
 * Implemented in daemon/daemon.c (daemon, rules), daemon/service_api.c
 * (worker accessors) and daemon/worker_nh.c (next hops).
 */
#ifndef FERRY_SERVICE_H
#define FERRY_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry_service.h"
#include "config.h"
#include "ferry_shared.h"
#include "packet.h"

const struct ferry_service_ops *service__find(const char *name);
void service__foreach(void (*fn)(const struct ferry_service_ops *ops, void *ctx), void *ctx);

/*
 * The XDP fast path (daemon/offload.c) does the per-packet work of the
 * built-in services forward and lb (the rewrite a session fixes at its
 * creation), of filter without payload rules (a verdict fixed per
 * session) and of ratelimit (its token buckets, per CPU); it does nothing
 * of the others, nor of out-of-tree services, so a chain with one of those
 * keeps every packet on the AF_XDP path.
 *
 * Whether service `ops` with configuration `conf` is offloadable; if not,
 * why, in `why`.
 */
bool service__offloadable(const struct ferry_service_ops *ops, const void *conf, char *why,
			  size_t len);
/*
 * Adds into `counters` (the service's own, as its stats() reports them)
 * what it would have counted for `client` and `reply` packets the fast
 * path forwarded.
 */
void service__offload_counters(const struct ferry_service_ops *ops, const void *conf,
			       uint64_t client, uint64_t reply,
			       uint64_t counters[FERRY_SERVICE_COUNTERS]);
/*
 * Adds into `counters` what the service would have counted for the packets
 * a ratelimit in the fast path dropped (over_packets: its packet bucket was
 * short, over_bytes: its byte bucket); nothing for other services.
 */
void service__offload_drop_counters(const struct ferry_service_ops *ops, const void *conf,
				    uint64_t over_packets, uint64_t over_bytes,
				    uint64_t counters[FERRY_SERVICE_COUNTERS]);
/* Whether `ops` is the built-in ratelimit, the one service the fast path drops for. */
bool service__is_ratelimit(const struct ferry_service_ops *ops);
bool svc_filter__offloadable(const void *conf, char *why, size_t len);
void svc_filter__offload_counters(const void *conf, uint64_t client, uint64_t reply,
				  uint64_t counters[FERRY_SERVICE_COUNTERS]);
bool svc_ratelimit__offloadable(const void *conf, char *why, size_t len);
/* The fast path's copy of its buckets' parameters, named `gen` (not 0). */
void svc_ratelimit__offload_params(const void *conf, uint64_t gen, struct ferry_rl_params *out);
void svc_ratelimit__offload_counters(const void *conf, uint64_t over_packets,
				     uint64_t over_bytes,
				     uint64_t counters[FERRY_SERVICE_COUNTERS]);

struct nat_table;
struct nh_resolver;

/* ferry port index of an interface ferry runs on, or -ENOENT. */
int ferry_daemon__port_of_ifindex(struct ferry_daemon *d, int ifindex);
/* Adds a steering rule for this flow (e.g. the replies of a NAT); returns 0 or -errno. */
int ferry_daemon__add_rule(struct ferry_daemon *d, const struct ferry_rule *rule);
const struct ferry_config *ferry_daemon__config(struct ferry_daemon *d);

struct nat_table *ferry_worker__nat(struct ferry_worker *w);
struct nh_resolver *ferry_worker__resolver(struct ferry_worker *w);
int ferry_worker__port_of_ifindex(const struct ferry_worker *w, int ifindex);
/* Counters of this worker for a flow, published as ferry_fwd_stats. */
struct ferry_fwd_stats *ferry_worker__flow_stats(struct ferry_worker *w, uint32_t flow_id);
/*
 * daemon/chain.c: held packets of one flow go on along its chain from
 * position after_pos + 1, counted as the chain runner counts, then TX.
 * From tick() only, never inside a chain run (the app service).
 */
void ferry_worker__resume(struct ferry_worker *w, struct ferry_pkt **pkts, uint32_t n,
			  int after_pos);
/*
 * The worker's next hops: one next-hop cache (lib/nh_cache.h) per worker,
 * kept current by the kernel's route, neighbour and link notifications and
 * shared by every service on the worker.  ferry_worker__nh_get() (from
 * worker_init()) creates it with `params` the first time and returns it;
 * each get is paired with a ferry_worker__nh_put() (from worker_destroy()),
 * the last of which destroys it, handing its held frames back as drops.
 */
struct nh_cache;
struct nh_cache_params;
/* The cache's sizes and timeouts for `cfg` (nat and umem sections). */
void ferry_worker__nh_params(const struct ferry_config *cfg, struct nh_cache_params *p);
int ferry_worker__nh_get(struct ferry_worker *w, const struct nh_cache_params *params,
			 struct nh_cache **out);
void ferry_worker__nh_put(struct ferry_worker *w);
/*
 * From process() (before the batch) and tick(): reads the kernel's
 * notifications, never waiting, runs queued lookups and times held frames
 * out, rate-limited (often while neighbours resolve, rarely otherwise).
 */
void ferry_worker__nh_poll(struct ferry_worker *w, uint64_t now);
/*
 * A service's nh_cache__prepare_deferred() queued a lookup for a packet of
 * flow_id: counts it (nh_lookups) and has the worker run it at its next
 * lookup slot, even when idle.
 */
void ferry_worker__nh_lookup_queued(struct ferry_worker *w, uint32_t flow_id, uint64_t now);
/*
 * After nh_cache__prepare*() said NH_HOLD for entry idx: holds p (its
 * frame as it is now) in the cache's queue, within the worker's hold
 * budget.  Returns 0 (p at FERRY_VERDICT_HOLD) or the drop reason
 * (hold_budget, or no_neighbour when the queue is full), for the caller to
 * set: it overrides the hold.
 */
int ferry_worker__nh_hold(struct ferry_worker *w, struct ferry_pkt *p, uint32_t idx);

/*
 * daemon/offload.c.  After a packet of session `s` was sent (not held):
 * the session may now go to the XDP fast path, or (a TCP FIN) leave it.
 */
struct nat_session;
void ferry_worker__offload(struct ferry_worker *w, struct nat_session *s);
/*
 * Before a TCP segment of `s` is tracked: if the fast path forwarded the
 * connection's segments, the windows it last saw become the tracked ones.
 */
void ferry_worker__offload_tcp_sync(struct ferry_worker *w, struct nat_session *s);

/*
 * A copy of `from` (its frame's bytes and parsed headers) in a fresh frame
 * of the worker's pool, held by the service (FERRY_VERDICT_HOLD, counted
 * against the hold budget), in *to: for a service that makes a new packet
 * outside a chain run (the app service's emits) and finishes it with
 * ferry_worker__resume() or ferry_worker__send_held().  -ENOBUFS when the
 * services hold their budget, -ENOMEM when the pool has no free frame.
 */
int ferry_worker__copy_held(struct ferry_worker *w, const struct ferry_pkt *from,
			    struct ferry_pkt *to);
/*
 * Until the services' next tick(), the service expects work to arrive
 * through fd (an app slot's FROM_APP ring, whose application writes the
 * eventfd fd when asked to): an awake worker runs the tick at poll_ns at
 * the latest, as for ferry_worker__wake_at(); an idle worker in interrupt
 * mode first calls arm(ctx), which asks the other side for a wake-up and
 * looks once more (false: work is there already, the tick runs at once),
 * then sleeps on fd besides its sockets, bounded by the wake_at()
 * deadlines only.  A readable fd is emptied with a read that never
 * blocks (the other side may share its flags) and runs the tick at once.
 * Busy-poll and spin workers never sleep: for them it is poll_ns alone.
 * Each tick forgets the registrations, so a service asks again while it
 * still waits; with the table full (WORKER_MAX_WAITS) poll_ns is a
 * ferry_worker__wake_at() deadline: polled asleep too.
 */
void ferry_worker__wait_fd(struct ferry_worker *w, int fd, uint64_t poll_ns,
			   bool (*arm)(void *ctx), void *ctx);
/*
 * Drops ctx's ferry_worker__wait_fd() registrations before the next tick:
 * for a service about to tell another thread that fd, or what arm(ctx)
 * touches, may go away (an app slot acknowledging a detach).
 */
void ferry_worker__forget_waits(struct ferry_worker *w, void *ctx);

#endif /* FERRY_SERVICE_H */
