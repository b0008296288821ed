// SPDX-License-Identifier: BSD-2-Clause
/*
 * The next-hop cache (see nh_cache.h).  Entries live in one array allocated
 * at creation; two chained hash indexes lead to them, one by destination
 * (the sessions' key) and one by neighbour and interface (what neighbour
 * notifications name).  Entries that are RESOLVING are also on a list, so
 * that hold timeouts and re-reads never scan the whole array.  Held frames
 * come from a fixed pool.  Nothing is allocated after nh_cache__create().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "log.h"
#include "nh_cache.h"

#define NH_MAX_CAPACITY (1u << 20)
/* Entries the eviction scan compares before taking the least recently used. */
#define NH_EVICT_SCAN 64
/* Slots the idle scan visits per nh_cache__maintain(). */
#define NH_IDLE_SCAN 256

struct nh_hold_slot {
	struct nh_held h;
	uint64_t at_ns;
	uint32_t next; /* slot + 1 */
};

struct nh_cache {
	struct nh_cache_params p;
	const struct nh_cache_ops *ops;
	void *ctx;
	struct nh_entry *e;
	uint32_t cap;
	uint32_t *free_stack;
	uint32_t nr_free;
	uint32_t *hbucket; /* by destination, slot + 1 */
	uint32_t *nbucket; /* by neighbour and ifindex, slot + 1 */
	uint32_t mask;
	uint32_t *pending; /* RESOLVING entries */
	uint32_t nr_pending;
	uint32_t qhead, qtail; /* lookup queue (defer_lookups), slot + 1 */
	struct nh_hold_slot *hold;
	uint32_t hold_free; /* free list, slot + 1 */
	uint32_t epoch;	    /* bumped by every route change */
	uint32_t sweep_cursor, idle_cursor, evict_hand;
	uint64_t seed;
	struct nh_cache_stats st;
};

static unsigned int addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* Keys compare and hash whole unions: bytes past an IPv4 address must be zero. */
static void addr_norm(union ferry_addr *dst, int family, const union ferry_addr *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->b, src->b, addr_len(family));
}

static uint32_t key_hash(const struct nh_cache *c, int family, const union ferry_addr *a,
			 int ifindex)
{
	uint64_t h = c->seed ^ ((uint64_t)(uint32_t)family << 32 | (uint32_t)ifindex);

	for (int i = 0; i < 4; i++) {
		h = (h ^ a->w[i]) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	h *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h >> 32);
}

static uint32_t slot_of(const struct nh_cache *c, const struct nh_entry *e)
{
	return (uint32_t)(e - c->e);
}

static bool debugging(void)
{
	return log__level() >= FERRY_LOG_DEBUG;
}

static const char *dst_str(const struct nh_entry *e, char buf[INET6_ADDRSTRLEN])
{
	if (!inet_ntop(e->family, e->dst.b, buf, INET6_ADDRSTRLEN))
		snprintf(buf, INET6_ADDRSTRLEN, "?");
	return buf;
}

const char *nh_state_name(enum nh_state s)
{
	switch (s) {
	case NH_FREE:
		return "free";
	case NH_RESOLVED:
		return "resolved";
	case NH_RESOLVING:
		return "resolving";
	case NH_UNRESOLVED:
		return "unresolved";
	case NH_NO_ROUTE:
		return "no route";
	case NH_QUEUED:
		return "lookup queued";
	}
	return "?";
}

static void log_entry(const struct nh_cache *c, const struct nh_entry *e, const char *what)
{
	char dbuf[INET6_ADDRSTRLEN], nbuf[INET6_ADDRSTRLEN];
	const uint8_t *m = e->l2.dst_mac;

	if (!debugging())
		return;
	if (!inet_ntop(e->nb_family ?: e->family, e->nb.b, nbuf, sizeof(nbuf)))
		snprintf(nbuf, sizeof(nbuf), "?");
	pr_debug_ratelimited("%s: next hop %s: %s: %s, ifindex %d via %s, port %u, mtu %u, "
			     "mac %02x:%02x:%02x:%02x:%02x:%02x, gen %u",
			     c->p.name, dst_str(e, dbuf), what, nh_state_name(e->state), e->ifindex,
			     nbuf, e->l2.port, e->l2.mtu, m[0], m[1], m[2], m[3], m[4], m[5], e->gen);
}

