// SPDX-License-Identifier: BSD-2-Clause
/*
 * A worker's NAT sessions (see nat.h): the session table with its two hash
 * indexes (client tuple, reply tuple), NAT port allocation from the
 * worker's slice, expiry, early drop under pressure and the per-source
 * session limit, and the header rewrites of a packet through a session
 * (addresses, ports, TTL/hop limit, incremental checksums, the session's
 * MACs).  It owns the sessions' tuples and NAT ports; their next hops
 * (to_upstream/to_client, nh_* fields) are filled by the services from the
 * next-hop cache and only copied here, TCP state is lib/tcp_state.c's, and
 * ICMP error rewrites are lib/icmp.c's.  It never allocates after
 * nat_table__create(), takes no lock (one worker owns a table) and never
 * touches frames beyond the headers it rewrites.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "csum.h"
#include "nat.h"
#include "siphash.h"

/* Keeps both index sizes (2x, rounded up to a power of two) within 32 bits. */
#define NAT_MAX_SESSIONS (1u << 28)
/*
 * Port probes per new session when the range is larger (smaller ranges are
 * tried in full).  Ports are probed linearly from a start the keyed hash of
 * the client tuple picks (unpredictable from outside), so used ports cluster
 * as in a linear-probing table: 1024 probes typically start failing only
 * once one (protocol, egress, upstream, upstream port) key uses about 97% of
 * the range, and they bound the worst-case cost of an insert to 1024
 * reply-index lookups.
 */
#define NAT_PORT_PROBES 1024
/*
 * Reply key spaces (protocol, egress, upstream, upstream port) remembered
 * as used up: see nat_table.full.  A power of two.
 */
#define NAT_FULL_SPACES 16
/*
 * Early drop: slots one attempt looks at (a bounded sample, so a new session
 * under pressure costs O(1)), and the share of the table above which new
 * sessions start evicting droppable ones (1/16 kept free), so that under a
 * flood a legitimate new session usually finds a free slot.
 */
#define NAT_EARLY_DROP_SCAN 16
#define NAT_HEADROOM_SHIFT 4

#define ETH_ALEN 6
#define UDP_CSUM_OFF 6
#define TCP_CSUM_OFF 16

/* An index entry keeps the key's hash so probes and shifts rarely touch a session. */
struct nat_idx_ent {
	uint32_t hash;
	uint32_t ref; /* session slot + 1, 0 = empty */
};

struct nat_table {
	struct nat_session *sessions;
	uint8_t *in_use;
	uint32_t *free_slots; /* stack of free session slots */
	uint32_t nr_free;
	uint32_t capacity;
	uint32_t count;
	uint32_t cursor; /* next slot nat_table__expire() visits */
	struct nat_idx_ent *by_client;
	struct nat_idx_ent *by_reply;
	uint32_t mask; /* index size - 1 */
	struct siphash_key key; /* tuple_hash() */
	uint16_t port_lo, port_hi;
	/*
	 * Key spaces (an upstream tuple with sport 0; family 0: empty slot)
	 * whose last port search failed.  Until a session of that space is
	 * removed, a new session for it fails at once instead of searching
	 * again: once an upstream's ports are used up, each further attempt (a
	 * stream of new clients, or spoofed SYNs) costs one hash, not
	 * NAT_PORT_PROBES lookups.  Direct-mapped: a space pushed out by
	 * another is merely searched again.
	 */
	struct nat_tuple full[NAT_FULL_SPACES];
	struct nat_stats stats;
	/* Pressure guards (nat_table__set_source_limit(), nat_table__set_early_drop()). */
	struct nat_src_ent *by_src; /* session count per client address, NULL = no limit */
	uint32_t src_mask;
	uint32_t src_limit;
	struct siphash_key src_key;
	uint32_t high_water; /* count from which inserts evict a droppable session */
	uint64_t drop_rng;   /* picks the early-drop sample's slots */
	void (*early_drop)(struct nat_session *s, void *ctx);
	void *early_drop_ctx;
	bool early_drop_on;
	void (*removed)(struct nat_session *s, void *ctx);
	void *removed_ctx;
	bool (*busy)(struct nat_session *s, void *ctx);
	void *busy_ctx;
};

static int src_admit(struct nat_table *t, const struct nat_tuple *client, uint32_t *hash);
static void src_inc(struct nat_table *t, const struct nat_tuple *client, uint32_t hash);
static void src_dec(struct nat_table *t, const struct nat_tuple *client);
static void early_drop(struct nat_table *t, uint64_t now_ns);

/*
 * Keyed SipHash-1-3 (lib/siphash.h) of a normalized key: the table's key is
 * random and secret, so nobody outside can choose keys that share a bucket
 * or a probe run, whatever fields they vary (a multiply-rotate hash left the
 * bucket bits constant when only one port varied).  An IPv4 key's addresses
 * share one word (the rest of a normalized v4 address is zero); ports,
 * family, protocol and padding (zero) are read as the last word, so v4 and
 * v6 keys never hash alike.
 */
_Static_assert(offsetof(struct nat_tuple, sport) == 32 && offsetof(struct nat_tuple, pad) == 38,
	       "struct nat_tuple: tuple_hash() reads sport..pad as one word");

