// SPDX-License-Identifier: BSD-2-Clause
/*
 * The session table's guards against a flood of new tuples: early drop of
 * unreplied sessions under pressure and the per-source session limit
 * (lib/nat.h).  The per-source counts are checked against a plain reference
 * under random churn, the early drop by a simulated flood of spoofed
 * sources during which a legitimate client keeps opening sessions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "nat.h"
#include "unit.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static union ferry_addr v4(uint32_t host_order)
{
	union ferry_addr a = {};

	a.b[0] = (uint8_t)(host_order >> 24);
	a.b[1] = (uint8_t)(host_order >> 16);
	a.b[2] = (uint8_t)(host_order >> 8);
	a.b[3] = (uint8_t)host_order;
	return a;
}

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static struct nat_tuple client4(uint32_t src, uint16_t sport, uint8_t proto)
{
	struct nat_tuple t = {
		.saddr = v4(src),
		.daddr = v4(IP4(198, 18, 1, 1)),
		.sport = sport,
		.dport = 5000,
		.family = 4,
		.proto = proto,
	};

	return t;
}

static struct nat_tuple client6(uint16_t host, uint16_t sport)
{
	struct nat_tuple t = { .sport = sport, .dport = 5000, .family = 6, .proto = IPPROTO_UDP };

	t.saddr.b[0] = 0xfd;
	t.saddr.b[14] = (uint8_t)(host >> 8);
	t.saddr.b[15] = (uint8_t)host;
	t.daddr.b[0] = 0xfd;
	t.daddr.b[15] = 1;
	return t;
}

static const union ferry_addr *egress(void)
{
	static union ferry_addr e;

	e = v4(IP4(198, 18, 2, 1));
	return &e;
}

static const union ferry_addr *upstream(void)
{
	static union ferry_addr u;

	u = v4(IP4(198, 18, 2, 2));
	return &u;
}

static int insert(struct nat_table *t, const struct nat_tuple *c, uint64_t now,
		  struct nat_session **out)
{
	return nat_table__insert(t, c, egress(), upstream(), 6000, 3, now, out);
}

struct dropped_log {
	uint32_t n;
	uint32_t idle;  /* of which assured UDP sessions taken for being idle */
	struct nat_tuple last;
	bool saw_kept; /* the callback was handed a session early drop must keep */
};

static void on_dropped(struct nat_session *s, void *ctx)
{
	struct dropped_log *l = ctx;

	l->n++;
	l->last = s->client;
	if (nat_session__droppable(s))
		return;
	/* Only an assured UDP session may go, and only once idle for long enough. */
	if (s->client.proto == IPPROTO_UDP && s->assured)
		l->idle++;
	else
		l->saw_kept = true;
}

/* What early drop may take: UDP without a reply, TCP not (or no longer) connected. */
static void test_unreplied(void)
{
	struct nat_session s = {};

	s.client.proto = IPPROTO_UDP;
	s.created_ns = 10 * NAT_ASSURE_NS;
	CU_ASSERT(nat_session__droppable(&s));
	/* One question, one answer: what a spoofed source draws from an open resolver. */
	nat_session__seen(&s, s.created_ns + 1, true);
	CU_ASSERT(s.replied);
	CU_ASSERT(nat_session__droppable(&s));
	nat_session__seen(&s, s.created_ns + NAT_ASSURE_NS - 1, false);
	CU_ASSERT(nat_session__droppable(&s));
	/* Still talking after NAT_ASSURE_NS: a stream, kept. */
	nat_session__seen(&s, s.created_ns + NAT_ASSURE_NS, false);
	CU_ASSERT(s.assured);
	CU_ASSERT(!nat_session__droppable(&s));
	/* Without any reply, no age makes it a stream. */
	memset(&s, 0, sizeof(s));
	s.client.proto = IPPROTO_UDP;
	nat_session__seen(&s, 100 * NAT_ASSURE_NS, false);
	CU_ASSERT(nat_session__droppable(&s));
	/* A reply that comes late assures it too (conntrack's rule as well). */
	nat_session__seen(&s, 100 * NAT_ASSURE_NS, true);
	CU_ASSERT(!nat_session__droppable(&s));

	memset(&s, 0, sizeof(s));
	s.client.proto = IPPROTO_TCP;
	s.tcp.state = TCP_ST_SYN_SENT;
	CU_ASSERT(nat_session__droppable(&s));
	/* A SYN-ACK came back, but nobody completed the handshake: a SYN flood's state. */
	s.tcp.state = TCP_ST_SYN_RECV;
	s.replied = true;
	s.assured = true;
	CU_ASSERT(nat_session__droppable(&s));
	s.tcp.state = TCP_ST_ESTABLISHED;
	CU_ASSERT(!nat_session__droppable(&s));
	s.tcp.state = TCP_ST_FIN_WAIT;
	CU_ASSERT(!nat_session__droppable(&s));
	/* Over: a RST (a SYN to a closed port gets one), or FINs both ways. */
	s.tcp.state = TCP_ST_CLOSED;
	CU_ASSERT(nat_session__droppable(&s));
	s.tcp.state = TCP_ST_TIME_WAIT;
	CU_ASSERT(nat_session__droppable(&s));
}