static void bump(struct nh_cache *c, struct nh_entry *e)
{
	if (!++e->gen)
		e->gen = 1;
	c->st.changes++;
}

/* Puts `e` on the lookup queue: at the back, or at the front for an entry in use. */
static void enqueue(struct nh_cache *c, struct nh_entry *e, bool front)
{
	uint32_t ref = slot_of(c, e) + 1;

	if (e->queued)
		return;
	e->queued = true;
	if (front) {
		e->qprev = 0;
		e->qnext = c->qhead;
		if (c->qhead)
			c->e[c->qhead - 1].qprev = ref;
		else
			c->qtail = ref;
		c->qhead = ref;
	} else {
		e->qnext = 0;
		e->qprev = c->qtail;
		if (c->qtail)
			c->e[c->qtail - 1].qnext = ref;
		else
			c->qhead = ref;
		c->qtail = ref;
	}
	c->st.queue_len++;
}

static void dequeue(struct nh_cache *c, struct nh_entry *e)
{
	if (!e->queued)
		return;
	if (e->qprev)
		c->e[e->qprev - 1].qnext = e->qnext;
	else
		c->qhead = e->qnext;
	if (e->qnext)
		c->e[e->qnext - 1].qprev = e->qprev;
	else
		c->qtail = e->qprev;
	e->qprev = e->qnext = 0;
	e->queued = false;
	c->st.queue_len--;
}

static void set_state(struct nh_cache *c, struct nh_entry *e, enum nh_state s, uint64_t now)
{
	if (e->state == NH_RESOLVING && s != NH_RESOLVING) {
		uint32_t last = c->pending[--c->nr_pending];

		c->pending[e->pending_pos] = last;
		c->e[last].pending_pos = e->pending_pos;
	} else if (s == NH_RESOLVING && e->state != NH_RESOLVING) {
		e->pending_pos = c->nr_pending;
		c->pending[c->nr_pending++] = slot_of(c, e);
		/*
		 * Notifications normally end it first; this re-read is the safety
		 * net, early enough to save the first held frame.
		 */
		e->retry_ns = now + c->p.hold_ns / 2;
	}
	e->state = (uint8_t)s;
}

/* Hands the first `n` held frames of `e` back to the owner. */
static void hold_release(struct nh_cache *c, struct nh_entry *e, uint32_t n, enum nh_verdict v)
{
	struct nh_held out[NH_HOLD_MAX];
	uint32_t k = 0;

	while (k < n && e->hold_head) {
		struct nh_hold_slot *hs = &c->hold[e->hold_head - 1];
		uint32_t next = hs->next;

		out[k++] = hs->h;
		hs->next = c->hold_free;
		c->hold_free = e->hold_head;
		e->hold_head = next;
	}
	if (!e->hold_head)
		e->hold_tail = 0;
	e->nr_held -= k;
	c->st.holding -= k;
	if (v == NH_SEND)
		c->st.released += k;
	else
		c->st.hold_dropped += k;
	if (!k)
		return;
	if (debugging()) {
		char buf[INET6_ADDRSTRLEN];

		pr_debug_ratelimited("%s: next hop %s: %u held frames %s", c->p.name, dst_str(e, buf), k,
			 v == NH_SEND ? "sent" : "dropped");
	}
	c->ops->release(c->ctx, e, out, k, v);
}

static void hold_flush(struct nh_cache *c, struct nh_entry *e, enum nh_verdict v)
{
	if (e->nr_held)
		hold_release(c, e, e->nr_held, v);
}

static void hold_expire(struct nh_cache *c, struct nh_entry *e, uint64_t now)
{
	uint32_t n = 0;

	for (uint32_t ref = e->hold_head; ref; ref = c->hold[ref - 1].next) {
		uint64_t at = c->hold[ref - 1].at_ns;

		if (now < at || now - at < c->p.hold_ns)
			break;
		n++;
	}
	if (n)
		hold_release(c, e, n, NH_NO_NEIGHBOUR_DROP);
}