static inline uint64_t tuple_hash(const struct siphash_key *key, const struct nat_tuple *k)
{
	uint64_t w[5];

	if (k->family == 4) {
		uint32_t sa, da;

		memcpy(&sa, k->saddr.b, 4);
		memcpy(&da, k->daddr.b, 4);
		w[0] = (uint64_t)sa | (uint64_t)da << 32;
		memcpy(&w[1], &k->sport, 8);
		return siphash13(key, w, 2);
	}
	memcpy(&w[0], k->saddr.b, 16);
	memcpy(&w[2], k->daddr.b, 16);
	memcpy(&w[4], &k->sport, 8);
	return siphash13(key, w, 5);
}

/* Keys compare and hash whole addresses: bytes past a v4 address must be zero. */
static void tuple_normalize(struct nat_tuple *dst, const struct nat_tuple *src)
{
	*dst = *src;
	dst->pad = 0;
	if (dst->family == 4) {
		memset(&dst->saddr.b[4], 0, 12);
		memset(&dst->daddr.b[4], 0, 12);
	}
}

static void addr_copy(union ferry_addr *dst, const union ferry_addr *src, uint8_t family)
{
	if (family == 4) {
		memset(dst, 0, sizeof(*dst));
		memcpy(dst->b, src->b, 4);
	} else {
		*dst = *src;
	}
}

static void tuple_reverse(struct nat_tuple *dst, const struct nat_tuple *src)
{
	dst->saddr = src->daddr;
	dst->daddr = src->saddr;
	dst->sport = src->dport;
	dst->dport = src->sport;
	dst->family = src->family;
	dst->proto = src->proto;
	dst->pad = 0;
}

_Static_assert(sizeof(struct nat_tuple) == 40, "struct nat_tuple: tuple_eq() compares 5 words");

/* Both normalized (tuple_normalize()), so every byte counts, padding included. */
static inline bool tuple_eq(const struct nat_tuple *a, const struct nat_tuple *b)
{
	uint64_t x[5], y[5];

	memcpy(x, a, sizeof(x));
	memcpy(y, b, sizeof(y));
	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]));
}

/* A reply is the reverse of what was sent upstream. */
static bool reply_eq(const struct nat_tuple *sent, const struct nat_tuple *reply)
{
	return sent->sport == reply->dport && sent->dport == reply->sport &&
	       sent->family == reply->family && sent->proto == reply->proto &&
	       !memcmp(&sent->saddr, &reply->daddr, sizeof(sent->saddr)) &&
	       !memcmp(&sent->daddr, &reply->saddr, sizeof(sent->daddr));
}

/* Slot + 1 of the session whose key is `k`, or 0. */
static inline uint32_t idx_find(const struct nat_table *t, bool reply, const struct nat_tuple *k,
				uint32_t hash)
{
	const struct nat_idx_ent *idx = reply ? t->by_reply : t->by_client;

	/* The index is at most half full, so an empty entry always ends the probe. */
	for (uint32_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		const struct nat_session *s;

		if (!idx[i].ref)
			return 0;
		if (idx[i].hash != hash)
			continue;
		s = &t->sessions[idx[i].ref - 1];
		if (reply ? reply_eq(&s->upstream, k) : tuple_eq(&s->client, k))
			return idx[i].ref;
	}
}

static void idx_insert(struct nat_idx_ent *idx, uint32_t mask, uint32_t hash, uint32_t ref)
{
	uint32_t i = hash & mask;

	while (idx[i].ref)
		i = (i + 1) & mask;
	idx[i].hash = hash;
	idx[i].ref = ref;
}

/*
 * Backward-shift deletion: pull each following entry of the run into the hole
 * unless the hole lies before its home bucket, so every entry stays reachable
 * from its home without tombstones.
 */
static void idx_delete(struct nat_idx_ent *idx, uint32_t mask, uint32_t hash, uint32_t ref)
{
	uint32_t hole = hash & mask, j;

	while (idx[hole].ref != ref) {
		if (!idx[hole].ref)
			return;
		hole = (hole + 1) & mask;
	}
	for (j = (hole + 1) & mask; idx[j].ref; j = (j + 1) & mask) {
		uint32_t home = idx[j].hash & mask;

		if (((j - home) & mask) >= ((j - hole) & mask)) {
			idx[hole] = idx[j];
			hole = j;
		}
	}
	idx[hole].ref = 0;
	idx[hole].hash = 0;
}

struct nat_table *nat_table__create(uint32_t max_sessions, uint16_t port_lo, uint16_t port_hi)
{
	struct nat_table *t;
	uint32_t size = 2;
	int err;

