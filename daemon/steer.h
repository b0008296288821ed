/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The user-space owner of the XDP side: loads ferry_steer once per
 * interface, attaches it through libxdp's dispatcher, keeps the rule table
 * and the counters, and pins what ferryctl reads.
 *
 * The rule, flow-counter, data-path-counter, flow-name and per-service
 * counter and name maps are shared by every interface and exist from
 * steer__create() on.  Each interface gets its own XSKMAP (queue ids collide
 * between interfaces) and its own XDP counters.
 *
 * Not thread safe: one thread sets up and tears down.  Map fds handed out
 * stay valid until steer__destroy().
 */
#ifndef FERRY_STEER_H
#define FERRY_STEER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ferry_shared.h"

#define STEER_DEFAULT_PIN_PATH "/sys/fs/bpf/ferry"

struct steer;

struct steer_opts {
	const char *pin_path; /* NULL: STEER_DEFAULT_PIN_PATH */
	uint32_t offload_sessions; /* nat.offload_max_sessions: sizes the fast path's maps */
};

/*
 * Mounts bpffs on /sys/fs/bpf when it is missing, creates the pin directory
 * (mode 0700), takes it over (-EBUSY when another live steer holds it),
 * removes ferry pins a crashed run left there, creates and pins the shared
 * maps.
 */
int steer__create(struct steer **out, const struct steer_opts *opts);

/*
 * Attaches ferry_steer to IFNAME.  CFG_XDP_NATIVE falls back to skb mode
 * with a warning, CFG_XDP_NATIVE_ONLY fails instead.  A ferry_steer program
 * already on the interface is taken as left by a crashed run and detached.
 * On failure nothing of this interface stays attached or pinned.
 */
int steer__attach(struct steer *s, const char *ifname, enum cfg_xdp_mode mode);

/* Slot < FERRY_MAX_RULES; the table ends at the first disabled slot. */
int steer__set_rule(struct steer *s, uint32_t slot, const struct ferry_rule *rule);
/* Disables every slot >= from_slot. */
int steer__clear_rules(struct steer *s, uint32_t from_slot);
/* Names flow_id for ferryctl and marks it configured; NULL name unmarks it. */
int steer__set_flow_info(struct steer *s, uint32_t flow_id, const char *name);
/* Whether flow_id's sessions may use the fast path, and if not why (for ferryctl flows). */
int steer__set_flow_offload(struct steer *s, uint32_t flow_id, bool offload, const char *why);
/* flow_id's ratelimit in the fast path (ferry_rl_params; gen 0: none). */
int steer__set_flow_ratelimit(struct steer *s, uint32_t flow_id,
			      const struct ferry_rl_params *p);

/* XSKMAP of IFNAME's program (key = queue id, value = AF_XDP socket fd), or -ENOENT. */
int steer__xsks_fd(struct steer *s, const char *ifname);
/* The per-CPU struct ferry_fwd_stats map the workers publish into. */
int steer__fwd_stats_fd(struct steer *s);
/* The per-CPU struct ferry_svc_stats map (key flow_id * FERRY_MAX_SERVICES + position). */
int steer__svc_stats_fd(struct steer *s);
/* ferry_app_slots (ferry_shared.h): the flows' app slots, for ferryctl apps. */
int steer__app_slots_fd(struct steer *s);
/* ferry_lb_upstreams (ferry_shared.h): lb's upstreams by address, for ferryctl stats. */
int steer__lb_upstreams_fd(struct steer *s);
/* The struct ferry_queue_stats map (key port * FERRY_MAX_QUEUES + queue). */
int steer__queue_stats_fd(struct steer *s);
/* The struct ferry_health map (one entry), for ferryctl health. */
int steer__health_fd(struct steer *s);
/* ferry_steer's program id on IFNAME, 0 when not attached there. */
__u32 steer__prog_id(const struct steer *s, const char *ifname);
/* The XDP program's per-CPU struct ferry_flow_stats (key flow_id). */
int steer__flow_stats_fd(struct steer *s);
/*
 * Whether the fast path may redirect to interface `ifindex` (ferry_tx_ports):
 * only while it can take redirects from XDP.
 */
int steer__set_tx_port(struct steer *s, int ifindex, bool on);
/* The fast path's ferry_sessions and its per-CPU ferry_sess_stats (bpf/ferry_fastpath.h). */
int steer__sessions_fd(struct steer *s);
int steer__sess_stats_fd(struct steer *s);
/*
 * Names service `pos` of flow_id's chain and its counters for ferryctl and
 * marks the slot configured; a NULL name unmarks it.
 */
int steer__set_svc_info(struct steer *s, uint32_t flow_id, uint32_t pos, const char *name,
			const char *const counter_names[FERRY_SVC_COUNTERS]);
/* "native" or "skb", the mode in effect on IFNAME; NULL if not attached. */
const char *steer__mode_name(struct steer *s, const char *ifname);

/* Detaches what it attached, removes its pins, closes; NULL and half-built are fine. */
/*
 * Whether a program is attached through libxdp's dispatcher, whose detach
 * at steer__destroy() needs CAP_SYS_ADMIN (it looks programs up by id).
 */
bool steer__uses_dispatcher(const struct steer *s);
/*
 * A run that did not stop left its fast path forwarding: its session maps
 * are this run's (steer__create() took them over), and steer__attach()
 * replaced its programs in one step.  ferryd adopts the entries
 * (daemon/offload_adopt.c); the flow each was installed for is named by
 * steer__old_flow_name() (NULL: unknown).
 */
bool steer__adopting(const struct steer *s);
const char *steer__old_flow_name(const struct steer *s, uint32_t flow_id);
/* Detaches what that run left attached where this one did not attach (its interface is gone). */
void steer__drop_stale(struct steer *s);
void steer__destroy(struct steer *s);

#endif /* FERRY_STEER_H */