static void nb_link(struct nh_cache *c, struct nh_entry *e)
{
	uint32_t b = key_hash(c, e->nb_family, &e->nb, e->ifindex) & c->mask;

	e->nnext = c->nbucket[b];
	c->nbucket[b] = slot_of(c, e) + 1;
}

static void chain_unlink(struct nh_cache *c, uint32_t *head, struct nh_entry *e, bool by_nb)
{
	uint32_t want = slot_of(c, e) + 1;

	for (uint32_t *ref = head; *ref;
	     ref = by_nb ? &c->e[*ref - 1].nnext : &c->e[*ref - 1].hnext) {
		if (*ref == want) {
			*ref = by_nb ? e->nnext : e->hnext;
			return;
		}
	}
}

static void nb_unlink(struct nh_cache *c, struct nh_entry *e)
{
	uint32_t b = key_hash(c, e->nb_family, &e->nb, e->ifindex) & c->mask;

	chain_unlink(c, &c->nbucket[b], e, true);
	e->nnext = 0;
}

/* The neighbour is usable with `mac`: send what waited for it. */
static void neigh_usable(struct nh_cache *c, struct nh_entry *e, const uint8_t mac[6], uint64_t now)
{
	if (e->state == NH_RESOLVED && !memcmp(e->l2.dst_mac, mac, 6))
		return;
	memcpy(e->l2.dst_mac, mac, 6);
	bump(c, e);
	set_state(c, e, NH_RESOLVED, now);
	log_entry(c, e, "neighbour known");
	hold_flush(c, e, NH_SEND);
}

static void neigh_unusable(struct nh_cache *c, struct nh_entry *e, uint64_t retry_at, uint64_t now)
{
	if (e->state != NH_UNRESOLVED) {
		bump(c, e);
		set_state(c, e, NH_UNRESOLVED, now);
		log_entry(c, e, "neighbour unusable");
	}
	e->retry_ns = retry_at;
	hold_flush(c, e, NH_NO_NEIGHBOUR_DROP);
}

/* Asks the kernel for the neighbour (it starts resolving when it must). */
static void resolve_neigh(struct nh_cache *c, struct nh_entry *e, uint64_t now)
{
	uint8_t mac[6];
	int err;

	e->neigh_check = false;
	err = c->ops->neigh(c->ctx, e->nb_family, &e->nb, e->ifindex, mac);
	if (!err) {
		neigh_usable(c, e, mac, now);
	} else if (err == -EAGAIN) {
		if (e->state != NH_RESOLVING) {
			bump(c, e);
			set_state(c, e, NH_RESOLVING, now);
			log_entry(c, e, "resolving");
		} else {
			e->retry_ns = now + c->p.hold_ns / 2;
		}
	} else {
		neigh_unusable(c, e, now + c->p.retry_ns, now);
	}
}

/*
 * Another entry already resolved through the same neighbour (a gateway many
 * clients sit behind): its MAC is the kernel's as far as the notifications
 * tell, which every entry of that neighbour follows alike.
 */
static const struct nh_entry *known_neigh(const struct nh_cache *c, const struct nh_entry *e)
{
	uint32_t ref = c->nbucket[key_hash(c, e->nb_family, &e->nb, e->ifindex) & c->mask];

	while (ref) {
		const struct nh_entry *o = &c->e[ref - 1];

		if (o != e && o->state == NH_RESOLVED && o->ifindex == e->ifindex &&
		    o->nb_family == e->nb_family && !memcmp(o->nb.b, e->nb.b, sizeof(e->nb.b)))
			return o;
		ref = o->nnext;
	}
	return NULL;
}