	if (!max_sessions || max_sessions > NAT_MAX_SESSIONS || !port_lo || port_lo > port_hi) {
		errno = EINVAL;
		return NULL;
	}
	while (size < 2 * max_sessions)
		size <<= 1;

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->sessions = calloc(max_sessions, sizeof(*t->sessions));
	t->in_use = calloc(max_sessions, sizeof(*t->in_use));
	t->free_slots = calloc(max_sessions, sizeof(*t->free_slots));
	t->by_client = calloc(size, sizeof(*t->by_client));
	t->by_reply = calloc(size, sizeof(*t->by_reply));
	if (!t->sessions || !t->in_use || !t->free_slots || !t->by_client || !t->by_reply) {
		nat_table__destroy(t);
		errno = ENOMEM;
		return NULL;
	}
	/* Hand out low slots first: a lightly loaded table touches little memory. */
	for (uint32_t i = 0; i < max_sessions; i++)
		t->free_slots[i] = max_sessions - 1 - i;
	t->nr_free = max_sessions;
	t->capacity = max_sessions;
	t->mask = size - 1;
	/* No guessable key: without entropy the table is not made at all. */
	err = siphash_key_random(&t->key);
	if (err) {
		nat_table__destroy(t);
		errno = -err;
		return NULL;
	}
	t->port_lo = port_lo;
	t->port_hi = port_hi;
	t->high_water = max_sessions - (max_sessions >> NAT_HEADROOM_SHIFT);
	t->drop_rng = t->key.k1 ^ 0x2545f4914f6cdd1dull; /* secret, as the key is */
	if (!t->drop_rng)
		t->drop_rng = 1;
	return t;
}

void nat_table__destroy(struct nat_table *t)
{
	if (!t)
		return;
	free(t->sessions);
	free(t->in_use);
	free(t->free_slots);
	free(t->by_client);
	free(t->by_reply);
	free(t->by_src);
	free(t);
}

uint32_t nat_table__count(const struct nat_table *t)
{
	return t->count;
}

uint32_t nat_table__capacity(const struct nat_table *t)
{
	return t->capacity;
}

const struct nat_session *nat_table__next(const struct nat_table *t, uint32_t *slot,
					 uint32_t limit)
{
	uint32_t end = *slot < t->capacity && t->capacity - *slot > limit ? *slot + limit
									 : t->capacity;

	for (uint32_t i = *slot; i < end; i++) {
		if (!t->in_use[i])
			continue;
		*slot = i + 1;
		return &t->sessions[i];
	}
	*slot = end > *slot ? end : *slot;
	return NULL;
}

const struct nat_stats *nat_table__stats(const struct nat_table *t)
{
	return &t->stats;
}

uint32_t nat_table__bucket(const struct nat_table *t, const struct nat_tuple *k)
{
	struct nat_tuple n;

	tuple_normalize(&n, k);
	return (uint32_t)tuple_hash(&t->key, &n) & t->mask;
}

uint32_t nat_table__nr_buckets(const struct nat_table *t)
{
	return t->mask + 1;
}

struct nat_session *nat_table__lookup_client(struct nat_table *t, const struct nat_tuple *client)
{
	struct nat_tuple k;
	uint32_t ref;

	tuple_normalize(&k, client);
	ref = idx_find(t, false, &k, (uint32_t)tuple_hash(&t->key, &k));
	return ref ? &t->sessions[ref - 1] : NULL;
}

struct nat_session *nat_table__lookup_reply(struct nat_table *t, const struct nat_tuple *reply)
{
	struct nat_tuple k;
	uint32_t ref;

	tuple_normalize(&k, reply);
	ref = idx_find(t, true, &k, (uint32_t)tuple_hash(&t->key, &k));
	return ref ? &t->sessions[ref - 1] : NULL;
}

struct nat_session *nat_table__lookup_reply_hint(struct nat_table *t, struct nat_session *hint,
						 const struct nat_tuple *reply)
{
	/* Compared as integers: a hint from elsewhere must not be dereferenced. */
	uintptr_t off = (uintptr_t)hint - (uintptr_t)t->sessions;
	struct nat_tuple k;

	if (hint && off < (uintptr_t)t->capacity * sizeof(*hint) && off % sizeof(*hint) == 0 &&
	    t->in_use[off / sizeof(*hint)]) {
		/* In use with this reply tuple: the reply index maps it to this session alone. */
		tuple_normalize(&k, reply);
		if (reply_eq(&hint->upstream, &k))
			return hint;
	}
	return nat_table__lookup_reply(t, reply);
}

/*
 * RFC 1624 eqn. 3 terms (~m + m') for a field changing from `from` to `to`,
 * accumulated over all changed fields so each checksum is folded only once;
 * the address terms are shared by the IPv4 header and the L4 pseudo-header.
 */
static inline uint64_t delta_add(uint64_t d, const uint8_t *from, const uint8_t *to, size_t len)
{
	for (size_t i = 0; i < len; i += 4) {
		uint32_t a, b;

		memcpy(&a, from + i, 4);
		memcpy(&b, to + i, 4);
		d += (uint32_t)~a;
		d += b;
	}
	return d;
}

static inline uint64_t delta_add16(uint64_t d, uint16_t from, uint16_t to)
{
	return d + (uint16_t)~from + to;
}

static inline void csum_apply(uint8_t *field, uint64_t d)
{
	uint16_t c;
	uint64_t s;

	memcpy(&c, field, 2);
	s = (uint16_t)~c + d;
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	c = csum_fold((uint32_t)s);
	memcpy(field, &c, 2);
}

/*
 * A sum of RFC 1624 terms folded to 16 bits with end-around carry.  Never 0:
 * every rewrite has a non-zero term (a field that keeps its value adds
 * ~m + m = 0xffff), which keeps csum_apply16()'s result the one a full
 * computation gives.
 */