/* A full table: the new session takes a droppable session's slot, never a kept one's. */
static void test_early_drop_full(void)
{
	enum { CAP = 16 };
	struct nat_table *t = nat_table__create(CAP, 20000, 29999);
	struct nat_session *s[CAP], *n = NULL;
	struct dropped_log log = {};
	struct nat_tuple c, r;
	uint16_t victim_port;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	nat_table__set_early_drop(t, on_dropped, &log);
	for (int i = 0; i < CAP; i++) {
		c = client4(IP4(198, 18, 0, 10 + i), 40000, IPPROTO_UDP);
		CU_ASSERT_EQUAL_FATAL(insert(t, &c, 100 + (uint64_t)i, &s[i]), 0);
		/* All assured streams but one, the second oldest. */
		s[i]->assured = i != 1;
	}
	CU_ASSERT_EQUAL(log.n, 1); /* the last insert was above the high-water mark */
	/* That eviction found nothing unreplied but s[1], which it took. */
	CU_ASSERT_EQUAL(log.last.saddr.b[3], 11);
	CU_ASSERT_FALSE(log.saw_kept);
	CU_ASSERT_EQUAL(nat_table__count(t), CAP - 1);

	log = (struct dropped_log){};
	c = client4(IP4(198, 18, 0, 200), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &c, 500, &n), 0);
	CU_ASSERT_EQUAL(log.n, 0); /* a slot was free */
	n->assured = false;
	victim_port = n->upstream.sport;

	/* Full now; the one unreplied session goes for the next. */
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	c = client4(IP4(198, 18, 0, 201), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &c, 600, NULL), 0);
	CU_ASSERT_EQUAL(log.n, 1);
	CU_ASSERT_EQUAL(log.last.saddr.b[3], 200);
	CU_ASSERT_FALSE(log.saw_kept);
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	/* Its indexes and its NAT port are free again. */
	c = client4(IP4(198, 18, 0, 200), 40000, IPPROTO_UDP);
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &c));
	r = (struct nat_tuple){ .saddr = *upstream(), .daddr = *egress(), .sport = 6000,
				.dport = victim_port, .family = 4, .proto = IPPROTO_UDP };
	CU_ASSERT_PTR_NULL(nat_table__lookup_reply(t, &r));

	/* Nothing unreplied left: a full table refuses, and evicts nothing. */
	for (uint32_t i = 0; i < CAP; i++) {
		struct nat_tuple k = client4(IP4(198, 18, 0, 10 + i), 40000, IPPROTO_UDP);
		struct nat_session *x = nat_table__lookup_client(t, &k);

		if (x)
			x->assured = true;
	}
	c = client4(IP4(198, 18, 0, 201), 40000, IPPROTO_UDP);
	nat_table__lookup_client(t, &c)->assured = true;
	log = (struct dropped_log){};
	c = client4(IP4(198, 18, 0, 202), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &c, 700, NULL), -ENOSPC);
	CU_ASSERT_EQUAL(log.n, 0);
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	nat_table__destroy(t);
}

