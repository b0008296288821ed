/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lb's health checks: which upstreams may take new sessions.
 *
 * A checker thread per lb flow (started in start(), joined in destroy())
 * probes every upstream each interval_ms, all at once, from ferryd's own
 * network namespace (the probes are local traffic and go through the
 * kernel's routing, not through the AF_XDP sockets):
 *   tcp   a non-blocking connect() that completes within timeout_ms;
 *   udp   a datagram (`send`) whose reply, within timeout_ms, starts with
 *         `expect` (any reply when `expect` is empty); an ICMP port
 *         unreachable fails it at once;
 *   exec  `command` run by /bin/sh with FERRY_UPSTREAM_ADDRESS and
 *         FERRY_UPSTREAM_PORT in its environment, exit status 0 within
 *         timeout_ms (killed after).
 * A probe's source port is never one of nat.ports: the reply rules steer
 * those to the workers, and the probe's answer would never reach it.
 *
 * Passive marking: the workers count, per upstream, the ICMP destination
 * unreachable errors about its sessions and the RSTs it answers a SYN with
 * (plain per-worker counters, no lock); the checker folds them each round,
 * and a round with any is a failed round for that upstream whatever its
 * probe said.
 *
 * An upstream goes down after `fall` failed rounds in a row and up again
 * after `rise` good ones (lb_hc_account()); it starts up.  The result is
 * one word the workers read when they choose the upstream of a NEW session
 * (bit i: upstream i is up); a session keeps the upstream it has.
 */
#ifndef FERRY_LB_HEALTH_H
#define FERRY_LB_HEALTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "nat.h"

#define LB_MAX_UPSTREAMS 16
#define LB_HC_TEXT_LEN 128
#define LB_HC_COMMAND_LEN 256

enum lb_hc_type {
	LB_HC_NONE = 0, /* no `health`: every upstream stays up */
	LB_HC_TCP,
	LB_HC_UDP,
	LB_HC_EXEC,
};

/* The `health` mapping of an lb entry. */
struct lb_hc_conf {
	int type; /* enum lb_hc_type */
	uint32_t interval_ms, timeout_ms, rise, fall;
	uint32_t port; /* 0: the upstream's own port */
	char send[LB_HC_TEXT_LEN];
	char expect[LB_HC_TEXT_LEN];
	char command[LB_HC_COMMAND_LEN];
	bool port_seen, send_seen, expect_seen, command_seen;
};

/* One upstream's state machine. */
struct lb_hc_state {
	bool up;
	uint32_t ok_run, fail_run; /* consecutive good and failed rounds */
};

/*
 * One round's result for an upstream: returns true when it changed state
 * (down after `fall` failures in a row, up after `rise` successes in a row).
 */
bool lb_hc_account(struct lb_hc_state *s, bool ok, uint32_t rise, uint32_t fall);

/* What the checker and the workers share for one upstream, read by ferryd's publisher. */
struct lb_up_stats {
	_Atomic uint64_t checks_ok, checks_failed, passive_failures;
	_Atomic uint64_t went_down, went_up;
};

/* A worker's own counters, folded by the checker and the publisher (no lock on the packet path). */
struct lb_wcount {
	_Atomic uint64_t sessions[LB_MAX_UPSTREAMS]; /* new sessions per upstream */
	_Atomic uint64_t passive[LB_MAX_UPSTREAMS];  /* passive failures seen per upstream */
	struct lb_wcount *next;
};

/* Relaxed increment by the one writer: no locked instruction on the packet path. */
static inline void lb_count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

struct lb_checker {
	/* Bit i: upstream i is up.  Written by the checker, read by the workers. */
	_Atomic uint32_t up_mask;
	struct lb_up_stats st[LB_MAX_UPSTREAMS];
	/* The workers' counters; the list changes only under `lock`, off the packet path. */
	pthread_mutex_t lock;
	struct lb_wcount *workers;
	/* New sessions of workers' counters that went away (a reload), under `lock`. */
	uint64_t gone_sessions[LB_MAX_UPSTREAMS];
	uint64_t passive_seen[LB_MAX_UPSTREAMS]; /* checker only: the sums at its last round */
	struct lb_hc_state hs[LB_MAX_UPSTREAMS];  /* checker only */
	/* The thread. */
	pthread_t thread;
	bool running;
	int wake_fd; /* eventfd: destroy() wakes the thread to stop */
	_Atomic bool stop;
	/* What it checks (copied at start). */
	struct lb_hc_conf hc;
	char flow_name[CFG_NAME_LEN];
	int family;
	uint32_t nr;
	union ferry_addr addr[LB_MAX_UPSTREAMS];
	uint16_t port[LB_MAX_UPSTREAMS];
	struct cfg_port_range nat_ports;
};

void lb_checker__init(struct lb_checker *k);
/* Starts the thread when hc.type is not LB_HC_NONE; 0 or -errno. */
int lb_checker__start(struct lb_checker *k);
/* Stops and joins the thread, kills a running command; safe when never started. */
void lb_checker__stop(struct lb_checker *k);
void lb_checker__add_worker(struct lb_checker *k, struct lb_wcount *wc);
void lb_checker__del_worker(struct lb_checker *k, struct lb_wcount *wc);
/* The sums of the workers' counters of upstream i (sessions: those gone included). */
void lb_checker__sums(struct lb_checker *k, uint32_t i, uint64_t *sessions, uint64_t *passive);
/*
 * One round of the state machines with the given probe results (bit i:
 * upstream i's probe succeeded), the workers' passive failures folded in;
 * publishes up_mask.  The thread calls it; tests call it directly.
 */
void lb_checker__round(struct lb_checker *k, uint32_t probe_ok);

#endif /* FERRY_LB_HEALTH_H */