static inline uint16_t fold_delta(uint64_t d)
{
	d = (d & 0xffffffff) + (d >> 32);
	d = (d & 0xffffffff) + (d >> 32);
	d = (d & 0xffff) + (d >> 16);
	d = (d & 0xffff) + (d >> 16);
	d = (d & 0xffff) + (d >> 16);
	return (uint16_t)d;
}

/* A checksum field after a change of `d` (from fold_delta()): one fold suffices. */
static inline void csum_apply16(uint8_t *field, uint16_t d)
{
	uint32_t s;
	uint16_t c;

	memcpy(&c, field, 2);
	s = (uint32_t)(uint16_t)~c + d;
	s = (s & 0xffff) + (s >> 16);
	c = (uint16_t)~s;
	memcpy(field, &c, 2);
}

/*
 * The rewrite of a packet with tuple `from` into one with tuple `to`.  The
 * TTL term: decrementing the TTL, the high byte of the 16-bit word it shares
 * with the protocol, subtracts the word {1, 0} read in host order, so its
 * RFC 1624 term ~m + (m - x) is 0xffff - x whatever the TTL (at least 2, or
 * the packet is dropped first, so nothing borrows from the protocol byte).
 */
static void rw_prepare(struct nat_rw *rw, const struct nat_tuple *from, const struct nat_tuple *to)
{
	static const uint8_t ttl_one[2] = {1, 0};
	size_t alen = from->family == 4 ? 4 : 16;
	uint16_t x;
	uint64_t d;

	memcpy(&x, ttl_one, 2);
	d = delta_add(0, from->saddr.b, to->saddr.b, alen);
	d = delta_add(d, from->daddr.b, to->daddr.b, alen);
	rw->ip_delta = fold_delta(d + (uint16_t)(0xffff - x));
	rw->sport = htons(to->sport);
	rw->dport = htons(to->dport);
	d = delta_add16(d, htons(from->sport), rw->sport);
	d = delta_add16(d, htons(from->dport), rw->dport);
	rw->l4_delta = fold_delta(d);
	rw->ready = true;
}

/* The slot of nat_table.full for `up`'s key space, and the space in `space`. */
static struct nat_tuple *full_slot(struct nat_table *t, const struct nat_tuple *up,
				   struct nat_tuple *space)
{
	*space = *up;
	space->sport = 0;
	return &t->full[tuple_hash(&t->key, space) & (NAT_FULL_SPACES - 1)];
}

/*
 * Find a NAT port for `up` (everything but sport set) whose reply key is free.
 * The start depends on the client so that concurrent clients of one upstream
 * spread over the range instead of all probing up from port_lo.  A space
 * found used up is remembered (nat_table.full), so its next attempts cost
 * no search until one of its sessions is removed.
 */
static int alloc_port(struct nat_table *t, struct nat_tuple *up, uint64_t client_hash,
		      uint32_t *reply_hash)
{
	uint32_t n = (uint32_t)t->port_hi - t->port_lo + 1;
	uint32_t tries = n < NAT_PORT_PROBES ? n : NAT_PORT_PROBES;
	uint32_t off = (uint32_t)(client_hash >> 32) % n;
	struct nat_tuple reply, space, *full = full_slot(t, up, &space);

	if (full->family && tuple_eq(full, &space)) {
		t->stats.port_full_skips++;
		return -EADDRNOTAVAIL;
	}
	for (uint32_t i = 0; i < tries; i++) {
		uint32_t h;

		up->sport = (uint16_t)(t->port_lo + off);
		tuple_reverse(&reply, up);
		h = (uint32_t)tuple_hash(&t->key, &reply);
		t->stats.port_probes++;
		if (!idx_find(t, true, &reply, h)) {
			*reply_hash = h;
			return 0;
		}
		if (++off == n)
			off = 0;
	}
	*full = space;
	return -EADDRNOTAVAIL;
}

/*
 * A session of `key` (normalized, its hash client_hash) sent as `up` (NAT
 * port chosen, its reply's hash reply_hash) in a free slot, indexed both
 * ways and counted for its source: what insert and adopt share once they
 * have checked everything.
 */
static struct nat_session *place(struct nat_table *t, const struct nat_tuple *key,
				 const struct nat_tuple *up, uint64_t client_hash,
				 uint32_t reply_hash, uint32_t src_h, uint32_t flow_id,
				 uint64_t now_ns)
{
	uint32_t slot = t->free_slots[--t->nr_free];
	struct nat_session *s = &t->sessions[slot];
	struct nat_tuple reply_in, reply_out;

	memset(s, 0, sizeof(*s));
	s->client = *key;
	s->upstream = *up;
	rw_prepare(&s->rw_upstream, key, up);
	/* A reply arrives as upstream -> egress:nat_port and leaves as flow -> client. */
	tuple_reverse(&reply_in, up);
	tuple_reverse(&reply_out, key);
	rw_prepare(&s->rw_client, &reply_in, &reply_out);
	s->last_seen_ns = now_ns;
	s->created_ns = now_ns;
	s->flow_id = flow_id;
	s->id = slot;
	idx_insert(t->by_client, t->mask, (uint32_t)client_hash, slot + 1);
	idx_insert(t->by_reply, t->mask, reply_hash, slot + 1);
	t->in_use[slot] = 1;
	t->count++;
	src_inc(t, key, src_h);
	return s;
}