/* Without nat_table__set_early_drop(), a full table refuses as it always did. */
static void test_early_drop_off(void)
{
	struct nat_table *t = nat_table__create(4, 20000, 29999);
	struct nat_tuple c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < 4; i++) {
		c = client4(IP4(198, 18, 0, 10 + i), 40000, IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &c, 1, NULL), 0);
	}
	c = client4(IP4(198, 18, 0, 99), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &c, 2, NULL), -ENOSPC);
	nat_table__destroy(t);
}

/*
 * The sample is bounded: in a full table whose only droppable session is
 * one of 1024, an insert finds it only when one of its 16 picks lands on it
 * (about 1.6% of the time), rather than scanning the table; the refused
 * ones cost 16 looks each.
 */
static void test_early_drop_bounded(void)
{
	enum { CAP = 1024, TRIES = 1000 };
	struct nat_table *t = nat_table__create(CAP, 1024, 65535);
	struct dropped_log log = {};
	struct nat_session *s;
	struct nat_tuple c;
	int refused = 0, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < CAP; i++) {
		c = client4(IP4(198, 18, 4, 0) + (uint32_t)i, 40000, IPPROTO_UDP);
		CU_ASSERT_EQUAL_FATAL(insert(t, &c, 1, &s), 0);
		s->assured = i != CAP / 2;
	}
	nat_table__set_early_drop(t, on_dropped, &log);
	for (i = 0; i < TRIES; i++) {
		c = client4(IP4(198, 19, 0, 0) + (uint32_t)i, 40000, IPPROTO_UDP);
		/* Each new one is droppable in turn: always exactly one. */
		if (insert(t, &c, 2, NULL) == -ENOSPC)
			refused++;
	}
	CU_ASSERT_EQUAL(refused + (int)log.n, TRIES);
	/* A binomial(1000, 1.55%): 0 or 100 evictions are each below 1e-6. */
	CU_ASSERT(log.n > 0 && log.n < 100);
	CU_ASSERT_FALSE(log.saw_kept);
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	nat_table__destroy(t);
}

/*
 * A flood of spoofed sources (one UDP datagram or SYN each, every datagram
 * answered, as an open resolver would) into a small table holding 100
 * assured streams, while a legitimate client opens a session every 50 flood
 * packets and gets its answer 10 packets later: every legitimate session is
 * created and still there for its answer, and no stream is evicted.
 */
