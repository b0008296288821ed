/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Full-NAT sessions and rewrites.
 *
 * A session ties a client's tuple (client -> flow address) to the tuple ferry
 * sends upstream (proxy egress address : NAT port -> upstream).  The table is
 * owned by one worker: no locks.  It is a fixed array of sessions allocated
 * at start (max_sessions), indexed by two open-addressing hash indexes, one
 * keyed by the client tuple, one by the reply tuple (upstream -> egress:nat
 * port); deletion uses backward shift, so there are no tombstones and a full
 * table never degrades lookups.  A full table refuses new sessions
 * (-ENOSPC); it never grows.
 *
 * NAT ports come from the worker's own slice of the configured range, so
 * workers never collide; a port is unique per (protocol, egress address,
 * upstream address, upstream port), the reply key.
 */
#ifndef FERRY_NAT_H
#define FERRY_NAT_H

#include <stdbool.h>
#include <stdint.h>

#include "packet.h"
#include "tcp_state.h"

/* Link-layer next hop for one direction of a session. */
struct nat_l2 {
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	uint16_t port;        /* ferry port index (egress interface) */
	uint16_t mtu;         /* egress MTU */
};

struct nat_tuple {
	union ferry_addr saddr, daddr;
	uint16_t sport, dport; /* host byte order */
	uint8_t family;        /* 4 or 6 */
	uint8_t proto;
	uint16_t pad;
};

/*
 * One direction's rewrite, computed once when the session is created: a
 * packet found through a session index carries exactly the session's tuple,
 * so what its checksums change by is known before it arrives (RFC 1624
 * terms, folded to 16 bits).
 */
struct nat_rw {
	uint16_t ip_delta;     /* IPv4 header checksum: addresses and the TTL decrement */
	uint16_t l4_delta;     /* L4 checksum: pseudo-header addresses and ports */
	uint16_t sport, dport; /* network byte order */
	bool ready;            /* false: rewrite from the packet's own fields */
};

struct nat_session {
	struct nat_tuple client;   /* as received: client -> flow address */
	struct nat_tuple upstream; /* as sent: egress:nat_port -> upstream */
	struct nat_l2 to_upstream;
	struct nat_l2 to_client;
	struct nat_rw rw_upstream; /* client -> upstream */
	struct nat_rw rw_client;   /* reply -> client */
	/*
	 * The next-hop cache entries (lib/nh_cache.h) each direction's L2 comes
	 * from, and the entry generation the copies above were taken at: a
	 * changed route, neighbour or link reaches existing sessions too.
	 * Generation 0 means "not copied yet".
	 */
	uint32_t nh_upstream, nh_client;
	uint32_t nh_upstream_gen, nh_client_gen;
	uint64_t last_seen_ns;
	/* Idle timeout of this session; 0 = the one nat_table__expire() is given. */
	uint64_t timeout_ns;
	uint32_t flow_id;
	uint32_t id;               /* slot in the table */
	bool client_l2_learned;    /* unused: the client's L2 comes from the kernel (nh_cache) */
	bool replied;              /* the upstream answered */
	bool assured;              /* a UDP exchange past NAT_ASSURE_NS: early drop passes it by */
	uint64_t created_ns;
	struct tcp_track tcp;      /* TCP sessions: connection state (tcp_state.h) */
	uint32_t packets;          /* seen by a worker, both directions (saturates) */
	/* Seen by a worker, for ferryctl sessions: [0] client -> upstream, [1] replies. */
	uint64_t dir_packets[2], dir_bytes[2];
	/*
	 * The XDP fast path (daemon/offload.c): the owner's offload slot + 1
	 * while the session is installed there (0: it is not), and when an
	 * install refused for a full map may be tried again.
	 */
	uint32_t offload_slot;
	uint64_t offload_retry_ns;
};

struct nat_table;

/* What choosing NAT ports cost, for the workers' counters. */
struct nat_stats {
	uint64_t port_probes;     /* reply-index lookups made to find a free NAT port */
	/* New sessions refused without a search: their upstream's ports were found used up. */
	uint64_t port_full_skips;
};

/*
 * NULL with errno on failure: EINVAL, ENOMEM, or getrandom()'s error when
 * no key for the indexes' hash can be drawn (the table refuses a guessable
 * one: lib/siphash.h).
 */
struct nat_table *nat_table__create(uint32_t max_sessions, uint16_t port_lo, uint16_t port_hi);
void nat_table__destroy(struct nat_table *t);
uint32_t nat_table__count(const struct nat_table *t);
uint32_t nat_table__capacity(const struct nat_table *t);
const struct nat_stats *nat_table__stats(const struct nat_table *t);
/*
 * Listing (ferryctl sessions), by the table's owner only: the first session
 * in a slot from *slot on, looking at `limit` slots at most; *slot moves
 * past it (or past the slots looked at).  NULL when none was found there:
 * the walk is over when *slot reaches nat_table__capacity().
 */