int nat_table__insert(struct nat_table *t, const struct nat_tuple *client,
		      const union ferry_addr *egress, const union ferry_addr *upstream,
		      uint16_t upstream_port, uint32_t flow_id, uint64_t now_ns,
		      struct nat_session **out)
{
	struct nat_tuple key, up = {0};
	struct nat_session *s;
	uint32_t reply_hash, src_h = 0;
	uint64_t client_hash;
	int err;

	if (client->family != 4 && client->family != 6)
		return -EINVAL;
	tuple_normalize(&key, client);
	client_hash = tuple_hash(&t->key, &key);
	if (idx_find(t, false, &key, (uint32_t)client_hash))
		return -EEXIST;
	err = src_admit(t, &key, &src_h);
	if (err)
		return err;
	if (t->early_drop_on && t->count >= t->high_water)
		early_drop(t, now_ns);
	if (!t->nr_free)
		return -ENOSPC;

	addr_copy(&up.saddr, egress, key.family);
	addr_copy(&up.daddr, upstream, key.family);
	up.dport = upstream_port;
	up.family = key.family;
	up.proto = key.proto;
	err = alloc_port(t, &up, client_hash, &reply_hash);
	if (err)
		return err;

	s = place(t, &key, &up, client_hash, reply_hash, src_h, flow_id, now_ns);
	if (out)
		*out = s;
	return 0;
}

int nat_table__adopt(struct nat_table *t, const struct nat_tuple *client,
		     const struct nat_tuple *upstream, uint32_t flow_id, uint64_t now_ns,
		     struct nat_session **out)
{
	struct nat_tuple key, up, reply_in;
	uint32_t reply_hash, src_h = 0;
	uint64_t client_hash;
	int err;

	if ((client->family != 4 && client->family != 6) || upstream->family != client->family ||
	    upstream->proto != client->proto)
		return -EINVAL;
	if (upstream->sport < t->port_lo || upstream->sport > t->port_hi)
		return -ERANGE;
	tuple_normalize(&key, client);
	tuple_normalize(&up, upstream);
	client_hash = tuple_hash(&t->key, &key);
	if (idx_find(t, false, &key, (uint32_t)client_hash))
		return -EEXIST;
	tuple_reverse(&reply_in, &up);
	reply_hash = (uint32_t)tuple_hash(&t->key, &reply_in);
	if (idx_find(t, true, &reply_in, reply_hash))
		return -EADDRINUSE;
	err = src_admit(t, &key, &src_h);
	if (err)
		return err;
	if (!t->nr_free)
		return -ENOSPC;
	*out = place(t, &key, &up, client_hash, reply_hash, src_h, flow_id, now_ns);
	return 0;
}

void nat_table__remove(struct nat_table *t, struct nat_session *s)
{
	struct nat_tuple reply, space, *full;
	uint32_t slot;

	/* A stale pointer must not free a slot twice or unlink another session. */
	if (!s)
		return;
	slot = s->id;
	if (slot >= t->capacity || &t->sessions[slot] != s || !t->in_use[slot])
		return;
	if (t->removed)
		t->removed(s, t->removed_ctx);

	/* A port of its key space is free again: the next session may search. */
	full = full_slot(t, &s->upstream, &space);
	if (full->family && tuple_eq(full, &space))
		full->family = 0;
	tuple_reverse(&reply, &s->upstream);
	idx_delete(t->by_client, t->mask, (uint32_t)tuple_hash(&t->key, &s->client), slot + 1);
	idx_delete(t->by_reply, t->mask, (uint32_t)tuple_hash(&t->key, &reply), slot + 1);
	t->in_use[slot] = 0;
	t->free_slots[t->nr_free++] = slot;
	t->count--;
	src_dec(t, &s->client);
}

uint32_t nat_table__expire(struct nat_table *t, uint64_t now_ns, uint64_t timeout_ns,
			   uint32_t budget, void (*expired)(struct nat_session *, void *),
			   void *ctx)
{
	uint32_t removed = 0;

	/* More than one lap per call would only revisit sessions already checked. */
	if (budget > t->capacity)
		budget = t->capacity;
	while (budget-- && t->count) {
		uint32_t slot = t->cursor;
		struct nat_session *s = &t->sessions[slot];

		if (++t->cursor == t->capacity)
			t->cursor = 0;
		if (!t->in_use[slot])
			continue;
		/* A last_seen ahead of now (clock taken on another CPU) is not idle. */
		if (now_ns <= s->last_seen_ns ||
		    now_ns - s->last_seen_ns <= (s->timeout_ns ? s->timeout_ns : timeout_ns))
			continue;
		if (t->busy && t->busy(s, t->busy_ctx) &&
		    (now_ns <= s->last_seen_ns ||
		     now_ns - s->last_seen_ns <= (s->timeout_ns ? s->timeout_ns : timeout_ns)))
			continue;
		if (expired)
			expired(s, ctx);
		nat_table__remove(t, s);
		removed++;
	}
	return removed;
}