static void test_early_drop_flood(void)
{
	enum { CAP = 1024, STREAMS = 100, FLOOD = 100000, EVERY = 50, RTT = 10 };
	struct nat_table *t = nat_table__create(CAP, 1024, 65535);
	struct dropped_log log = {};
	uint32_t legit_ok = 0, legit_tried = 0, legit_answered = 0;
	uint16_t legit_port = 1024, pending = 0;
	const uint64_t us = 1000, t0 = 100 * NAT_ASSURE_NS;
	struct nat_session *s;
	struct nat_tuple c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	nat_table__set_early_drop(t, on_dropped, &log);
	for (int i = 0; i < STREAMS; i++) {
		c = client4(IP4(198, 18, 1, 3), (uint16_t)(50000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL_FATAL(insert(t, &c, t0 - 2 * NAT_ASSURE_NS, &s), 0);
		nat_session__seen(s, t0 - 2 * NAT_ASSURE_NS, true);
		nat_session__seen(s, t0, false);
		CU_ASSERT_FATAL(s->assured);
	}
	for (uint32_t i = 0; i < FLOOD; i++) {
		uint64_t now = t0 + i * us; /* 1 Mpps: the whole flood within 0.1 s */
		uint8_t proto = i & 1 ? IPPROTO_TCP : IPPROTO_UDP;

		c = client4(IP4(198, 19, 0, 0) | (rnd() & 0xffff), (uint16_t)(1024 + rnd() % 60000),
			    proto);
		if (insert(t, &c, now, &s) == 0) {
			if (proto == IPPROTO_TCP)
				s->tcp.state = TCP_ST_SYN_RECV; /* the SYN-ACK went to nobody */
			else
				nat_session__seen(s, now, true);
		}
		if (pending && i % EVERY == RTT) {
			c = client4(IP4(198, 18, 1, 2), pending, IPPROTO_UDP);
			s = nat_table__lookup_client(t, &c);
			if (s) {
				nat_session__seen(s, now, true);
				legit_answered++;
			}
			pending = 0;
		}
		if (i % EVERY)
			continue;
		legit_tried++;
		c = client4(IP4(198, 18, 1, 2), legit_port, IPPROTO_UDP);
		if (insert(t, &c, now, &s) == 0) {
			legit_ok++;
			pending = legit_port;
		}
		legit_port++;
	}
	CU_ASSERT_EQUAL(legit_ok, legit_tried);
	/* The oldest of a sample goes: a session 10 packets old is almost never it. */
	CU_ASSERT(legit_answered >= legit_ok - legit_ok / 100);
	CU_ASSERT_FALSE(log.saw_kept);
	CU_ASSERT(log.n > FLOOD / 2);
	for (int i = 0; i < STREAMS; i++) {
		c = client4(IP4(198, 18, 1, 3), (uint16_t)(50000 + i), IPPROTO_UDP);
		if (!nat_table__lookup_client(t, &c)) {
			CU_FAIL("an assured stream was evicted");
			break;
		}
	}
	CU_ASSERT(nat_table__count(t) <= CAP);
	nat_table__destroy(t);
}

/*
 * A sample with nothing droppable: its idlest assured UDP session goes if
 * idle for NAT_IDLE_EVICT_NS, never a busier one and never a TCP
 * connection, however idle.
 */
static void test_early_drop_idle(void)
{
	enum { CAP = 16 };
	const uint64_t t0 = 100 * NAT_ASSURE_NS;
	struct nat_table *t = nat_table__create(CAP, 20000, 29999);
	struct dropped_log log = {};
	struct nat_session *s[CAP];
	struct nat_tuple c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	nat_table__set_early_drop(t, on_dropped, &log);
	for (int i = 0; i < CAP; i++) {
		c = client4(IP4(198, 18, 0, 10 + i), 40000, IPPROTO_UDP);
		CU_ASSERT_EQUAL_FATAL(insert(t, &c, t0 - NAT_ASSURE_NS, &s[i]), 0);
		nat_session__seen(s[i], t0 - NAT_ASSURE_NS, true);
		/* Last seen 1 ms apart: s[3] the idlest, then s[0], s[1], ... */
		nat_session__seen(s[i], t0 + (uint64_t)i * 1000000, false);
		s[i]->last_seen_ns = t0 + (uint64_t)i * 1000000;
		CU_ASSERT_FATAL(s[i]->assured);
	}
	s[3]->last_seen_ns = t0 - 1;
	CU_ASSERT_EQUAL(log.n, 0);
	/* Not idle for long enough yet: refused, nothing taken. */
	c = client4(IP4(198, 18, 0, 200), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &c, t0 - 1 + NAT_IDLE_EVICT_NS - 1, NULL), -ENOSPC);
	CU_ASSERT_EQUAL(log.n, 0);
	/* Idle for a second: the idlest goes, and only it. */
	CU_ASSERT_EQUAL(insert(t, &c, t0 - 1 + NAT_IDLE_EVICT_NS, NULL), 0);
	CU_ASSERT_EQUAL(log.n, 1);
	CU_ASSERT_EQUAL(log.idle, 1);
	CU_ASSERT_EQUAL(log.last.saddr.b[3], 13);
	CU_ASSERT_FALSE(log.saw_kept);
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	nat_table__destroy(t);

	/* Established TCP connections idle for minutes: never taken. */
	t = nat_table__create(CAP, 20000, 29999);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	log = (struct dropped_log){};
	nat_table__set_early_drop(t, on_dropped, &log);
	for (int i = 0; i < CAP; i++) {
		c = client4(IP4(198, 18, 0, 10 + i), 40000, IPPROTO_TCP);
		CU_ASSERT_EQUAL_FATAL(insert(t, &c, t0, &s[i]), 0);
		s[i]->tcp.state = i & 1 ? TCP_ST_ESTABLISHED : TCP_ST_FIN_WAIT;
		s[i]->replied = s[i]->assured = true;
	}
	c = client4(IP4(198, 18, 0, 200), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &c, t0 + 300 * NAT_IDLE_EVICT_NS, NULL), -ENOSPC);
	CU_ASSERT_EQUAL(log.n, 0);
	nat_table__destroy(t);
}