/* Route, interface and neighbour of `e` from the kernel. */
static void resolve(struct nh_cache *c, struct nh_entry *e, uint64_t now, bool force_neigh)
{
	union ferry_addr gw;
	struct nh_route rt;
	uint16_t mtu;
	bool new_nb, new_link;
	int err, port = -1;

	/* Whoever resolves it first, the queue or the route-change sweep, takes it off. */
	dequeue(c, e);
	if (e->state == NH_QUEUED)
		e->state = NH_NO_ROUTE; /* as a new entry: nothing known yet */
	if (e->epoch != c->epoch) {
		e->epoch = c->epoch;
		c->st.dirty--;
	}
	c->st.lookups++;
	err = c->ops->route(c->ctx, e->family, &e->dst, &rt);
	if (!err)
		port = c->ops->port_of_ifindex(c->ctx, rt.ifindex);
	if (err || port < 0) {
		e->retry_ns = now + c->p.retry_ns;
		if (e->state == NH_NO_ROUTE) {
			/* Frames a queued lookup held for it. */
			hold_flush(c, e, NH_NO_ROUTE_DROP);
			return;
		}
		if (e->ifindex)
			nb_unlink(c, e);
		e->ifindex = 0;
		bump(c, e);
		set_state(c, e, NH_NO_ROUTE, now);
		log_entry(c, e, err ? "no route" : "route leaves through a non-ferry interface");
		hold_flush(c, e, NH_NO_ROUTE_DROP);
		return;
	}
	addr_norm(&gw, rt.family, &rt.gateway);
	mtu = (uint16_t)(rt.mtu > 0xffff ? 0xffff : rt.mtu);
	new_nb = e->state == NH_NO_ROUTE || e->ifindex != rt.ifindex || e->nb_family != rt.family ||
		 memcmp(e->nb.b, gw.b, sizeof(gw.b));
	new_link = e->l2.port != port || e->l2.mtu != mtu || memcmp(e->l2.src_mac, rt.src_mac, 6);
	if (new_nb) {
		if (e->ifindex)
			nb_unlink(c, e);
		e->ifindex = rt.ifindex;
		e->nb_family = (uint8_t)rt.family;
		e->nb = gw;
		nb_link(c, e);
	}
	e->l2.port = (uint16_t)port;
	e->l2.mtu = mtu;
	memcpy(e->l2.src_mac, rt.src_mac, 6);
	if (new_nb || new_link) {
		bump(c, e);
		log_entry(c, e, new_nb ? "new route" : "new interface MAC or MTU");
	}
	if (new_nb) {
		const struct nh_entry *peer = known_neigh(c, e);

		/* Until the new neighbour answers, nothing may go to the old one. */
		if (e->state == NH_NO_ROUTE || e->state == NH_RESOLVED)
			set_state(c, e, NH_UNRESOLVED, now);
		/* A known gateway costs a new client behind it no neighbour lookup. */
		if (peer) {
			c->st.neigh_shared++;
			neigh_usable(c, e, peer->l2.dst_mac, now);
		} else {
			resolve_neigh(c, e, now);
		}
	} else if (force_neigh) {
		resolve_neigh(c, e, now);
	}
}

static struct nh_entry *find(const struct nh_cache *c, int family, const union ferry_addr *key)
{
	uint32_t ref = c->hbucket[key_hash(c, family, key, 0) & c->mask];

	while (ref) {
		struct nh_entry *e = &c->e[ref - 1];

		if (e->family == family && !memcmp(e->dst.b, key->b, sizeof(key->b)))
			return e;
		ref = e->hnext;
	}
	return NULL;
}

static void free_entry(struct nh_cache *c, struct nh_entry *e)
{
	uint32_t slot = slot_of(c, e);

	hold_flush(c, e, NH_NO_NEIGHBOUR_DROP);
	dequeue(c, e);
	set_state(c, e, NH_FREE, 0);
	if (e->epoch != c->epoch)
		c->st.dirty--;
	chain_unlink(c, &c->hbucket[key_hash(c, e->family, &e->dst, 0) & c->mask], e, false);
	if (e->ifindex)
		nb_unlink(c, e);
	e->ifindex = 0;
	/* Sessions still naming this slot see the bump and look their key up again. */
	bump(c, e);
	c->free_stack[c->nr_free++] = slot;
	c->st.entries--;
}

/*
 * Frees the least recently used of the next few entries that hold nothing.
 * At most hold_frames entries hold frames and there are more slots than
 * that, so a candidate always exists.
 */