uint32_t nat_table__remove_flows(struct nat_table *t, uint64_t flow_mask)
{
	uint32_t removed = 0;

	for (uint32_t slot = 0; slot < t->capacity && t->count; slot++) {
		struct nat_session *s = &t->sessions[slot];

		if (!t->in_use[slot] || s->flow_id >= 64 || !(flow_mask >> s->flow_id & 1))
			continue;
		nat_table__remove(t, s);
		removed++;
	}
	return removed;
}

uint32_t nat_table__remove_if(struct nat_table *t, uint64_t flow_mask,
			      bool (*gone)(const struct nat_session *s, void *arg), void *arg)
{
	uint32_t removed = 0;

	for (uint32_t slot = 0; slot < t->capacity && t->count; slot++) {
		struct nat_session *s = &t->sessions[slot];

		if (!t->in_use[slot] || s->flow_id >= 64 || !(flow_mask >> s->flow_id & 1) ||
		    !gone(s, arg))
			continue;
		nat_table__remove(t, s);
		removed++;
	}
	return removed;
}

void nat_tuple_from_pkt(struct nat_tuple *t, const struct pkt_info *pi)
{
	t->saddr = pi->saddr;
	t->daddr = pi->daddr;
	t->sport = pi->sport;
	t->dport = pi->dport;
	t->family = pi->family;
	t->proto = pi->l4_proto;
	t->pad = 0;
}

/*
 * The L4 checksum after a change of `d`, either a 64-bit sum of terms or
 * (`folded`) one already folded to 16 bits; UDP/IPv4 without a checksum
 * keeps none.
 */
static inline void l4_csum_update(const struct pkt_info *pi, uint8_t *l4, uint64_t d, bool folded)
{
	uint8_t *l4_csum;

	if (pi->l4_proto == IPPROTO_UDP) {
		l4_csum = l4 + UDP_CSUM_OFF;
		/* UDP/IPv4 checksum 0 means none: leave it so. */
		if (pi->family == 4 && !l4_csum[0] && !l4_csum[1])
			return;
	} else {
		l4_csum = l4 + TCP_CSUM_OFF;
	}
	if (folded)
		csum_apply16(l4_csum, (uint16_t)d);
	else
		csum_apply(l4_csum, d);
	/* 0 would read as "no checksum" (RFC 768): send its other form. */
	if (pi->l4_proto == IPPROTO_UDP && !l4_csum[0] && !l4_csum[1])
		l4_csum[0] = l4_csum[1] = 0xff;
}

/* What every rewrite checks first; 0 or the error nat_rewrite_*() returns. */
static inline int rewrite_check(const struct pkt_info *pi, const struct nat_session *s,
				const struct nat_l2 *l2, const uint8_t *ttl)
{
	/* Lookups key on family and protocol; a mismatch would write past the headers. */
	if (pi->family != s->client.family || pi->l4_proto != s->client.proto)
		return -EINVAL;
	if (*ttl <= 1)
		return -ETIMEDOUT;
	if (l2->mtu && (uint32_t)pi->pkt_len - pi->l3_off > l2->mtu)
		return -EMSGSIZE;
	return 0;
}

/*
 * The packet path's rewrite: the session's precomputed deltas, and stores
 * of fixed sizes per family (no per-field checksum arithmetic).
 */
static inline __attribute__((always_inline)) int
rewrite_prepared(uint8_t *frame, const struct pkt_info *pi,
			    const struct nat_session *s, const struct nat_l2 *l2,
			    const struct nat_rw *rw, const union ferry_addr *saddr,
			    const union ferry_addr *daddr)
{
	uint8_t *ip = frame + pi->l3_off;
	uint8_t *l4 = frame + pi->l4_off;
	uint8_t *ttl = pi->family == 4 ? ip + 8 : ip + 7;
	int err = rewrite_check(pi, s, l2, ttl);

	if (err)
		return err;
	memcpy(frame, l2->dst_mac, ETH_ALEN);
	memcpy(frame + ETH_ALEN, l2->src_mac, ETH_ALEN);
	if (pi->family == 4) {
		memcpy(ip + 12, saddr->b, 4);
		memcpy(ip + 16, daddr->b, 4);
		(*ttl)--;
		csum_apply16(ip + 10, rw->ip_delta);
	} else {
		memcpy(ip + 8, saddr->b, 16);
		memcpy(ip + 24, daddr->b, 16);
		(*ttl)--;
	}
	memcpy(l4, &rw->sport, 2);
	memcpy(l4 + 2, &rw->dport, 2);
	l4_csum_update(pi, l4, rw->l4_delta, true);
	return 0;
}