const struct nat_session *nat_table__next(const struct nat_table *t, uint32_t *slot,
					 uint32_t limit);
/*
 * For tests and benchmarks, not the packet path: the home bucket of `k` in
 * the index it is looked up in (a client tuple in the client index, a reply
 * as received in the reply index; both use the same hash and size), and
 * the number of buckets of each index.
 */
uint32_t nat_table__bucket(const struct nat_table *t, const struct nat_tuple *k);
uint32_t nat_table__nr_buckets(const struct nat_table *t);

struct nat_session *nat_table__lookup_client(struct nat_table *t, const struct nat_tuple *client);
/* `reply` as received from the upstream: upstream -> egress:nat_port. */
struct nat_session *nat_table__lookup_reply(struct nat_table *t, const struct nat_tuple *reply);
/*
 * The same, given `hint`, what a lookup of the same reply returned earlier
 * (or NULL): `hint` itself when it is still a session of this table with
 * exactly that reply tuple, which is what the lookup would return, without
 * hashing; otherwise the lookup.  A stale hint (its session removed, its
 * slot reused, a pointer into another table) only costs the lookup.
 */
struct nat_session *nat_table__lookup_reply_hint(struct nat_table *t, struct nat_session *hint,
						 const struct nat_tuple *reply);

/*
 * New session for `client`, sent from `egress` to `upstream`/`upstream_port`
 * with a free NAT port.  -ENOSPC: table full; -EADDRNOTAVAIL: no free port
 * for that upstream; -EEXIST: the client tuple already has a session;
 * -EDQUOT: the client's address has its limit of sessions (see
 * nat_table__set_source_limit()).
 */
int nat_table__insert(struct nat_table *t, const struct nat_tuple *client,
		      const union ferry_addr *egress, const union ferry_addr *upstream,
		      uint16_t upstream_port, uint32_t flow_id, uint64_t now_ns,
		      struct nat_session **out);
/*
 * A session of a run before this one (ferryd restarted while the XDP fast
 * path forwarded it), with its NAT port: `upstream` as it was sent.
 * -ERANGE: the port is not this table's; -EADDRINUSE: its reply key is
 * taken; else as nat_table__insert().
 */
int nat_table__adopt(struct nat_table *t, const struct nat_tuple *client,
		     const struct nat_tuple *upstream, uint32_t flow_id, uint64_t now_ns,
		     struct nat_session **out);
void nat_table__remove(struct nat_table *t, struct nat_session *s);
/*
 * Remove sessions idle for longer than their own timeout_ns, or timeout_ns
 * for those without one, visiting at most `budget` slots from where the
 * previous call stopped (bounded work per tick).
 * Calls `expired(s, ctx)` before each removal.  Returns how many were removed.
 */
uint32_t nat_table__expire(struct nat_table *t, uint64_t now_ns, uint64_t timeout_ns,
			   uint32_t budget, void (*expired)(struct nat_session *, void *),
			   void *ctx);

/*
 * Removes every session of the flows in `flow_mask` (bit n: flow_id n), for
 * a reload that removed or changed them.  Visits the whole table: not for
 * the packet path.  Returns how many were removed.
 */
uint32_t nat_table__remove_flows(struct nat_table *t, uint64_t flow_mask);
/* The sessions of the flows in flow_mask for which gone() is true (reload's updated flows). */
uint32_t nat_table__remove_if(struct nat_table *t, uint64_t flow_mask,
			      bool (*gone)(const struct nat_session *s, void *arg), void *arg);

/*
 * Guards against a flood of new tuples (spoofed sources), as a conntrack has.
 *
 * Per-source limit: at most `max_per_source` sessions per source in this
 * table, a source being an IPv4 address or an IPv6 /64 prefix (a host
 * commonly holds a whole /64); nat_table__insert() refuses more with
 * -EDQUOT.  0 (or a value not below the capacity) means no limit.  The
 * counts live in a table of their own keyed by SipHash with a key drawn
 * here, so senders cannot aim at its buckets.  Only on an empty table
 * (-EBUSY otherwise); -ENOMEM, or the error of drawing the key.
 */