static bool evict(struct nh_cache *c)
{
	struct nh_entry *victim = NULL;
	uint32_t seen = 0;

	for (uint32_t i = 0; i < c->cap && seen < NH_EVICT_SCAN; i++) {
		struct nh_entry *e = &c->e[c->evict_hand];

		if (++c->evict_hand == c->cap)
			c->evict_hand = 0;
		if (e->state == NH_FREE || e->nr_held)
			continue;
		seen++;
		if (!victim || e->last_used_ns < victim->last_used_ns)
			victim = e;
	}
	if (!victim)
		return false;
	if (debugging()) {
		char buf[INET6_ADDRSTRLEN];

		pr_debug_ratelimited("%s: next hop %s: evicted, the cache is full", c->p.name,
			 dst_str(victim, buf));
	}
	free_entry(c, victim);
	return true;
}

static struct nh_entry *insert(struct nh_cache *c, int family, const union ferry_addr *key,
			       uint64_t now, bool defer)
{
	struct nh_entry *e;
	uint32_t slot, gen, b;

	if (!c->nr_free && !evict(c))
		return NULL;
	slot = c->free_stack[--c->nr_free];
	e = &c->e[slot];
	gen = e->gen;
	memset(e, 0, sizeof(*e));
	e->gen = gen;
	bump(c, e);
	e->family = (uint8_t)family;
	e->dst = *key;
	e->state = NH_NO_ROUTE;
	e->epoch = c->epoch;
	e->last_used_ns = now;
	b = key_hash(c, family, key, 0) & c->mask;
	e->hnext = c->hbucket[b];
	c->hbucket[b] = slot + 1;
	c->st.entries++;
	if (defer) {
		e->state = NH_QUEUED;
		enqueue(c, e, false);
		c->st.deferred++;
		return e;
	}
	resolve(c, e, now, true);
	return e;
}

static uint64_t random_seed(void)
{
	struct timespec ts;
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
}

int nh_cache__create(struct nh_cache **out, const struct nh_cache_params *p,
		     const struct nh_cache_ops *ops, void *ctx)
{
	struct nh_cache *c;
	uint32_t buckets = 2;

	if (p->capacity < 2 || p->capacity > NH_MAX_CAPACITY || !p->hold_frames ||
	    !p->hold_per_entry || p->hold_per_entry > NH_HOLD_MAX || !p->hold_ns)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->p = *p;
	/* Fewer frames than slots: eviction always finds an entry holding nothing. */
	if (c->p.hold_frames >= p->capacity)
		c->p.hold_frames = p->capacity - 1;
	c->ops = ops;
	c->ctx = ctx;
	c->cap = p->capacity;
	while (buckets < c->cap)
		buckets <<= 1;
	c->mask = buckets - 1;
	c->e = calloc(c->cap, sizeof(*c->e));
	c->free_stack = calloc(c->cap, sizeof(*c->free_stack));
	c->pending = calloc(c->cap, sizeof(*c->pending));
	c->hbucket = calloc(buckets, sizeof(*c->hbucket));
	c->nbucket = calloc(buckets, sizeof(*c->nbucket));
	c->hold = calloc(c->p.hold_frames, sizeof(*c->hold));
	if (!c->e || !c->free_stack || !c->pending || !c->hbucket || !c->nbucket || !c->hold) {
		nh_cache__destroy(c);
		return -ENOMEM;
	}
	/* Low slots first, so a small working set touches little memory. */
	for (uint32_t i = 0; i < c->cap; i++)
		c->free_stack[i] = c->cap - 1 - i;
	c->nr_free = c->cap;
	for (uint32_t i = 0; i < c->p.hold_frames; i++)
		c->hold[i].next = i + 2 <= c->p.hold_frames ? i + 2 : 0;
	c->hold_free = 1;
	c->seed = random_seed();
	*out = c;
	return 0;
}