/*
 * The blind way around early drop (issue 10, item 4): a spoofer sends each
 * tuple twice, NAT_ASSURE_NS apart, to an upstream that answers anyone, so
 * every session it made is assured; repeated, this fills the table with
 * sessions none of which is droppable (built here with early drop off, as
 * the state it converges to).  A second after the spoofer's last round, a
 * legitimate client opening sessions gets every one, the spoofed sessions
 * giving way, while a legitimate stream in use (a packet every 100 ms)
 * keeps its own.
 */
static void test_early_drop_assured_flood(void)
{
	enum { CAP = 1024, LEGIT = 200 };
	const uint64_t ms = 1000 * 1000, t0 = 100 * NAT_ASSURE_NS;
	struct nat_table *t = nat_table__create(CAP, 1024, 65535);
	struct dropped_log log = {};
	struct nat_session *s, *stream;
	struct nat_tuple c, sc;
	uint32_t legit_ok = 0, assured = 0;
	uint64_t now = t0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	sc = client4(IP4(198, 18, 1, 3), 50000, IPPROTO_UDP);
	CU_ASSERT_EQUAL_FATAL(insert(t, &sc, t0 - NAT_ASSURE_NS, &stream), 0);
	nat_session__seen(stream, t0 - NAT_ASSURE_NS, true);
	/* Round one: a packet per spoofed tuple, each answered; round two 2 s later. */
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < CAP - 1; i++) {
			now = t0 + (uint64_t)round * (NAT_ASSURE_NS + 10 * ms) + i * 1000;
			c = client4(IP4(198, 19, 0, 0) + i, 40000, IPPROTO_UDP);
			s = NULL;
			if (round == 0) {
				CU_ASSERT_EQUAL_FATAL(insert(t, &c, now, &s), 0);
			} else {
				s = nat_table__lookup_client(t, &c);
			}
			CU_ASSERT_PTR_NOT_NULL_FATAL(s);
			s->last_seen_ns = now;
			nat_session__seen(s, now, round == 0);
			assured += s->assured;
			/* The stream is alive throughout. */
			stream->last_seen_ns = now;
			nat_session__seen(stream, now, false);
		}
	}
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	CU_ASSERT_EQUAL(assured, CAP - 1);
	CU_ASSERT_FATAL(stream->assured);

	nat_table__set_early_drop(t, on_dropped, &log);
	/* A second later, the legitimate client; its stream still sends every 100 ms. */
	now += NAT_IDLE_EVICT_NS;
	for (uint32_t i = 0; i < LEGIT; i++) {
		now += 5 * ms;
		if (i % 20 == 0) {
			stream->last_seen_ns = now;
			nat_session__seen(stream, now, false);
		}
		c = client4(IP4(198, 18, 1, 2), (uint16_t)(30000 + i), IPPROTO_UDP);
		if (insert(t, &c, now, &s) == 0) {
			legit_ok++;
			nat_session__seen(s, now, true);
		}
	}
	CU_ASSERT_EQUAL(legit_ok, LEGIT);
	CU_ASSERT(log.idle > 0);
	CU_ASSERT_FALSE(log.saw_kept);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &sc), stream);
	nat_table__destroy(t);
}

