/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The XDP fast path, seen from ferryd: which flows may use it, which of
 * their sessions a worker installs there and when it takes them back, and
 * how what the fast path forwarded reaches the counters.
 *
 * A worker creates every session as before.  A session of a flow whose
 * whole chain can run in XDP (offload__decide()) is installed in the pinned
 * ferry_sessions map, both directions, once it is established: a UDP
 * session once the upstream answered or after OFFLOAD_UDP_PACKETS packets,
 * a TCP one in ESTABLISHED with no FIN sent.  From then on ferry_steer
 * forwards its packets (bpf/ferry_fastpath.h) and the worker only sees what
 * the fast path leaves to it.  The worker takes the entries back when the
 * session leaves its table (expiry, early drop, a reload, TCP close) or
 * stops qualifying (a FIN), rewrites them when a next hop changes, and asks
 * the per-session counters before it expires a session that looks idle.
 *
 * Each worker owns a slice of the stats map's slots: no locks.  Installs
 * wait until the worker has sent what it holds (offload__flush() after the
 * TX flush), so the packets it forwarded leave before the fast path's.
 */
#ifndef FERRY_OFFLOAD_H
#define FERRY_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry_shared.h"

struct ferry_daemon;
struct ferry_worker;
struct flow_chain;
struct cfg_flow;
struct nat_session;

/* A UDP stream's packets seen by a worker before it is offloaded without a reply. */
#define OFFLOAD_UDP_PACKETS 8
/* Sessions queued for install per worker loop; more wait for the next packet. */
#define OFFLOAD_PENDING 64
/* After a full map refused an install, the session tries again this much later. */
#define OFFLOAD_RETRY_NS (1000ull * 1000 * 1000)

/*
 * Whether `flow`'s chain `ch` may forward in XDP, into ch->offload, and
 * if not why, into ch->offload_why (for ferryctl flows).
 */
void offload__decide(const struct ferry_daemon *d, struct flow_chain *ch,
		     const struct cfg_flow *flow);

/*
 * The ferry_sessions entry of direction `dir` of `s` (the packet as it
 * arrives, and what it becomes) for stats slot `slot` of worker `worker`,
 * its sides on interfaces `client_ifindex` (where the client is reached)
 * and `upstream_ifindex`.  Pure: the workers' installs and the tests that
 * hold the XDP rewrite to lib/nat.c's (tests/unit/test_offload_bpf.c,
 * tests/fuzz/fuzz_packet.c) build entries with it.
 */
void offload__entry(const struct nat_session *s, enum ferry_dir dir, int client_ifindex,
		    int upstream_ifindex, uint32_t slot, uint32_t worker, struct ferry_sess_key *k,
		    struct ferry_sess *v);

/* worker__create() / worker__destroy(): the worker's slice and the table's hooks. */
int offload__worker_init(struct ferry_worker *w);
void offload__worker_destroy(struct ferry_worker *w);
/* The worker loop, after its TX flush: installs what offload__consider() queued. */
void offload__flush(struct ferry_worker *w);
/* tick(): follows next-hop changes into the installed entries. */
void offload__tick(struct ferry_worker *w);

/*
 * daemon/offload_adopt.c, at start before the workers run: the sessions a
 * run that did not stop left forwarding in XDP (steer__adopting()) become
 * this run's, with their NAT ports, in the workers that own those ports.
 */
int offload__adopt(struct ferry_daemon *d);
/*
 * One of them, `s` already in w's table: its entries `keys`/`vals` (stats
 * slot old_slot, as that run numbered them) rewritten for this run, in a
 * slot of w's slice.  0, or -errno and the entries are the caller's.
 */
int offload__adopt_session(struct ferry_worker *w, struct nat_session *s, uint32_t old_slot,
			   const struct ferry_sess_key keys[2], const struct ferry_sess vals[2]);

/*
 * The main thread's publish: the packets the fast path forwarded for each
 * flow since its counters were last reset, added into what the workers
 * counted (sum of ferry_fwd_stats, and each service's ferry_svc_stats).
 */
struct offload_counts {
	uint64_t client, client_bytes;
	uint64_t reply, reply_bytes;
	/* dropped by the chain's ratelimit in XDP; of all, for the byte bucket */
	uint64_t rl_client, rl_client_bytes;
	uint64_t rl_reply, rl_reply_bytes;
	uint64_t rl_over_bytes;
};
int offload__flow_counts(struct ferry_daemon *d, uint32_t flow_id, struct offload_counts *out);
void offload__add_fwd(const struct offload_counts *c, struct ferry_fwd_stats *st);
void offload__add_svc(const struct ferry_daemon *d, uint32_t flow_id, int pos,
		      const struct offload_counts *c, struct ferry_svc_stats *st);
/*
 * daemon/offload_egress.c, main thread, at start and every publish: which
 * interfaces can take the fast path's redirects now, into ferry_tx_ports.
 */
void offload__follow_egress(struct ferry_daemon *d);
/*
 * At start and when a reload adds flow_id: its chain's ratelimit into the
 * fast path's ferry_rl_params (none when not `configured`, or the flow is
 * not offloaded, or has no ratelimit).  0 or -errno.
 */
int offload__write_ratelimit(struct ferry_daemon *d, uint32_t flow_id, bool configured);
/*
 * The fast-path slot of s (its ferry_sess_stats keys are slot * 2 + enum
 * ferry_dir), or -1 when s is not forwarded in XDP.  The owner only.
 */
int64_t offload__stats_slot(const struct ferry_worker *w, const struct nat_session *s);

/*
 * One session direction's per-CPU fast-path record, merged: packets and
 * bytes summed, the latest last_seen_ns, and for TCP the furthest sequence
 * end and acknowledgement (with its window) any CPU saw.
 */
void offload__merge_stats(const struct ferry_sess_stats *percpu, int nr_cpus,
			  struct ferry_sess_stats *out);
/* A flow id's counters start again from 0 (a reload reset it). */
void offload__rebase(struct ferry_daemon *d, uint32_t flow_id);

#endif /* FERRY_OFFLOAD_H */
