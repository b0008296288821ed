/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A worker's next-hop cache: for each (family, destination) the worker sends
 * to, the egress port, source and neighbour MAC and MTU, as the kernel's
 * routes and neighbours say, with a state and a generation.
 *
 * Sessions keep an entry's index and the generation at which they copied its
 * L2; any change to an entry bumps its generation, so the next packet of
 * every session using it picks the change up.  A slot that is freed and
 * reused for another destination bumps it too, and the session finds its
 * destination's entry again by key.  Entries change only through the
 * kernel's notifications (nh_cache__event()) and the lookups they cause, so
 * existing sessions follow route, neighbour and link changes without a
 * restart and without a syscall per packet.
 *
 * Lookups (syscalls) happen on a miss, on notifications, and on retries of
 * failed entries at most once per retry interval.  A route change re-resolves
 * every entry, a budgeted number per nh_cache__maintain() call, since any
 * route may change which interface or gateway a destination uses.  For
 * destinations that senders choose (clients), nh_cache__prepare_deferred()
 * queues those lookups instead, for nh_cache__run_lookups() to make within a
 * budget, so that a flood of new sources never makes the packet path wait on
 * the kernel; and a new entry whose neighbour another entry has resolved
 * (clients behind one gateway) takes its MAC without asking.
 *
 * While an entry's neighbour is being resolved, packets for it are held in a
 * bounded FIFO per entry (frames from one pool shared by all entries) instead
 * of being dropped, and go out in order, with the now known MACs, as soon as
 * the neighbour is usable.  Frames that wait longer than the hold time, or
 * find the queue full, are dropped (no_neighbour).  A held frame stays
 * "held" in the UMEM accounting: it belongs to the cache's owner until
 * ops->release() hands it back.
 *
 * The cache does no I/O itself: the owner gives it the lookups (ops), so the
 * unit tests can run it against a fake kernel.  One worker owns it: no locks.
 */
#ifndef FERRY_NH_CACHE_H
#define FERRY_NH_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "nat.h"
#include "nexthop.h"
#include "packet.h"

/* Upper bound of nh_cache_params.hold_per_entry. */
#define NH_HOLD_MAX 32

enum nh_state {
	NH_FREE = 0,
	NH_RESOLVED,   /* l2 complete: send */
	NH_RESOLVING,  /* the kernel is resolving the neighbour: hold */
	NH_UNRESOLVED, /* no usable neighbour: drop until retry_ns, then ask again */
	NH_NO_ROUTE,   /* no route through a ferry interface: drop until retry_ns */
	NH_QUEUED,     /* new, its kernel lookup queued (nh_cache__prepare_deferred()): hold */
};

/* What to do with one packet towards an entry. */
enum nh_verdict {
	NH_SEND = 0, /* the session's l2 copy is complete */
	NH_HOLD,     /* hand the rewritten frame to nh_cache__hold() */
	NH_NO_ROUTE_DROP,
	NH_NO_NEIGHBOUR_DROP,
};

/* A frame waiting for its neighbour. */
struct nh_held {
	uint8_t *data; /* frame start; the MACs are written at release */
	uint64_t addr; /* UMEM address */
	uint32_t len;
	uint32_t flow_id;
	uint8_t dir;
};

struct nh_entry {
	union ferry_addr dst; /* key, with family */
	union ferry_addr nb;  /* the neighbour: the gateway, or dst when on-link */
	struct nat_l2 l2;     /* port, MTU and source MAC with a route; dst_mac when RESOLVED */
	uint64_t last_used_ns;
	uint64_t retry_ns; /* RESOLVING: re-read; UNRESOLVED/NO_ROUTE: ask again */
	uint32_t gen;	   /* never 0, so a session's 0 always means "not copied" */
	uint32_t epoch;	   /* the cache's route epoch this entry was resolved in */
	int ifindex;
	uint8_t family;	   /* AF_INET or AF_INET6 */
	uint8_t nb_family; /* may differ from family: IPv4 via an IPv6 gateway */
	uint8_t state;	   /* enum nh_state */
	bool neigh_check;  /* re-read the neighbour too at the next re-resolve */
	bool queued;	   /* on the lookup queue (nh_cache__prepare_deferred()) */
	/* private to nh_cache.c */
	uint32_t qprev, qnext;	       /* lookup queue, slot + 1 */
	uint32_t hnext, nnext;	       /* key and neighbour chains, slot + 1 */
	uint32_t hold_head, hold_tail; /* hold pool slots + 1 */
	uint32_t nr_held;
	uint32_t pending_pos; /* in the RESOLVING list */
};