static void test_source_limit(void)
{
	struct nat_table *t = nat_table__create(64, 20000, 29999);
	struct nat_session *s[4];
	struct nat_tuple a, b, a6;
	uint32_t live;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, 3), 0);
	for (int i = 0; i < 3; i++) {
		a = client4(IP4(198, 18, 1, 2), (uint16_t)(40000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &a, 1, &s[i]), 0);
	}
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a), 3);
	a = client4(IP4(198, 18, 1, 2), 40003, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), -EDQUOT);
	/* Another protocol from the same address counts too. */
	a = client4(IP4(198, 18, 1, 2), 40003, IPPROTO_TCP);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), -EDQUOT);
	/* A known tuple is still told it exists. */
	a = client4(IP4(198, 18, 1, 2), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), -EEXIST);
	/* Other addresses, of either family, have their own counts. */
	b = client4(IP4(198, 18, 1, 3), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &b, 1, NULL), 0);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &b), 1);
	/* ::c612:102 carries the same four bytes as 198.18.1.2: another source. */
	a6 = client6(0, 40000);
	a6.saddr.b[0] = 0;
	memcpy(&a6.saddr.b[12], (uint8_t[]){ 198, 18, 1, 2 }, 4);
	CU_ASSERT_EQUAL(insert(t, &a6, 1, NULL), 0);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a6), 1);

	/* A removal gives the address room again. */
	nat_table__remove(t, s[1]);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a), 2);
	a = client4(IP4(198, 18, 1, 2), 40003, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), 0);
	CU_ASSERT_EQUAL(insert(t, &(struct nat_tuple){ 0 }, 1, NULL), -EINVAL);

	/* Expiry and a reload's removal release counts too. */
	live = nat_table__count(t);
	CU_ASSERT_EQUAL(nat_table__expire(t, 100, 10, 64, NULL, NULL), live);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a), 0);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a6), 0);
	for (int i = 0; i < 3; i++) {
		a = client4(IP4(198, 18, 1, 2), (uint16_t)(41000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &a, 200, NULL), 0);
	}
	CU_ASSERT_EQUAL(nat_table__remove_flows(t, 1ull << 3), 3);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a), 0);

	/* Only on an empty table. */
	CU_ASSERT_EQUAL(insert(t, &b, 300, NULL), 0);
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, 5), -EBUSY);
	nat_table__destroy(t);
}

/*
 * IPv6 sources count per /64: a host holding a whole /64 cannot draw a
 * fresh limit from each of its addresses.  IPv4 sources count per address.
 */
static void test_source_limit_v6_prefix(void)
{
	struct nat_table *t = nat_table__create(64, 20000, 29999);
	struct nat_tuple a, other;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, 3), 0);
	/* fd00::2, fd00::3 and fd00::4 (one /64), then the whole low 64 bits varied. */
	for (int i = 0; i < 3; i++) {
		a = client6((uint16_t)(2 + i), 40000);
		CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), 0);
	}
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a), 3);
	a = client6(5, 40000);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), -EDQUOT);
	memset(&a.saddr.b[8], 0xa5, 8);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), -EDQUOT);
	/* fd00:0:0:1::2: another /64, a count of its own. */
	other = client6(2, 40000);
	other.saddr.b[7] = 1;
	CU_ASSERT_EQUAL(insert(t, &other, 1, NULL), 0);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &other), 1);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a), 3);
	/* IPv4: per address, neighbours in one /24 do not share. */
	for (int i = 0; i < 3; i++) {
		a = client4(IP4(198, 18, 7, 2), (uint16_t)(40000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), 0);
	}
	a = client4(IP4(198, 18, 7, 3), 40000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), 0);
	nat_table__destroy(t);
}

static void test_source_limit_off(void)
{
	struct nat_table *t = nat_table__create(64, 20000, 29999);
	struct nat_tuple a;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* 0, or a limit the table could never reach, is no limit. */
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, 0), 0);
	for (int i = 0; i < 64; i++) {
		a = client4(IP4(198, 18, 1, 2), (uint16_t)(40000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), 0);
	}
	nat_table__destroy(t);
	t = nat_table__create(64, 20000, 29999);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, 64), 0);
	for (int i = 0; i < 64; i++) {
		a = client4(IP4(198, 18, 1, 2), (uint16_t)(40000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &a, 1, NULL), 0);
	}
	nat_table__destroy(t);
}