void nh_cache__destroy(struct nh_cache *c)
{
	if (!c)
		return;
	/* Only RESOLVING entries and queued new ones hold frames. */
	while (c->e && c->qhead) {
		struct nh_entry *e = &c->e[c->qhead - 1];

		hold_flush(c, e, NH_NO_NEIGHBOUR_DROP);
		dequeue(c, e);
	}
	while (c->e && c->nr_pending) {
		struct nh_entry *e = &c->e[c->pending[c->nr_pending - 1]];

		hold_flush(c, e, NH_NO_NEIGHBOUR_DROP);
		set_state(c, e, NH_UNRESOLVED, 0);
	}
	free(c->e);
	free(c->free_stack);
	free(c->pending);
	free(c->hbucket);
	free(c->nbucket);
	free(c->hold);
	free(c);
}

static enum nh_verdict prepare(struct nh_cache *c, int family, const union ferry_addr *dst,
			       uint32_t *idx, uint32_t *gen, struct nat_l2 *l2, uint64_t now,
			       bool defer)
{
	struct nh_entry *e = *idx < c->cap ? &c->e[*idx] : NULL;
	union ferry_addr key;

	addr_norm(&key, family, dst);
	if (!e || e->state == NH_FREE || e->family != family ||
	    memcmp(e->dst.b, key.b, sizeof(key.b))) {
		e = find(c, family, &key);
		if (!e)
			e = insert(c, family, &key, now, defer);
		if (!e)
			return NH_NO_NEIGHBOUR_DROP;
		*idx = slot_of(c, e);
	}
	e->last_used_ns = now;
	if (defer) {
		/*
		 * What the synchronous mode below looks up now waits on the
		 * queue: an entry in use after a route change at the front (it
		 * keeps its current next hop meanwhile); a due retry at the
		 * back, its packets held meanwhile as the synchronous retry
		 * would hold them while the kernel resolves the neighbour.
		 */
		if (e->state != NH_QUEUED && !e->queued && e->epoch != c->epoch) {
			enqueue(c, e, true);
			c->st.deferred++;
		} else if (!e->queued && (e->state == NH_UNRESOLVED || e->state == NH_NO_ROUTE) &&
			   now >= e->retry_ns) {
			set_state(c, e, NH_QUEUED, now);
			enqueue(c, e, false);
			c->st.deferred++;
		}
	} else if (e->state == NH_QUEUED || e->epoch != c->epoch) {
		/*
		 * Queued by the deferred path, or a route changed: an entry in
		 * use is resolved now, not when the queue or the sweep gets to it.
		 */
		resolve(c, e, now, e->state == NH_QUEUED || e->neigh_check);
	} else if (e->state == NH_UNRESOLVED && now >= e->retry_ns) {
		resolve_neigh(c, e, now);
	} else if (e->state == NH_NO_ROUTE && now >= e->retry_ns) {
		resolve(c, e, now, true);
	}
	if (*gen != e->gen) {
		*l2 = e->l2;
		*gen = e->gen;
	}
	switch (e->state) {
	case NH_RESOLVED:
		return NH_SEND;
	case NH_RESOLVING:
	case NH_QUEUED:
		return NH_HOLD;
	case NH_NO_ROUTE:
		return NH_NO_ROUTE_DROP;
	default:
		return NH_NO_NEIGHBOUR_DROP;
	}
}

enum nh_verdict nh_cache__prepare(struct nh_cache *c, int family, const union ferry_addr *dst,
				  uint32_t *idx, uint32_t *gen, struct nat_l2 *l2, uint64_t now)
{
	return prepare(c, family, dst, idx, gen, l2, now, false);
}

enum nh_verdict nh_cache__prepare_deferred(struct nh_cache *c, int family,
					   const union ferry_addr *dst, uint32_t *idx,
					   uint32_t *gen, struct nat_l2 *l2, uint64_t now)
{
	return prepare(c, family, dst, idx, gen, l2, now, true);
}