int nat_table__set_source_limit(struct nat_table *t, uint32_t max_per_source);
/* Sessions of `client`'s source (address, or /64 for IPv6) now (0 without a limit). */
uint32_t nat_table__source_sessions(const struct nat_table *t, const struct nat_tuple *client);
/*
 * Early drop: once the table holds more than 15/16 of its capacity, each
 * insert first evicts the least recently seen unreplied session
 * (nat_session__droppable()) among a bounded sample of 16 slots, calling
 * `dropped(s, ctx)` before its removal.  A sample that holds no droppable
 * session evicts instead its longest idle assured UDP session if that one
 * has been idle for NAT_IDLE_EVICT_NS (a spoofer can make sessions assured,
 * and they go idle), calling `dropped` for it as well; never a TCP
 * connection.  With neither, a full table refuses the insert (-ENOSPC).
 * The eviction frees
 * the session's NAT port and per-source count like nat_table__remove();
 * next-hop entries are not owned by sessions (lib/nh_cache.h), so nothing
 * else is held.  Off until this is called.
 */
void nat_table__set_early_drop(struct nat_table *t, void (*dropped)(struct nat_session *, void *),
			       void *ctx);
/*
 * A UDP session is assured, as conntrack's IPS_ASSURED, once it has had a
 * reply and still carries packets NAT_ASSURE_NS after it was created: a
 * stream, not a single query and its answer (which a spoofed source can
 * draw from a server that answers anyone, as DNS does).
 */
#define NAT_ASSURE_NS (2000ull * 1000 * 1000)
/*
 * How long an assured UDP session must have been idle before early drop
 * may take it, when its sample holds nothing droppable.  A spoofer makes
 * sessions assured blindly (each tuple twice, NAT_ASSURE_NS apart, to an
 * upstream that answers anyone), after which they sit idle.  A second is
 * far beyond the packet spacing of a live stream (voice, games, video and
 * QUIC send every few to few hundred milliseconds), while keeping N such
 * sessions from eviction then costs the spoofer N packets every second, a
 * sustained flood instead of two packets per tuple; a fraction of
 * udp_timeout would let it refresh 10-60 times more slowly.  Only the
 * idlest of the sample goes, only under pressure: an idle legitimate
 * session loses its slot only to a table full of sessions used more
 * recently.
 */
#define NAT_IDLE_EVICT_NS (1000ull * 1000 * 1000)
/*
 * Called in nat_table__remove() for every session that leaves the table,
 * whatever the reason (expiry, early drop, a reload, the service): the
 * owner drops what it keeps beside the table (its XDP fast-path entries).
 */
void nat_table__set_remove_hook(struct nat_table *t, void (*removed)(struct nat_session *, void *),
				void *ctx);
/*
 * Asked by nat_table__expire() before it removes a session that looks idle
 * (and by early drop before it evicts an idle assured one): the hook may
 * learn that the session was seen elsewhere (the XDP fast path forwards
 * without touching last_seen_ns), update s->last_seen_ns and return true to
 * keep it.
 */
void nat_table__set_idle_check(struct nat_table *t, bool (*busy)(struct nat_session *, void *),
			       void *ctx);
/* A packet of `s` at `now_ns`, from the upstream (`reply`) or the client. */
void nat_session__seen(struct nat_session *s, uint64_t now_ns, bool reply);
/* Counts a packet of `bytes` (its frame) of `s` that a worker handled. */
static inline void nat_session__count(struct nat_session *s, bool reply, uint32_t bytes)
{
	s->dir_packets[reply]++;
	s->dir_bytes[reply] += bytes;
}
/*
 * What early drop may take: a UDP session not assured (never answered, or
 * a lone exchange), a TCP one whose handshake never completed or that is
 * closed already (RST, FINs both ways); never an assured UDP stream (unless
 * idle, see NAT_IDLE_EVICT_NS), an established or a half-closed connection.
 */
bool nat_session__droppable(const struct nat_session *s);

/* The tuple of a parsed packet. */
void nat_tuple_from_pkt(struct nat_tuple *t, const struct pkt_info *pi);

/*
 * Rewrite a parsed client packet in place into the upstream packet of `s`
 * (MACs, addresses, ports, TTL - 1, incremental IP and L4 checksums), or an
 * upstream's reply into the packet back to the client.  Return 0, or
 * -ETIMEDOUT when the TTL/hop limit would reach 0 (drop: ttl_exceeded), or
 * -EMSGSIZE when the packet exceeds the egress MTU (drop: too_big).
 *
 * A session from nat_table__insert() applies its precomputed checksum
 * deltas (struct nat_rw), which are right only for a packet of exactly the
 * session's tuple, as the index lookups return.  Any other session (a
 * template such as mirror's, with rw.ready false) rewrites from the
 * packet's own fields.
 */
int nat_rewrite_to_upstream(uint8_t *frame, const struct pkt_info *pi,
			    const struct nat_session *s);
int nat_rewrite_to_client(uint8_t *frame, const struct pkt_info *pi, const struct nat_session *s);

#endif /* FERRY_NAT_H */