/* An early-dropped session gives its source's count back. */
static void test_source_limit_early_drop(void)
{
	struct nat_table *t = nat_table__create(16, 20000, 29999);
	struct dropped_log log = {};
	struct nat_tuple a, b;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, 8), 0);
	nat_table__set_early_drop(t, on_dropped, &log);
	for (int i = 0; i < 8; i++) {
		a = client4(IP4(198, 19, 0, 1), (uint16_t)(40000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &a, 1 + (uint64_t)i, NULL), 0);
	}
	for (int i = 0; i < 8; i++) {
		b = client4(IP4(198, 19, 0, 2), (uint16_t)(40000 + i), IPPROTO_UDP);
		CU_ASSERT_EQUAL(insert(t, &b, 100 + (uint64_t)i, NULL), 0);
	}
	/* The table is full (16): the oldest of the first source's sessions went. */
	CU_ASSERT(log.n >= 1);
	CU_ASSERT_EQUAL(nat_table__source_sessions(t, &a) + nat_table__source_sessions(t, &b),
			nat_table__count(t));
	CU_ASSERT(nat_table__source_sessions(t, &a) < 8);
	a = client4(IP4(198, 19, 0, 1), 41000, IPPROTO_UDP);
	CU_ASSERT_EQUAL(insert(t, &a, 200, NULL), 0);
	nat_table__destroy(t);
}

/* Counts per address under random inserts and removals, against a plain array. */
static void test_source_churn(void)
{
	enum { CAP = 512, SOURCES = 300, LIMIT = 4, ROUNDS = 50000 };
	struct nat_table *t = nat_table__create(CAP, 1024, 65535);
	static struct nat_session *live[CAP];
	static uint32_t ref[SOURCES];
	uint32_t nr_live = 0, refused = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__set_source_limit(t, LIMIT), 0);
	memset(ref, 0, sizeof(ref));
	for (int r = 0; r < ROUNDS; r++) {
		if (nr_live && (rnd() % 3 == 0 || nr_live == CAP)) {
			uint32_t k = rnd() % nr_live;
			struct nat_session *s = live[k];
			uint32_t src = (uint32_t)s->client.saddr.b[2] << 8 | s->client.saddr.b[3];

			nat_table__remove(t, s);
			ref[src]--;
			live[k] = live[--nr_live];
		} else {
			uint32_t src = rnd() % SOURCES;
			struct nat_tuple c =
				client4(IP4(198, 19, 0, 0) + src, (uint16_t)(1024 + rnd() % 60000),
					IPPROTO_UDP);
			struct nat_session *s;
			int err = insert(t, &c, 1, &s);

			if (err == -EEXIST)
				continue;
			if (ref[src] >= LIMIT) {
				CU_ASSERT_EQUAL_FATAL(err, -EDQUOT);
				refused++;
				continue;
			}
			CU_ASSERT_EQUAL_FATAL(err, 0);
			ref[src]++;
			live[nr_live++] = s;
		}
	}
	for (uint32_t src = 0; src < SOURCES; src++) {
		struct nat_tuple c = client4(IP4(198, 19, 0, 0) + src, 1, IPPROTO_UDP);

		CU_ASSERT_EQUAL(nat_table__source_sessions(t, &c), ref[src]);
	}
	CU_ASSERT(refused > 0);
	nat_table__destroy(t);
}

static CU_TestInfo nat_guard_tests[] = {
	{ "droppable: UDP without reply, TCP not connected", test_unreplied },
	{ "early drop: full table takes a droppable slot, never a kept one",
	  test_early_drop_full },
	{ "early drop: off unless set", test_early_drop_off },
	{ "early drop: a bounded sample per insert", test_early_drop_bounded },
	{ "early drop: answered spoofed flood, legitimate sessions and streams kept",
	  test_early_drop_flood },
	{ "early drop: an idle assured UDP session when nothing is droppable", test_early_drop_idle },
	{ "early drop: spoofed tuples sent twice do not lock the table",
	  test_early_drop_assured_flood },
	{ "source limit: per address, both families, released on removal", test_source_limit },
	{ "source limit: IPv6 per /64, IPv4 per address", test_source_limit_v6_prefix },
	{ "source limit: 0 or the capacity is none", test_source_limit_off },
	{ "source limit: early drop releases the count", test_source_limit_early_drop },
	{ "source limit: counts under churn match a reference", test_source_churn },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(nat_guard, "nat_guard", nat_guard_tests, NULL, NULL);