struct nh_cache_ops {
	/* As nh_resolver__route(). */
	int (*route)(void *ctx, int family, const union ferry_addr *dst, struct nh_route *out);
	/* As nh_resolver__neigh(): 0 usable, -EAGAIN being resolved, else unusable. */
	int (*neigh)(void *ctx, int family, const union ferry_addr *addr, int ifindex,
		     uint8_t mac[6]);
	/* ferry port index of an interface, or -ENOENT. */
	int (*port_of_ifindex)(void *ctx, int ifindex);
	/*
	 * Held frames leave the queue, oldest first: to be sent through e->l2
	 * (NH_SEND) or dropped for the reason `v`.  The callee owns them again.
	 */
	void (*release)(void *ctx, const struct nh_entry *e, const struct nh_held *h, uint32_t n,
			enum nh_verdict v);
};

struct nh_cache_params {
	char name[32];		 /* log prefix, e.g. "worker 0" */
	uint32_t capacity;	 /* entries */
	uint32_t hold_frames;	 /* held frames of all entries together */
	uint32_t hold_per_entry; /* 1..NH_HOLD_MAX */
	uint64_t hold_ns;	 /* longest wait of a held frame */
	uint64_t retry_ns;	 /* between asking again for a failed neighbour or route */
	uint64_t idle_ns;	 /* an entry unused for this long is forgotten */
};

struct nh_cache_stats {
	uint64_t lookups;      /* route lookups (misses, re-resolves, retries) */
	uint64_t events;       /* notifications handled */
	uint64_t changes;      /* generation bumps of live entries */
	uint64_t held;	       /* frames put on hold */
	uint64_t released;     /* held frames sent */
	uint64_t hold_dropped; /* held or refused frames dropped */
	uint64_t deferred;     /* lookups nh_cache__prepare_deferred() queued */
	uint64_t neigh_shared; /* new routes whose neighbour another entry knew: no lookup */
	uint32_t entries;      /* in use now */
	uint32_t holding;      /* frames held now */
	uint32_t resolving;    /* entries RESOLVING now */
	uint32_t dirty;	       /* entries waiting to be re-resolved */
	uint32_t queue_len;    /* entries on the lookup queue now */
};

struct nh_cache;

int nh_cache__create(struct nh_cache **out, const struct nh_cache_params *p,
		     const struct nh_cache_ops *ops, void *ctx);
/* Drops what is still held (no_neighbour) through ops->release(). */
void nh_cache__destroy(struct nh_cache *c);

/*
 * For one packet of a session direction towards (family, dst): the session
 * keeps the entry's index in *idx and the generation of its L2 copy in *gen
 * (0 for a new session).  Finds the entry (looking it up in the kernel on a
 * miss), refreshes *l2 when the entry changed, and says what to do.
 */
enum nh_verdict nh_cache__prepare(struct nh_cache *c, int family, const union ferry_addr *dst,
				  uint32_t *idx, uint32_t *gen, struct nat_l2 *l2, uint64_t now_ns);
/*
 * The same without any kernel lookup: a miss, a due retry or a route change
 * queues the lookup for nh_cache__run_lookups() instead, and a new entry's
 * packets are held (NH_HOLD) until it is made.  For destinations senders
 * choose (the clients): a flood of new sources then costs the packet path
 * no syscall, and a client whose entry is known never waits for another.
 */
enum nh_verdict nh_cache__prepare_deferred(struct nh_cache *c, int family,
					   const union ferry_addr *dst, uint32_t *idx,
					   uint32_t *gen, struct nat_l2 *l2, uint64_t now_ns);
/* Holds a frame after NH_HOLD; -ENOBUFS when the queue or the pool is full (drop it). */
int nh_cache__hold(struct nh_cache *c, uint32_t idx, const struct nh_held *h, uint64_t now_ns);

/* Follows one kernel notification. */
void nh_cache__event(struct nh_cache *c, const struct nh_event *ev, uint64_t now_ns);
/*
 * Re-resolves at most `budget` entries after a route change, expires held
 * frames and re-reads entries resolving for too long, and forgets idle ones.
 */
void nh_cache__maintain(struct nh_cache *c, uint64_t now_ns, uint32_t budget);

const struct nh_entry *nh_cache__entry(const struct nh_cache *c, uint32_t idx);
/* The entry of (family, dst), or NULL; no lookup, no side effect. */
const struct nh_entry *nh_cache__find(const struct nh_cache *c, int family,
				      const union ferry_addr *dst);
void nh_cache__stats(const struct nh_cache *c, struct nh_cache_stats *out);
/* True while frames are held, neighbours resolving or lookups queued: drain often. */
bool nh_cache__busy(const struct nh_cache *c);
/*
 * Makes at most `budget` of the queued kernel lookups,
 * oldest first, expiring frames that waited too long; held frames leave as
 * their entries resolve.  Returns the number of lookups made.
 */
uint32_t nh_cache__run_lookups(struct nh_cache *c, uint64_t now_ns, uint32_t budget);
/* Entries waiting on the lookup queue. */
uint32_t nh_cache__queue_len(const struct nh_cache *c);
/* Lookups nh_cache__prepare() has queued so far (a counter, for the callers' stats). */
uint64_t nh_cache__queued_lookups(const struct nh_cache *c);
const char *nh_state_name(enum nh_state s);

#endif /* FERRY_NH_CACHE_H */