int nh_cache__hold(struct nh_cache *c, uint32_t idx, const struct nh_held *h, uint64_t now)
{
	struct nh_entry *e = idx < c->cap ? &c->e[idx] : NULL;
	struct nh_hold_slot *hs;
	uint32_t ref;

	if (!e || (e->state != NH_RESOLVING && e->state != NH_QUEUED) ||
	    e->nr_held >= c->p.hold_per_entry || !c->hold_free) {
		c->st.hold_dropped++;
		return -ENOBUFS;
	}
	ref = c->hold_free;
	hs = &c->hold[ref - 1];
	c->hold_free = hs->next;
	hs->h = *h;
	hs->at_ns = now;
	hs->next = 0;
	if (e->hold_tail)
		c->hold[e->hold_tail - 1].next = ref;
	else
		e->hold_head = ref;
	e->hold_tail = ref;
	e->nr_held++;
	c->st.holding++;
	c->st.held++;
	return 0;
}

static void neigh_event(struct nh_cache *c, struct nh_entry *e, const struct nh_event *ev,
			uint64_t now)
{
	if (ev->type == NH_EV_NEIGH && ev->usable) {
		/*
		 * Our frames bypass the kernel, so it never sees a STALE entry
		 * in use and would never re-confirm it: for an entry in use,
		 * ask as a sender would (the kernel probes it, DELAY/PROBE).
		 */
		if (e->state == NH_RESOLVED && !memcmp(e->l2.dst_mac, ev->mac, 6)) {
			if (ev->state == NUD_STALE && now >= e->last_used_ns &&
			    now - e->last_used_ns < c->p.hold_ns)
				resolve_neigh(c, e, now);
			return;
		}
		neigh_usable(c, e, ev->mac, now);
		return;
	}
	if (ev->type == NH_EV_NEIGH_DEL) {
		if (e->state == NH_RESOLVING) {
			/* Frames are waiting: ask again right away. */
			resolve_neigh(c, e, now);
		} else if (e->state == NH_RESOLVED) {
			/* Asked again by the next packet, so idle entries cause no ARP/ND. */
			bump(c, e);
			set_state(c, e, NH_UNRESOLVED, now);
			e->retry_ns = 0;
			log_entry(c, e, "neighbour removed");
		} else if (e->state == NH_UNRESOLVED) {
			/*
			 * "ip neigh flush" reports FAILED, then the removal: the
			 * kernel forgot the entry, nothing failed, so no back-off.
			 */
			e->retry_ns = 0;
		}
		return;
	}
	if (ev->state & NUD_FAILED) {
		if (e->state == NH_RESOLVED || e->state == NH_RESOLVING)
			neigh_unusable(c, e, now + c->p.retry_ns, now);
		return;
	}
	/* INCOMPLETE: the kernel is resolving it (for us or anyone): hold, do not drop. */
	if ((ev->state & NUD_INCOMPLETE) &&
	    (e->state == NH_RESOLVED || e->state == NH_UNRESOLVED)) {
		bump(c, e);
		set_state(c, e, NH_RESOLVING, now);
		log_entry(c, e, "kernel resolving");
	}
}

static void link_event(struct nh_cache *c, const struct nh_event *ev)
{
	for (uint32_t i = 0; i < c->cap; i++) {
		struct nh_entry *e = &c->e[i];
		bool changed = false;

		if (e->state == NH_FREE || e->state == NH_NO_ROUTE || e->ifindex != ev->ifindex)
			continue;
		if (ev->has_mac && memcmp(e->l2.src_mac, ev->mac, 6)) {
			memcpy(e->l2.src_mac, ev->mac, 6);
			changed = true;
		}
		if (ev->mtu) {
			uint16_t mtu = (uint16_t)(ev->mtu > 0xffff ? 0xffff : ev->mtu);

			if (mtu != e->l2.mtu) {
				e->l2.mtu = mtu;
				changed = true;
			}
		}
		if (changed) {
			bump(c, e);
			log_entry(c, e, "interface changed");
		}
	}
}