/* Any other session: the deltas from the packet's own fields. */
static int rewrite(uint8_t *frame, const struct pkt_info *pi, const struct nat_session *s,
		   const struct nat_l2 *l2, const union ferry_addr *saddr, uint16_t sport,
		   const union ferry_addr *daddr, uint16_t dport)
{
	uint8_t *ip = frame + pi->l3_off;
	uint8_t *l4 = frame + pi->l4_off;
	uint8_t *addrs = pi->family == 4 ? ip + 12 : ip + 8; /* destination right after */
	uint8_t *ttl = pi->family == 4 ? ip + 8 : ip + 7;
	size_t alen = pi->family == 4 ? 4 : 16;
	uint16_t old16, new16;
	uint64_t d = 0;
	int err = rewrite_check(pi, s, l2, ttl);

	if (err)
		return err;
	memcpy(frame, l2->dst_mac, ETH_ALEN);
	memcpy(frame + ETH_ALEN, l2->src_mac, ETH_ALEN);

	d = delta_add(d, addrs, saddr->b, alen);
	d = delta_add(d, addrs + alen, daddr->b, alen);
	memcpy(addrs, saddr->b, alen);
	memcpy(addrs + alen, daddr->b, alen);

	if (pi->family == 4) {
		/* TTL and protocol form one 16-bit word of the header checksum. */
		memcpy(&old16, ttl, 2);
		(*ttl)--;
		memcpy(&new16, ttl, 2);
		csum_apply(ip + 10, delta_add16(d, old16, new16));
	} else {
		(*ttl)--;
	}

	memcpy(&old16, l4, 2);
	new16 = htons(sport);
	d = delta_add16(d, old16, new16);
	memcpy(l4, &new16, 2);
	memcpy(&old16, l4 + 2, 2);
	new16 = htons(dport);
	d = delta_add16(d, old16, new16);
	memcpy(l4 + 2, &new16, 2);
	l4_csum_update(pi, l4, d, false);
	return 0;
}

int nat_rewrite_to_upstream(uint8_t *frame, const struct pkt_info *pi, const struct nat_session *s)
{
	if (s->rw_upstream.ready)
		return rewrite_prepared(frame, pi, s, &s->to_upstream, &s->rw_upstream,
					&s->upstream.saddr, &s->upstream.daddr);
	return rewrite(frame, pi, s, &s->to_upstream, &s->upstream.saddr, s->upstream.sport,
		       &s->upstream.daddr, s->upstream.dport);
}

int nat_rewrite_to_client(uint8_t *frame, const struct pkt_info *pi, const struct nat_session *s)
{
	if (s->rw_client.ready)
		return rewrite_prepared(frame, pi, s, &s->to_client, &s->rw_client,
					&s->client.daddr, &s->client.saddr);
	return rewrite(frame, pi, s, &s->to_client, &s->client.daddr, s->client.dport,
		       &s->client.saddr, s->client.sport);
}

/* ---- pressure guards: per-source limit and early drop ---- */

/*
 * One source and how many sessions it has.  An IPv4 source is its address,
 * kept v4-mapped (::ffff:a.b.c.d); an IPv6 source is its /64 prefix (the
 * rest zero), since one host commonly holds a whole /64 and would otherwise
 * get a fresh limit from every address in it.  The two forms never collide:
 * a /64 key has zeros where a v4-mapped key has 0xffff.
 */
struct nat_src_ent {
	uint32_t hash;
	uint32_t count; /* 0 = empty */
	uint8_t addr[16];
};

static void src_addr(uint8_t addr[16], const struct nat_tuple *client)
{
	if (client->family == 4) {
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, client->saddr.b, 4);
	} else {
		memcpy(addr, client->saddr.b, 8);
		memset(addr + 8, 0, 8);
	}
}

static uint32_t src_hash(const struct nat_table *t, const uint8_t addr[16])
{
	uint64_t w[2];

	memcpy(w, addr, 16);
	return (uint32_t)siphash13(&t->src_key, w, 2);
}

/* Index of the entry of `addr`, or of the empty entry that ends its probe. */
static uint32_t src_find(const struct nat_table *t, const uint8_t addr[16], uint32_t hash)
{
	uint32_t i = hash & t->src_mask;

	/* At most half full (one entry per session, twice as many slots): a probe ends. */
	while (t->by_src[i].count &&
	       (t->by_src[i].hash != hash || memcmp(t->by_src[i].addr, addr, 16)))
		i = (i + 1) & t->src_mask;
	return i;
}

/*
 * 0, or -EDQUOT when the client's address already has src_limit sessions;
 * *hash is its key's hash for src_inc() (an early drop in between may move
 * the entry, not change its hash).
 */
static int src_admit(struct nat_table *t, const struct nat_tuple *client, uint32_t *hash)
{
	uint8_t addr[16];

	if (!t->by_src)
		return 0;
	src_addr(addr, client);
	*hash = src_hash(t, addr);
	return t->by_src[src_find(t, addr, *hash)].count >= t->src_limit ? -EDQUOT : 0;
}

static void src_inc(struct nat_table *t, const struct nat_tuple *client, uint32_t h)
{
	struct nat_src_ent *e;
	uint8_t addr[16];

	if (!t->by_src)
		return;
	src_addr(addr, client);
	e = &t->by_src[src_find(t, addr, h)];
	if (!e->count) {
		e->hash = h;
		memcpy(e->addr, addr, 16);
	}
	e->count++;
}

/* The last session of an address gone: backward-shift deletion, as idx_delete(). */
static void src_dec(struct nat_table *t, const struct nat_tuple *client)
{
	uint32_t hole, j, mask = t->src_mask;
	uint8_t addr[16];

	if (!t->by_src)
		return;
	src_addr(addr, client);
	hole = src_find(t, addr, src_hash(t, addr));
	if (!t->by_src[hole].count || --t->by_src[hole].count)
		return;
	for (j = (hole + 1) & mask; t->by_src[j].count; j = (j + 1) & mask) {
		uint32_t home = t->by_src[j].hash & mask;

		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t->by_src[hole] = t->by_src[j];
			hole = j;
		}
	}
	memset(&t->by_src[hole], 0, sizeof(t->by_src[hole]));
}