void nh_cache__event(struct nh_cache *c, const struct nh_event *ev, uint64_t now)
{
	union ferry_addr key;
	uint32_t ref;

	c->st.events++;
	switch (ev->type) {
	case NH_EV_OVERFLOW:
		/* Neighbour news may be lost too: re-read those as well. */
		for (uint32_t i = 0; i < c->cap; i++)
			if (c->e[i].state != NH_FREE)
				c->e[i].neigh_check = true;
		/* fall through */
	case NH_EV_ROUTE:
	case NH_EV_LINK_DEL:
		/* Any route can change any destination's next hop: all are re-resolved. */
		c->epoch++;
		c->st.dirty = c->st.entries;
		break;
	case NH_EV_LINK:
		link_event(c, ev);
		break;
	case NH_EV_NEIGH:
	case NH_EV_NEIGH_DEL:
		if (ev->family != AF_INET && ev->family != AF_INET6)
			break;
		addr_norm(&key, ev->family, &ev->addr);
		ref = c->nbucket[key_hash(c, ev->family, &key, ev->ifindex) & c->mask];
		while (ref) {
			struct nh_entry *e = &c->e[ref - 1];

			ref = e->nnext;
			if (e->ifindex == ev->ifindex && e->nb_family == ev->family &&
			    !memcmp(e->nb.b, key.b, sizeof(key.b)))
				neigh_event(c, e, ev, now);
		}
		break;
	}
}

void nh_cache__maintain(struct nh_cache *c, uint64_t now, uint32_t budget)
{
	for (uint32_t seen = 0; c->st.dirty && budget && seen < c->cap; seen++) {
		struct nh_entry *e = &c->e[c->sweep_cursor];

		if (++c->sweep_cursor == c->cap)
			c->sweep_cursor = 0;
		if (e->state == NH_FREE || e->epoch == c->epoch)
			continue;
		resolve(c, e, now, e->neigh_check);
		budget--;
	}
	/* Backwards: leaving the list moves its last member into a visited position. */
	for (uint32_t i = c->nr_pending; i-- > 0;) {
		struct nh_entry *e = &c->e[c->pending[i]];

		if (now >= e->retry_ns && budget) {
			budget--;
			resolve_neigh(c, e, now);
		}
		if (e->state == NH_RESOLVING)
			hold_expire(c, e, now);
	}
	for (uint32_t n = 0; n < NH_IDLE_SCAN && c->st.entries; n++) {
		struct nh_entry *e = &c->e[c->idle_cursor];

		if (++c->idle_cursor == c->cap)
			c->idle_cursor = 0;
		if (e->state == NH_FREE || e->state == NH_RESOLVING || now <= e->last_used_ns ||
		    now - e->last_used_ns <= c->p.idle_ns)
			continue;
		free_entry(c, e);
	}
}

const struct nh_entry *nh_cache__entry(const struct nh_cache *c, uint32_t idx)
{
	return idx < c->cap ? &c->e[idx] : NULL;
}

const struct nh_entry *nh_cache__find(const struct nh_cache *c, int family,
				      const union ferry_addr *dst)
{
	union ferry_addr key;

	addr_norm(&key, family, dst);
	return find(c, family, &key);
}

void nh_cache__stats(const struct nh_cache *c, struct nh_cache_stats *out)
{
	*out = c->st;
	out->resolving = c->nr_pending;
}

bool nh_cache__busy(const struct nh_cache *c)
{
	return c->nr_pending != 0 || c->qhead != 0;
}

uint32_t nh_cache__run_lookups(struct nh_cache *c, uint64_t now, uint32_t budget)
{
	uint32_t done = 0;

	while (c->qhead && done < budget) {
		struct nh_entry *e = &c->e[c->qhead - 1];

		dequeue(c, e);
		/* A long queue (a flood of new clients) must not send frames late. */
		hold_expire(c, e, now);
		if (e->state == NH_QUEUED) {
			resolve(c, e, now, true);
		} else if (e->epoch != c->epoch) {
			resolve(c, e, now, e->neigh_check);
		} else if (e->state == NH_UNRESOLVED && now >= e->retry_ns) {
			resolve_neigh(c, e, now);
		} else if (e->state == NH_NO_ROUTE && now >= e->retry_ns) {
			resolve(c, e, now, true);
		} else {
			continue; /* settled meanwhile, by a notification or the sweep */
		}
		done++;
	}
	return done;
}

uint32_t nh_cache__queue_len(const struct nh_cache *c)
{
	return c->st.queue_len;
}

uint64_t nh_cache__queued_lookups(const struct nh_cache *c)
{
	return c->st.deferred;
}