int nat_table__set_source_limit(struct nat_table *t, uint32_t max_per_source)
{
	uint32_t size = 2;
	int err;

	/* Counts start at an empty table, or they would not match the sessions. */
	if (t->count)
		return -EBUSY;
	free(t->by_src);
	t->by_src = NULL;
	t->src_limit = max_per_source;
	/* At least the table's capacity: the limit could never be reached. */
	if (!max_per_source || max_per_source >= t->capacity)
		return 0;
	err = siphash_key_random(&t->src_key);
	if (err)
		return err;
	while (size < 2 * t->capacity)
		size <<= 1;
	t->by_src = calloc(size, sizeof(*t->by_src));
	if (!t->by_src)
		return -ENOMEM;
	t->src_mask = size - 1;
	return 0;
}

uint32_t nat_table__source_sessions(const struct nat_table *t, const struct nat_tuple *client)
{
	uint8_t addr[16];

	if (!t->by_src)
		return 0;
	src_addr(addr, client);
	return t->by_src[src_find(t, addr, src_hash(t, addr))].count;
}

void nat_table__set_early_drop(struct nat_table *t, void (*dropped)(struct nat_session *, void *),
			       void *ctx)
{
	t->early_drop_on = true;
	t->early_drop = dropped;
	t->early_drop_ctx = ctx;
}

void nat_table__set_remove_hook(struct nat_table *t, void (*removed)(struct nat_session *, void *),
				void *ctx)
{
	t->removed = removed;
	t->removed_ctx = ctx;
}

void nat_table__set_idle_check(struct nat_table *t, bool (*busy)(struct nat_session *, void *),
			       void *ctx)
{
	t->busy = busy;
	t->busy_ctx = ctx;
}

void nat_session__seen(struct nat_session *s, uint64_t now_ns, bool reply)
{
	if (s->packets != UINT32_MAX)
		s->packets++;
	if (reply)
		s->replied = true;
	if (s->replied && !s->assured && now_ns >= s->created_ns &&
	    now_ns - s->created_ns >= NAT_ASSURE_NS)
		s->assured = true;
}

bool nat_session__droppable(const struct nat_session *s)
{
	/*
	 * A TCP session counts as answered while it carries a connection: a
	 * SYN flood's sessions never get there (a SYN-ACK alone is not enough,
	 * the spoofed source never completes the handshake), and one closed by
	 * RST or both FINs only waits out its closing timeout.
	 */
	if (s->client.proto == IPPROTO_TCP)
		return s->tcp.state != TCP_ST_ESTABLISHED && s->tcp.state != TCP_ST_FIN_WAIT;
	return !s->assured;
}

/* xorshift64*: the sample's slots, not predictable from outside (seeded at random). */
static uint32_t drop_pick(struct nat_table *t)
{
	uint64_t x = t->drop_rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->drop_rng = x;
	return (uint32_t)(((x * 0x2545f4914f6cdd1dull) >> 32) * t->capacity >> 32);
}

/*
 * Evicts the least recently seen droppable session among
 * NAT_EARLY_DROP_SCAN slots picked at random, if there is one: a bounded
 * sample, as conntrack's early_drop looks at a bounded part of its table, so
 * that the cost of a new session stays O(1) however full the table is.
 * Random rather than consecutive slots, so that sessions to keep that were
 * created together (and sit side by side) cannot hide the droppable ones.
 * Without one, the sample's longest idle assured UDP session, if idle for
 * NAT_IDLE_EVICT_NS: assured sessions a spoofer made go idle.  Established
 * connections are never taken, nor a UDP stream in use: a flood of new
 * tuples cannot push out the sessions that work.
 */
static void early_drop(struct nat_table *t, uint64_t now_ns)
{
	struct nat_session *victim = NULL, *idle = NULL;

	for (uint32_t i = 0; i < NAT_EARLY_DROP_SCAN; i++) {
		/* A table no larger than the sample is looked at whole. */
		uint32_t slot = t->capacity <= NAT_EARLY_DROP_SCAN ? i : drop_pick(t);
		struct nat_session *s;

		if (slot >= t->capacity)
			break;
		s = &t->sessions[slot];
		if (!t->in_use[slot])
			continue;
		if (nat_session__droppable(s)) {
			if (!victim || s->last_seen_ns < victim->last_seen_ns)
				victim = s;
		} else if (s->client.proto == IPPROTO_UDP &&
			   (!idle || s->last_seen_ns < idle->last_seen_ns)) {
			idle = s;
		}
	}
	if (!victim && idle && now_ns >= idle->last_seen_ns &&
	    now_ns - idle->last_seen_ns >= NAT_IDLE_EVICT_NS &&
	    !(t->busy && t->busy(idle, t->busy_ctx) &&
	      (now_ns < idle->last_seen_ns || now_ns - idle->last_seen_ns < NAT_IDLE_EVICT_NS)))
		victim = idle;
	if (!victim)
		return;
	if (t->early_drop)
		t->early_drop(victim, t->early_drop_ctx);
	nat_table__remove(t, victim);
}
