// SPDX-License-Identifier: BSD-2-Clause
/*
 * NAT table and rewrites.  The table is checked against a plain reference
 * list under random churn; rewrites are checked byte for byte against frames
 * built from scratch with the expected fields, whose checksums come from a
 * naive reference here, not from lib/csum.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "csum.h"
#include "nat.h"
#include "packet.h"
#include "unit.h"

#define ETH_HLEN 14
#define BUF_MAX 2048

static uint64_t rng_state = 0xd1b54a32d192ed03ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static union ferry_addr a4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	union ferry_addr x = {.b = {a, b, c, d}};

	return x;
}

/* fd00::<hi>:<lo> */
static union ferry_addr a6(uint16_t hi, uint16_t lo)
{
	union ferry_addr x = {.b = {0xfd}};

	put16(&x.b[12], hi);
	put16(&x.b[14], lo);
	return x;
}

static struct nat_tuple tuple(uint8_t family, uint8_t proto, union ferry_addr s, uint16_t sport,
			      union ferry_addr d, uint16_t dport)
{
	struct nat_tuple t = {.saddr = s,
			      .daddr = d,
			      .sport = sport,
			      .dport = dport,
			      .family = family,
			      .proto = proto};

	return t;
}

static struct nat_tuple reverse(const struct nat_tuple *t)
{
	return tuple(t->family, t->proto, t->daddr, t->dport, t->saddr, t->sport);
}

static bool tuple_same(const struct nat_tuple *a, const struct nat_tuple *b)
{
	return !memcmp(&a->saddr, &b->saddr, 16) && !memcmp(&a->daddr, &b->daddr, 16) &&
	       a->sport == b->sport && a->dport == b->dport && a->family == b->family &&
	       a->proto == b->proto;
}

/* ---- reference checksums: byte at a time, big-endian words as numbers ---- */

static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		s += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
		while (s > 0xffff)
			s = (s & 0xffff) + (s >> 16);
	}
	return s;
}

struct ref_l4 {
	uint32_t l4_off, l4_len;
	uint8_t family, proto;
};

static void ref_locate(const uint8_t *f, struct ref_l4 *r)
{
	if (get16(f + 12) == 0x0800) {
		uint32_t ihl = (f[ETH_HLEN] & 0x0f) * 4u;

		r->family = 4;
		r->proto = f[ETH_HLEN + 9];
		r->l4_off = ETH_HLEN + ihl;
		r->l4_len = get16(f + ETH_HLEN + 2) - ihl;
	} else {
		r->family = 6;
		r->proto = f[ETH_HLEN + 6];
		r->l4_off = ETH_HLEN + 40;
		r->l4_len = get16(f + ETH_HLEN + 4);
	}
}

static uint8_t *ref_l4_field(uint8_t *f, const struct ref_l4 *r)
{
	return f + r->l4_off + (r->proto == IPPROTO_UDP ? 6 : 16);
}

/* Folded sum of the pseudo-header and the segment as it is (checksum field included). */
static uint32_t ref_l4_sum(const uint8_t *f, const struct ref_l4 *r)
{
	uint8_t ph[40] = {0};
	size_t n;

	if (r->family == 4) {
		memcpy(ph, f + ETH_HLEN + 12, 8);
		ph[9] = r->proto;
		put16(ph + 10, (uint16_t)r->l4_len);
		n = 12;
	} else {
		memcpy(ph, f + ETH_HLEN + 8, 32);
		put16(ph + 34, (uint16_t)r->l4_len);
		ph[39] = r->proto;
		n = 40;
	}
	return ref_add(ref_add(0, ph, n), f + r->l4_off, r->l4_len);
}

/* Fill in the IPv4 header and L4 checksums from scratch. */
static void ref_fill_checksums(uint8_t *f, bool udp_csum)
{
	struct ref_l4 r;
	uint16_t c;

	ref_locate(f, &r);
	if (r.family == 4) {
		put16(f + ETH_HLEN + 10, 0);
		put16(f + ETH_HLEN + 10, (uint16_t)~ref_add(0, f + ETH_HLEN, r.l4_off - ETH_HLEN));
	}
	put16(ref_l4_field(f, &r), 0);
	if (r.proto == IPPROTO_UDP && !udp_csum)
		return;
	c = (uint16_t)~ref_l4_sum(f, &r);
	if (c == 0 && r.proto == IPPROTO_UDP)
		c = 0xffff;
	put16(ref_l4_field(f, &r), c);
}

static bool ref_valid(uint8_t *f)
{
	struct ref_l4 r;

	ref_locate(f, &r);
	if (r.family == 4 && ref_add(0, f + ETH_HLEN, r.l4_off - ETH_HLEN) != 0xffff)
		return false;
	if (r.proto == IPPROTO_UDP && get16(ref_l4_field(f, &r)) == 0)
		return r.family == 4;
	return ref_l4_sum(f, &r) == 0xffff;
}

/* ---- frames ---- */

struct frame_spec {
	uint8_t dst_mac[6], src_mac[6];
	struct nat_tuple t;
	uint8_t ttl;
	uint8_t ip_opt_words;
	uint16_t payload_len;
	bool no_udp_csum;
};

static uint32_t build(uint8_t *buf, const struct frame_spec *fs)
{
	uint8_t *ip = buf + ETH_HLEN, *l4;
	uint32_t ip_hlen, l4_hlen = fs->t.proto == IPPROTO_UDP ? 8 : 20;

	memset(buf, 0, BUF_MAX);
	memcpy(buf, fs->dst_mac, 6);
	memcpy(buf + 6, fs->src_mac, 6);
	if (fs->t.family == 4) {
		ip_hlen = 20 + 4u * fs->ip_opt_words;
		put16(buf + 12, 0x0800);
		ip[0] = (uint8_t)(0x40 | (5 + fs->ip_opt_words));
		put16(ip + 2, (uint16_t)(ip_hlen + l4_hlen + fs->payload_len));
		put16(ip + 4, 0x1234);
		put16(ip + 6, 0x4000);
		ip[8] = fs->ttl;
		ip[9] = fs->t.proto;
		memcpy(ip + 12, fs->t.saddr.b, 4);
		memcpy(ip + 16, fs->t.daddr.b, 4);
		for (uint32_t i = 20; i < ip_hlen; i++)
			ip[i] = 1;
	} else {
		ip_hlen = 40;
		put16(buf + 12, 0x86dd);
		ip[0] = 0x60;
		ip[1] = 0x0a;
		ip[3] = 0x77; /* a flow label, carried unchanged */
		put16(ip + 4, (uint16_t)(l4_hlen + fs->payload_len));
		ip[6] = fs->t.proto;
		ip[7] = fs->ttl;
		memcpy(ip + 8, fs->t.saddr.b, 16);
		memcpy(ip + 24, fs->t.daddr.b, 16);
	}
	l4 = ip + ip_hlen;
	put16(l4, fs->t.sport);
	put16(l4 + 2, fs->t.dport);
	if (fs->t.proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint16_t)(l4_hlen + fs->payload_len));
	} else {
		memcpy(l4 + 4, "\x11\x22\x33\x44\x55\x66\x77\x88\x50\x18\xfa\xf0", 12);
	}
	for (uint32_t i = 0; i < fs->payload_len; i++)
		l4[l4_hlen + i] = (uint8_t)(i * 13 + 5);
	ref_fill_checksums(buf, !fs->no_udp_csum);
	return ETH_HLEN + ip_hlen + l4_hlen + fs->payload_len;
}

static void parse_ok(const uint8_t *buf, uint32_t len, struct pkt_info *pi)
{
	CU_ASSERT_EQUAL_FATAL(pkt_parse(buf, len, pi), PKT_OK);
}

/* ---- table ---- */

static const union ferry_addr *egress4(void)
{
	static union ferry_addr e;

	e = a4(198, 19, 0, 1);
	return &e;
}

static void test_create_args(void)
{
	struct nat_table *t;

	errno = 0;
	CU_ASSERT_PTR_NULL(nat_table__create(0, 1000, 2000));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(nat_table__create(10, 2000, 1999));
	CU_ASSERT_PTR_NULL(nat_table__create(10, 0, 100));
	t = nat_table__create(1, 1000, 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__capacity(t), 1);
	CU_ASSERT_EQUAL(nat_table__count(t), 0);
	nat_table__destroy(t);
	nat_table__destroy(NULL);
}

static void test_insert_lookup(void)
{
	struct nat_table *t = nat_table__create(16, 20000, 20999);
	struct nat_tuple c4 =
	    tuple(4, IPPROTO_UDP, a4(198, 18, 0, 10), 40000, a4(198, 18, 1, 1), 53);
	struct nat_tuple c6 = tuple(6, IPPROTO_TCP, a6(0, 10), 40000, a6(1, 1), 443);
	union ferry_addr up4 = a4(198, 19, 10, 20), e6 = a6(0xe, 1), up6 = a6(0xa, 20);
	struct nat_session *s4 = NULL, *s6 = NULL;
	struct nat_tuple r, other;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c4, egress4(), &up4, 5353, 7, 1000, &s4), 0);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c6, &e6, &up6, 8443, 9, 2000, &s6), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s6);
	CU_ASSERT_EQUAL(nat_table__count(t), 2);

	CU_ASSERT(tuple_same(&s4->client, &c4));
	CU_ASSERT(!memcmp(&s4->upstream.saddr, egress4(), 16));
	CU_ASSERT(!memcmp(&s4->upstream.daddr, &up4, 16));
	CU_ASSERT(s4->upstream.sport >= 20000 && s4->upstream.sport <= 20999);
	CU_ASSERT_EQUAL(s4->upstream.dport, 5353);
	CU_ASSERT_EQUAL(s4->upstream.family, 4);
	CU_ASSERT_EQUAL(s4->upstream.proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(s4->flow_id, 7);
	CU_ASSERT_EQUAL(s4->last_seen_ns, 1000);
	CU_ASSERT(s4->id < 16);
	CU_ASSERT(s4->id != s6->id);
	CU_ASSERT_FALSE(s4->client_l2_learned);
	CU_ASSERT(!memcmp(&s6->upstream.saddr, &e6, 16));
	CU_ASSERT_EQUAL(s6->upstream.proto, IPPROTO_TCP);

	CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &c4), s4);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &c6), s6);
	r = reverse(&s4->upstream);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(t, &r), s4);
	r = reverse(&s6->upstream);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(t, &r), s6);

	/* The two indexes are separate: a client tuple is no reply key and vice versa. */
	CU_ASSERT_PTR_NULL(nat_table__lookup_reply(t, &c4));
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &r));
	/* Every field of the key counts. */
	other = c4;
	other.sport++;
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &other));
	other = c4;
	other.proto = IPPROTO_TCP;
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &other));
	other = c4;
	other.daddr.b[3]++;
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &other));
	r = reverse(&s4->upstream);
	r.dport ^= 1;
	CU_ASSERT_PTR_NULL(nat_table__lookup_reply(t, &r));
	/* Bytes past a v4 address and the pad field are not part of the key. */
	other = c4;
	other.saddr.b[9] = 0x5a;
	other.pad = 0x1234;
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &other), s4);

	/* Bad family. */
	other = c4;
	other.family = 5;
	CU_ASSERT_EQUAL(nat_table__insert(t, &other, egress4(), &up4, 53, 0, 0, NULL), -EINVAL);
	nat_table__destroy(t);
}

static void test_duplicate(void)
{
	struct nat_table *t = nat_table__create(4, 20000, 20999);
	struct nat_tuple c =
	    tuple(4, IPPROTO_UDP, a4(198, 18, 0, 10), 40000, a4(198, 18, 1, 1), 53);
	union ferry_addr up = a4(198, 19, 10, 20), up2 = a4(198, 19, 10, 21);
	struct nat_session *s = NULL, *s2 = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &s), 0);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &s2), -EEXIST);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up2, 54, 0, 0, &s2), -EEXIST);
	CU_ASSERT_PTR_NULL(s2);
	CU_ASSERT_EQUAL(nat_table__count(t), 1);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &c), s);
	nat_table__destroy(t);
}

static void test_full(void)
{
	enum { CAP = 8 };
	struct nat_table *t = nat_table__create(CAP, 20000, 29999);
	union ferry_addr up = a4(198, 19, 10, 20);
	struct nat_session *s[CAP];
	struct nat_tuple c[CAP + 1], r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i <= CAP; i++)
		c[i] = tuple(4, IPPROTO_UDP, a4(198, 18, 0, (uint8_t)(10 + i)), 40000,
			     a4(198, 18, 1, 1), 53);
	for (int i = 0; i < CAP; i++)
		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c[i], egress4(), &up, 53, 0, 0, &s[i]),
				      0);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c[CAP], egress4(), &up, 53, 0, 0, NULL), -ENOSPC);
	/* A known client is still told it exists, not that the table is full. */
	CU_ASSERT_EQUAL(nat_table__insert(t, &c[0], egress4(), &up, 53, 0, 0, NULL), -EEXIST);
	CU_ASSERT_EQUAL(nat_table__count(t), CAP);
	for (int i = 0; i < CAP; i++) {
		CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &c[i]), s[i]);
		r = reverse(&s[i]->upstream);
		CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(t, &r), s[i]);
	}
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &c[CAP]));

	/* One slot freed, one insert possible. */
	nat_table__remove(t, s[3]);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c[CAP], egress4(), &up, 53, 0, 0, NULL), 0);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c[3], egress4(), &up, 53, 0, 0, NULL), -ENOSPC);
	nat_table__destroy(t);
}

/* Many clients of one upstream: every NAT port distinct and inside the range. */
static void test_ports_unique(void)
{
	enum { N = 6000, LO = 30000, HI = 39999 };
	struct nat_table *t = nat_table__create(N, LO, HI);
	union ferry_addr up = a4(198, 19, 10, 20);
	static uint8_t used[65536];
	struct nat_session *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	memset(used, 0, sizeof(used));
	for (int i = 0; i < N; i++) {
		struct nat_tuple c =
		    tuple(4, IPPROTO_UDP, a4(198, 18, (uint8_t)(i >> 8), (uint8_t)i),
			  (uint16_t)(1024 + i), a4(198, 18, 255, 1), 53);
		struct nat_tuple r;

		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &s), 0);
		CU_ASSERT(s->upstream.sport >= LO && s->upstream.sport <= HI);
		CU_ASSERT_EQUAL(used[s->upstream.sport], 0);
		used[s->upstream.sport] = 1;
		r = reverse(&s->upstream);
		CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(t, &r), s);
	}
	CU_ASSERT_EQUAL(nat_table__count(t), N);
	nat_table__destroy(t);
}

static void test_port_exhaustion(void)
{
	enum { LO = 40000, HI = 40003 };
	struct nat_table *t = nat_table__create(64, LO, HI);
	union ferry_addr up = a4(198, 19, 10, 20);
	struct nat_session *s[HI - LO + 1], *extra;
	unsigned int seen = 0;
	struct nat_tuple c;
	uint16_t freed;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i <= HI - LO; i++) {
		c = tuple(4, IPPROTO_UDP, a4(198, 18, 0, (uint8_t)(1 + i)), 5000, a4(198, 18, 1, 1),
			  53);
		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &s[i]), 0);
		seen |= 1u << (s[i]->upstream.sport - LO);
	}
	CU_ASSERT_EQUAL(seen, 0xf);
	c = tuple(4, IPPROTO_UDP, a4(198, 18, 0, 200), 5000, a4(198, 18, 1, 1), 53);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, NULL), -EADDRNOTAVAIL);
	CU_ASSERT_EQUAL(nat_table__count(t), HI - LO + 1);
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &c));

	/* Another upstream port, protocol or egress is another reply key space. */
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 54, 0, 0, &extra), 0);
	nat_table__remove(t, extra);
	c.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &extra), 0);
	nat_table__remove(t, extra);
	c.proto = IPPROTO_UDP;

	/* Freeing a port makes exactly that port available again. */
	freed = s[2]->upstream.sport;
	nat_table__remove(t, s[2]);
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &extra), 0);
	CU_ASSERT_EQUAL(extra->upstream.sport, freed);
	nat_table__destroy(t);
}

/*
 * Once an upstream's ports are used up, further new sessions for it fail
 * without searching the range again, until one of its sessions goes: a
 * stream of new clients costs one hash each, not a scan of the range.
 */
static void test_port_exhaustion_bounded(void)
{
	enum { LO = 50000, PORTS = 1000, ATTEMPTS = 500 };
	struct nat_table *t = nat_table__create(2 * PORTS, LO, LO + PORTS - 1);
	union ferry_addr up = a4(198, 19, 10, 20);
	static struct nat_session *s[PORTS];
	struct nat_session *extra;
	uint64_t probes, skips;
	struct nat_tuple c;
	uint16_t freed;
	int fails = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < PORTS; i++) {
		c = tuple(4, IPPROTO_UDP, a4(198, 18, 0, 1), (uint16_t)(1024 + i),
			  a4(198, 18, 1, 1), 53);
		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &s[i]), 0);
	}
	probes = nat_table__stats(t)->port_probes;
	CU_ASSERT(probes >= PORTS);
	CU_ASSERT_EQUAL(nat_table__stats(t)->port_full_skips, 0);

	/* One full search finds the range used up; the others do not search. */
	for (int i = 0; i < ATTEMPTS; i++) {
		c = tuple(4, IPPROTO_UDP, a4(198, 18, 2, 1), (uint16_t)(1024 + i),
			  a4(198, 18, 1, 1), 53);
		fails += nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, NULL) == -EADDRNOTAVAIL;
	}
	CU_ASSERT_EQUAL(fails, ATTEMPTS);
	CU_ASSERT_EQUAL(nat_table__stats(t)->port_probes - probes, PORTS);
	CU_ASSERT_EQUAL(nat_table__stats(t)->port_full_skips, ATTEMPTS - 1);

	/* Another upstream port is another key space: searched, and found free. */
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 54, 0, 0, &extra), 0);
	nat_table__remove(t, extra);

	/* A session of the space going frees its port for the very next attempt. */
	freed = s[PORTS / 2]->upstream.sport;
	nat_table__remove(t, s[PORTS / 2]);
	skips = nat_table__stats(t)->port_full_skips;
	CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, &extra), 0);
	CU_ASSERT_EQUAL(extra->upstream.sport, freed);
	CU_ASSERT_EQUAL(nat_table__stats(t)->port_full_skips, skips);

	/* Used up again: one more search, then no more. */
	probes = nat_table__stats(t)->port_probes;
	for (int i = 0; i < ATTEMPTS; i++) {
		c = tuple(4, IPPROTO_UDP, a4(198, 18, 3, 1), (uint16_t)(1024 + i),
			  a4(198, 18, 1, 1), 53);
		CU_ASSERT_EQUAL(nat_table__insert(t, &c, egress4(), &up, 53, 0, 0, NULL),
				-EADDRNOTAVAIL);
	}
	CU_ASSERT_EQUAL(nat_table__stats(t)->port_probes - probes, PORTS);
	CU_ASSERT_EQUAL(nat_table__stats(t)->port_full_skips, skips + ATTEMPTS - 1);
	nat_table__destroy(t);
}

/* Distinct buckets that random hashing fills with `n` keys in `m` buckets: m(1 - (1 - 1/m)^n). */
static double expected_buckets(uint32_t m, uint32_t n)
{
	double empty = 1.0;

	for (uint32_t i = 0; i < n; i++)
		empty *= 1.0 - 1.0 / m;
	return m * (1.0 - empty);
}

static uint32_t count_buckets(struct nat_table *t, const struct nat_tuple *keys, uint32_t n,
			      uint8_t *seen)
{
	uint32_t m = nat_table__nr_buckets(t), used = 0;

	memset(seen, 0, m);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = nat_table__bucket(t, &keys[i]);

		CU_ASSERT_FATAL(b < m);
		used += !seen[b];
		seen[b] = 1;
	}
	return used;
}

/*
 * 20000 sessions to one upstream: keys that differ in one port only (the
 * NAT port of the replies, the client's source port, or the destination
 * port of client tuples) must spread over the index like random keys, or
 * lookups walk long probe runs.  A hash whose bucket bits ignored a port put
 * them all into 16 buckets.
 */
static void test_hash_spread(void)
{
	enum { N = 20000 };
	struct nat_table *t = nat_table__create(N, 1024, 65535);
	union ferry_addr up = a4(198, 19, 10, 20);
	static struct nat_tuple client[N], reply[N], by_dport[N];
	uint32_t m, used_client, used_reply, used_dport;
	uint8_t *seen;
	double want;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	m = nat_table__nr_buckets(t);
	seen = malloc(m);
	CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
	for (int i = 0; i < N; i++) {
		struct nat_session *s;

		client[i] = tuple(4, IPPROTO_TCP, a4(198, 18, 0, 10), (uint16_t)(1024 + i),
				  a4(198, 18, 255, 1), 443);
		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &client[i], egress4(), &up, 443, 0, 0,
							&s), 0);
		reply[i] = reverse(&s->upstream);
		by_dport[i] = tuple(4, IPPROTO_TCP, a4(198, 18, 0, 10), 40000, a4(198, 18, 255, 1),
				    (uint16_t)(1024 + i));
		/* Only the NAT port differs between replies. */
		CU_ASSERT_EQUAL(memcmp(&reply[i].saddr, &up, sizeof(up)), 0);
		CU_ASSERT_EQUAL(reply[i].sport, 443);
	}
	want = expected_buckets(m, N);
	used_client = count_buckets(t, client, N, seen);
	used_reply = count_buckets(t, reply, N, seen);
	used_dport = count_buckets(t, by_dport, N, seen);
	CU_ASSERT(used_client >= 0.9 * want);
	CU_ASSERT(used_reply >= 0.9 * want);
	CU_ASSERT(used_dport >= 0.9 * want);
	if (used_client < 0.9 * want || used_reply < 0.9 * want || used_dport < 0.9 * want)
		fprintf(stderr, "hash_spread: %u buckets, expected %.0f occupied; client %u, "
				"reply %u, dport %u\n",
			m, want, used_client, used_reply, used_dport);
	/* And every session is found through both indexes. */
	for (int i = 0; i < N; i++) {
		struct nat_session *s = nat_table__lookup_client(t, &client[i]);

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(t, &reply[i]), s);
	}
	free(seen);
	nat_table__destroy(t);
}

static void test_remove_reinsert(void)
{
	struct nat_table *t = nat_table__create(4, 20000, 20999);
	struct nat_tuple c = tuple(6, IPPROTO_UDP, a6(0, 10), 40000, a6(1, 1), 53);
	union ferry_addr e = a6(0xe, 1), up = a6(0xa, 20);
	struct nat_session *s = NULL;
	struct nat_tuple r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, &e, &up, 53, 1, 5, &s), 0);
	r = reverse(&s->upstream);
	nat_table__remove(t, s);
	CU_ASSERT_EQUAL(nat_table__count(t), 0);
	CU_ASSERT_PTR_NULL(nat_table__lookup_client(t, &c));
	CU_ASSERT_PTR_NULL(nat_table__lookup_reply(t, &r));
	/* A second remove of the same (stale) pointer changes nothing. */
	nat_table__remove(t, s);
	nat_table__remove(t, NULL);
	CU_ASSERT_EQUAL(nat_table__count(t), 0);

	CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c, &e, &up, 53, 2, 6, &s), 0);
	CU_ASSERT_EQUAL(nat_table__count(t), 1);
	CU_ASSERT_EQUAL(s->flow_id, 2);
	CU_ASSERT_EQUAL(s->last_seen_ns, 6);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_client(t, &c), s);
	r = reverse(&s->upstream);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(t, &r), s);
	nat_table__destroy(t);
}

struct expire_ctx {
	unsigned int calls;
	uint64_t now, timeout;
	struct nat_table *t;
	bool bad;
};

static void on_expired(struct nat_session *s, void *arg)
{
	struct expire_ctx *x = arg;

	x->calls++;
	/* Called before removal, for idle sessions only. */
	if (x->now - s->last_seen_ns <= x->timeout || !nat_table__lookup_client(x->t, &s->client))
		x->bad = true;
}

static void test_expire(void)
{
	enum { N = 100 };
	struct nat_table *t = nat_table__create(N, 20000, 29999);
	union ferry_addr up = a4(198, 19, 10, 20);
	struct expire_ctx x = {.now = 10000, .timeout = 5000};
	struct nat_tuple c[N];
	uint32_t total = 0, n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	x.t = t;
	for (int i = 0; i < N; i++) {
		struct nat_session *s;

		c[i] =
		    tuple(4, IPPROTO_TCP, a4(198, 18, 0, (uint8_t)i), 4000, a4(198, 18, 1, 1), 80);
		CU_ASSERT_EQUAL_FATAL(nat_table__insert(t, &c[i], egress4(), &up, 80, 0, 0, &s), 0);
		/* Every other session idle; one exactly at the timeout (not idle "longer"). */
		s->last_seen_ns = i % 2 ? 9000 : 1000;
		if (i == 50)
			s->last_seen_ns = 5000;
		/* A timestamp ahead of now is not idle either. */
		if (i == 51)
			s->last_seen_ns = 20000;
	}
	CU_ASSERT_EQUAL(nat_table__expire(t, x.now, x.timeout, 0, on_expired, &x), 0);
	for (int call = 0; call < 10; call++) {
		n = nat_table__expire(t, x.now, x.timeout, 17, on_expired, &x);
		CU_ASSERT(n <= 17);
		total += n;
	}
	/* 50 even i, minus i == 50. */
	CU_ASSERT_EQUAL(total, 49);
	CU_ASSERT_EQUAL(x.calls, 49);
	CU_ASSERT_FALSE(x.bad);
	CU_ASSERT_EQUAL(nat_table__count(t), N - 49);
	for (int i = 0; i < N; i++) {
		bool idle = i % 2 == 0 && i != 50;

		CU_ASSERT_EQUAL(nat_table__lookup_client(t, &c[i]) == NULL, idle);
	}
	/* Nothing more to do; a NULL callback is allowed. */
	CU_ASSERT_EQUAL(nat_table__expire(t, x.now, x.timeout, 1000, NULL, NULL), 0);
	CU_ASSERT_EQUAL(nat_table__expire(t, 100000, 5000, 1000, NULL, NULL), N - 49);
	CU_ASSERT_EQUAL(nat_table__count(t), 0);
	nat_table__destroy(t);
}

/*
 * Random inserts and removes against a reference list, in a small table with
 * a small port range so both indexes see long probe runs and many shifts, and
 * port ranges fill up now and then.
 */
static void test_churn(void)
{
	enum { CAP = 200, POOL = 500, OPS = 60000, NR_UP = 3, PORTS = 80 };
	struct nat_table *t = nat_table__create(CAP, 1000, 1000 + PORTS - 1);
	static struct nat_tuple pool[POOL];
	static struct nat_session *ref[POOL];
	static int ref_up[POOL];
	union ferry_addr ups[NR_UP] = {a4(198, 19, 10, 20), a4(198, 19, 10, 21),
				       a4(198, 19, 10, 22)};
	uint32_t live = 0, per_up[NR_UP] = {0};
	unsigned int results[4] = {0}; /* ok, EEXIST, ENOSPC, EADDRNOTAVAIL */
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	memset(ref, 0, sizeof(ref));
	for (int i = 0; i < POOL; i++)
		pool[i] = tuple(4, IPPROTO_UDP, a4(198, 18, (uint8_t)(i % 7), (uint8_t)(i / 7)),
				(uint16_t)(2000 + i % 3), a4(198, 18, 9, 9), 53);

	for (int op = 0; op < OPS && ok; op++) {
		int i = (int)(rnd() % POOL);

		if (rnd() % 2) {
			struct nat_session *s = NULL;
			int up = (int)(rnd() % NR_UP);
			int err = nat_table__insert(t, &pool[i], egress4(), &ups[up], 53, 0, 0, &s);
			int want = 0;

			if (ref[i])
				want = -EEXIST;
			else if (live == CAP)
				want = -ENOSPC;
			else if (per_up[up] == PORTS)
				want = -EADDRNOTAVAIL;

			if (err != want)
				ok = false;
			results[want == 0 ? 0 : want == -EEXIST ? 1 : want == -ENOSPC ? 2 : 3]++;
			if (!err) {
				ref[i] = s;
				ref_up[i] = up;
				per_up[up]++;
				live++;
			}
		} else if (ref[i]) {
			nat_table__remove(t, ref[i]);
			ref[i] = NULL;
			per_up[ref_up[i]]--;
			live--;
		}
		if (op % 50 && op != OPS - 1)
			continue;
		if (nat_table__count(t) != live)
			ok = false;
		for (int j = 0; j < POOL; j++) {
			struct nat_session *s = nat_table__lookup_client(t, &pool[j]);
			struct nat_tuple r;

			if (s != ref[j])
				ok = false;
			if (!s)
				continue;
			r = reverse(&s->upstream);
			if (nat_table__lookup_reply(t, &r) != s ||
			    !tuple_same(&s->client, &pool[j]))
				ok = false;
		}
	}
	CU_ASSERT(ok);
	/* Every outcome was exercised. */
	CU_ASSERT(results[0] && results[1] && results[2] && results[3]);
	nat_table__destroy(t);
}

static void test_tuple_from_pkt(void)
{
	struct frame_spec fs = {.t = tuple(6, IPPROTO_TCP, a6(0, 10), 40000, a6(1, 1), 443),
				.ttl = 64,
				.payload_len = 3};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	struct nat_tuple t;
	uint32_t len = build(buf, &fs);

	parse_ok(buf, len, &pi);
	memset(&t, 0xaa, sizeof(t));
	nat_tuple_from_pkt(&t, &pi);
	CU_ASSERT(tuple_same(&t, &fs.t));
	CU_ASSERT_EQUAL(t.pad, 0);

	fs.t = tuple(4, IPPROTO_UDP, a4(198, 18, 0, 10), 1, a4(198, 19, 0, 1), 65535);
	len = build(buf, &fs);
	parse_ok(buf, len, &pi);
	nat_tuple_from_pkt(&t, &pi);
	CU_ASSERT(tuple_same(&t, &fs.t));
}

/* ---- rewrites ---- */

static const uint8_t mac_client[6] = {0x02, 0, 0, 0, 0, 0xc1};
static const uint8_t mac_proxy_in[6] = {0x02, 0, 0, 0, 0, 0xe0};
static const uint8_t mac_proxy_out[6] = {0x02, 0, 0, 0, 0, 0xe1};
static const uint8_t mac_upstream[6] = {0x02, 0, 0, 0, 0, 0x70};

struct scenario {
	struct nat_table *t;
	struct nat_session *s;
	struct nat_tuple client;
};

static void scenario_init(struct scenario *sc, uint8_t family, uint8_t proto, uint16_t port_lo,
			  uint16_t port_hi)
{
	union ferry_addr e, up;

	if (family == 4) {
		sc->client = tuple(4, proto, a4(198, 18, 0, 10), 40000, a4(198, 18, 1, 1), 53);
		e = a4(198, 19, 0, 1);
		up = a4(198, 19, 10, 20);
	} else {
		sc->client = tuple(6, proto, a6(0x100, 10), 40000, a6(0x1, 0x53), 53);
		e = a6(0xe, 1);
		up = a6(0xa, 20);
	}
	sc->t = nat_table__create(16, port_lo, port_hi);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sc->t);
	CU_ASSERT_EQUAL_FATAL(nat_table__insert(sc->t, &sc->client, &e, &up, 5353, 1, 0, &sc->s),
			      0);
	memcpy(sc->s->to_upstream.dst_mac, mac_upstream, 6);
	memcpy(sc->s->to_upstream.src_mac, mac_proxy_out, 6);
	sc->s->to_upstream.mtu = 1500;
	memcpy(sc->s->to_client.dst_mac, mac_client, 6);
	memcpy(sc->s->to_client.src_mac, mac_proxy_in, 6);
	sc->s->to_client.mtu = 1500;
}

static void check_fields(const uint8_t *f, const struct frame_spec *want)
{
	const uint8_t *ip = f + ETH_HLEN;
	uint32_t l4 = want->t.family == 4 ? 20 + 4u * want->ip_opt_words : 40;

	CU_ASSERT(!memcmp(f, want->dst_mac, 6));
	CU_ASSERT(!memcmp(f + 6, want->src_mac, 6));
	if (want->t.family == 4) {
		CU_ASSERT(!memcmp(ip + 12, want->t.saddr.b, 4));
		CU_ASSERT(!memcmp(ip + 16, want->t.daddr.b, 4));
		CU_ASSERT_EQUAL(ip[8], want->ttl);
	} else {
		CU_ASSERT(!memcmp(ip + 8, want->t.saddr.b, 16));
		CU_ASSERT(!memcmp(ip + 24, want->t.daddr.b, 16));
		CU_ASSERT_EQUAL(ip[7], want->ttl);
	}
	CU_ASSERT_EQUAL(get16(ip + l4), want->t.sport);
	CU_ASSERT_EQUAL(get16(ip + l4 + 2), want->t.dport);
}

/*
 * Client packet -> upstream, then the upstream's reply -> client; each result
 * must equal, byte for byte, a frame built from scratch with the expected
 * header fields, and verify with the reference and with csum_verify().
 */
static void golden_round_trip(uint8_t family, uint8_t proto, uint8_t ip_opts, uint16_t payload,
			      bool no_udp_csum)
{
	struct scenario sc;
	struct frame_spec in = {
	    .ttl = 64, .ip_opt_words = ip_opts, .payload_len = payload, .no_udp_csum = no_udp_csum};
	struct frame_spec want;
	static uint8_t buf[BUF_MAX], exp[BUF_MAX];
	struct pkt_info pi;
	struct nat_tuple t;
	uint32_t len;

	scenario_init(&sc, family, proto, 20000, 29999);
	memcpy(in.dst_mac, mac_proxy_in, 6);
	memcpy(in.src_mac, mac_client, 6);
	in.t = sc.client;
	len = build(buf, &in);
	parse_ok(buf, len, &pi);
	nat_tuple_from_pkt(&t, &pi);
	CU_ASSERT_PTR_EQUAL_FATAL(nat_table__lookup_client(sc.t, &t), sc.s);

	CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_upstream(buf, &pi, sc.s), 0);
	want = in;
	memcpy(want.dst_mac, mac_upstream, 6);
	memcpy(want.src_mac, mac_proxy_out, 6);
	want.t = sc.s->upstream;
	want.ttl = 63;
	CU_ASSERT_EQUAL(build(exp, &want), len);
	check_fields(buf, &want);
	CU_ASSERT(memcmp(buf, exp, len) == 0);
	CU_ASSERT(ref_valid(buf));
	CU_ASSERT_EQUAL(csum_verify(buf, &pi), 1);

	/* The reply, as the upstream sends it. */
	in.t = reverse(&sc.s->upstream);
	memcpy(in.dst_mac, mac_proxy_out, 6);
	memcpy(in.src_mac, mac_upstream, 6);
	in.ttl = 2;
	len = build(buf, &in);
	parse_ok(buf, len, &pi);
	nat_tuple_from_pkt(&t, &pi);
	CU_ASSERT_PTR_EQUAL_FATAL(nat_table__lookup_reply(sc.t, &t), sc.s);

	CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_client(buf, &pi, sc.s), 0);
	want = in;
	memcpy(want.dst_mac, mac_client, 6);
	memcpy(want.src_mac, mac_proxy_in, 6);
	want.t = reverse(&sc.client);
	want.ttl = 1;
	CU_ASSERT_EQUAL(build(exp, &want), len);
	check_fields(buf, &want);
	CU_ASSERT(memcmp(buf, exp, len) == 0);
	CU_ASSERT(ref_valid(buf));
	CU_ASSERT_EQUAL(csum_verify(buf, &pi), 1);
	if (no_udp_csum)
		CU_ASSERT_EQUAL(get16(buf + pi.l4_off + 6), 0);

	nat_table__destroy(sc.t);
}

static void test_rewrite_v4_udp(void)
{
	golden_round_trip(4, IPPROTO_UDP, 0, 100, false);
}

static void test_rewrite_v4_udp_options(void)
{
	golden_round_trip(4, IPPROTO_UDP, 3, 7, false);
}

static void test_rewrite_v4_tcp(void)
{
	golden_round_trip(4, IPPROTO_TCP, 0, 1000, false);
}

static void test_rewrite_v6_udp(void)
{
	golden_round_trip(6, IPPROTO_UDP, 0, 33, false);
}

static void test_rewrite_v6_tcp(void)
{
	golden_round_trip(6, IPPROTO_TCP, 0, 0, false);
}

static void test_rewrite_v4_udp_no_csum(void)
{
	golden_round_trip(4, IPPROTO_UDP, 0, 64, true);
}

/* One frame written out by hand (values from an independent computation). */
static void test_rewrite_literal(void)
{
	static const uint8_t in[48] = {
	    0x02, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x02, 0x00, 0x00, 0x00, 0x00, 0xc1,
	    0x08, 0x00, 0x45, 0x00, 0x00, 0x22, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11,
	    0x9b, 0x67, 0xc6, 0x12, 0x00, 0x0a, 0xc6, 0x12, 0x01, 0x01, 0x9c, 0x40,
	    0x00, 0x35, 0x00, 0x0e, 0x84, 0x33, 0x66, 0x65, 0x72, 0x72, 0x79, 0x21,
	};
	static const uint8_t out[48] = {
	    0x02, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0x00, 0x00, 0x00, 0x00, 0xe1,
	    0x08, 0x00, 0x45, 0x00, 0x00, 0x22, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11,
	    0x93, 0x5b, 0xc6, 0x13, 0x00, 0x01, 0xc6, 0x13, 0x0a, 0x14, 0x4e, 0x20,
	    0x14, 0xe9, 0x00, 0x0e, 0xb4, 0x93, 0x66, 0x65, 0x72, 0x72, 0x79, 0x21,
	};
	struct scenario sc;
	uint8_t buf[sizeof(in)];
	struct pkt_info pi;

	/* A one-port range makes the NAT port (20000) known in advance. */
	scenario_init(&sc, 4, IPPROTO_UDP, 20000, 20000);
	memcpy(buf, in, sizeof(in));
	parse_ok(buf, sizeof(buf), &pi);
	CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_upstream(buf, &pi, sc.s), 0);
	CU_ASSERT(memcmp(buf, out, sizeof(out)) == 0);
	nat_table__destroy(sc.t);
}

/* Random tuples, ports, TTLs and lengths: always the from-scratch frame. */
static void test_rewrite_random(void)
{
	static uint8_t buf[BUF_MAX], buf2[BUF_MAX], exp[BUF_MAX];
	struct nat_table *t = nat_table__create(1024, 1024, 65535);
	unsigned int mismatches = 0, generic_mismatches = 0, failed_inserts = 0;
	struct nat_session generic;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int iter = 0; iter < 1000; iter++) {
		uint8_t family = (rnd() & 1) ? 4 : 6;
		uint8_t proto = (rnd() & 1) ? IPPROTO_UDP : IPPROTO_TCP;
		struct frame_spec in = {.ttl = (uint8_t)(2 + rnd() % 254),
					.ip_opt_words = family == 4 ? rnd() % 4 : 0,
					.payload_len = rnd() % 1400,
					.no_udp_csum = family == 4 && rnd() % 8 == 0};
		struct frame_spec want;
		union ferry_addr e, up;
		struct nat_session *s;
		struct pkt_info pi;
		uint32_t len;

		if (family == 4) {
			in.t = tuple(4, proto, a4(198, 18, (uint8_t)rnd(), (uint8_t)rnd()),
				     (uint16_t)rnd(), a4(198, 19, (uint8_t)rnd(), (uint8_t)rnd()),
				     (uint16_t)rnd());
			e = a4(198, 19, 0, (uint8_t)rnd());
			up = a4(198, 18, 200, (uint8_t)rnd());
		} else {
			in.t =
			    tuple(6, proto, a6((uint16_t)rnd(), (uint16_t)rnd()), (uint16_t)rnd(),
				  a6((uint16_t)rnd(), (uint16_t)rnd()), (uint16_t)rnd());
			e = a6(0xe, (uint16_t)rnd());
			up = a6((uint16_t)rnd(), (uint16_t)rnd());
			for (int i = 1; i < 12; i++) {
				in.t.saddr.b[i] = (uint8_t)rnd();
				up.b[i] = (uint8_t)rnd();
			}
		}
		for (int i = 0; i < 6; i++) {
			in.dst_mac[i] = (uint8_t)rnd();
			in.src_mac[i] = (uint8_t)rnd();
		}
		if (nat_table__insert(t, &in.t, &e, &up, (uint16_t)rnd(), 0, 0, &s)) {
			failed_inserts++;
			continue;
		}
		for (int i = 0; i < 6; i++) {
			s->to_upstream.dst_mac[i] = (uint8_t)rnd();
			s->to_upstream.src_mac[i] = (uint8_t)rnd();
			s->to_client.dst_mac[i] = (uint8_t)rnd();
			s->to_client.src_mac[i] = (uint8_t)rnd();
		}
		/* The same session without its precomputed rewrite: the generic path. */
		generic = *s;
		generic.rw_upstream.ready = generic.rw_client.ready = false;
		len = build(buf, &in);
		parse_ok(buf, len, &pi);
		if (rnd() & 1) {
			memcpy(buf2, buf, len);
			CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_upstream(buf, &pi, s), 0);
			CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_upstream(buf2, &pi, &generic), 0);
			want = in;
			want.t = s->upstream;
			memcpy(want.dst_mac, s->to_upstream.dst_mac, 6);
			memcpy(want.src_mac, s->to_upstream.src_mac, 6);
		} else {
			/* Rewriting towards the client only needs a packet of the session's family.
			 */
			in.t = reverse(&s->upstream);
			len = build(buf, &in);
			parse_ok(buf, len, &pi);
			memcpy(buf2, buf, len);
			CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_client(buf, &pi, s), 0);
			CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_client(buf2, &pi, &generic), 0);
			want = in;
			want.t = reverse(&s->client);
			memcpy(want.dst_mac, s->to_client.dst_mac, 6);
			memcpy(want.src_mac, s->to_client.src_mac, 6);
		}
		want.ttl = in.ttl - 1;
		build(exp, &want);
		if (memcmp(buf, exp, len) || !ref_valid(buf))
			mismatches++;
		if (memcmp(buf2, exp, len))
			generic_mismatches++;
		nat_table__remove(t, s);
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	CU_ASSERT_EQUAL(generic_mismatches, 0);
	CU_ASSERT_EQUAL(failed_inserts, 0);
	nat_table__destroy(t);
}

static void test_rewrite_ttl_expired(void)
{
	static uint8_t buf[BUF_MAX], copy[BUF_MAX];

	for (int family = 4; family <= 6; family += 2) {
		for (int ttl = 0; ttl <= 1; ttl++) {
			struct scenario sc;
			struct frame_spec fs = {.ttl = (uint8_t)ttl, .payload_len = 20};
			struct pkt_info pi;
			uint32_t len;

			scenario_init(&sc, (uint8_t)family, IPPROTO_UDP, 20000, 29999);
			fs.t = sc.client;
			len = build(buf, &fs);
			memcpy(copy, buf, len);
			parse_ok(buf, len, &pi);
			CU_ASSERT_EQUAL(nat_rewrite_to_upstream(buf, &pi, sc.s), -ETIMEDOUT);
			CU_ASSERT(memcmp(buf, copy, len) == 0);

			fs.t = reverse(&sc.s->upstream);
			len = build(buf, &fs);
			memcpy(copy, buf, len);
			parse_ok(buf, len, &pi);
			CU_ASSERT_EQUAL(nat_rewrite_to_client(buf, &pi, sc.s), -ETIMEDOUT);
			CU_ASSERT(memcmp(buf, copy, len) == 0);
			nat_table__destroy(sc.t);
		}
	}
}

static void test_rewrite_mtu(void)
{
	static uint8_t buf[BUF_MAX], copy[BUF_MAX];

	for (int family = 4; family <= 6; family += 2) {
		struct scenario sc;
		struct frame_spec fs = {.ttl = 64, .payload_len = 1000};
		struct pkt_info pi;
		uint32_t len;

		scenario_init(&sc, (uint8_t)family, IPPROTO_TCP, 20000, 29999);
		fs.t = sc.client;
		len = build(buf, &fs);
		/* Ethernet padding does not count against the MTU. */
		memcpy(copy, buf, len);
		parse_ok(buf, len + 10, &pi);

		sc.s->to_upstream.mtu = (uint16_t)(len - ETH_HLEN - 1);
		CU_ASSERT_EQUAL(nat_rewrite_to_upstream(buf, &pi, sc.s), -EMSGSIZE);
		CU_ASSERT(memcmp(buf, copy, len) == 0);

		sc.s->to_upstream.mtu = (uint16_t)(len - ETH_HLEN);
		CU_ASSERT_EQUAL(nat_rewrite_to_upstream(buf, &pi, sc.s), 0);

		/* The other direction has its own MTU; 0 means unchecked. */
		fs.t = reverse(&sc.s->upstream);
		len = build(buf, &fs);
		memcpy(copy, buf, len);
		parse_ok(buf, len, &pi);
		sc.s->to_client.mtu = 576;
		CU_ASSERT_EQUAL(nat_rewrite_to_client(buf, &pi, sc.s), -EMSGSIZE);
		CU_ASSERT(memcmp(buf, copy, len) == 0);
		sc.s->to_client.mtu = 0;
		CU_ASSERT_EQUAL(nat_rewrite_to_client(buf, &pi, sc.s), 0);
		CU_ASSERT(ref_valid(buf));
		nat_table__destroy(sc.t);
	}
}

/*
 * Choose two payload bytes so that the rewritten UDP checksum comes out as
 * 0: it must then be sent as 0xffff, never as 0 ("no checksum").
 */
static void test_rewrite_udp_zero_result(void)
{
	static uint8_t buf[BUF_MAX];

	for (int family = 4; family <= 6; family += 2) {
		struct scenario sc;
		struct frame_spec fs = {.ttl = 64, .payload_len = 40};
		struct pkt_info pi;
		uint32_t len;
		uint16_t c;

		scenario_init(&sc, (uint8_t)family, IPPROTO_UDP, 20000, 29999);
		fs.t = sc.client;
		len = build(buf, &fs);
		parse_ok(buf, len, &pi);
		put16(buf + pi.payload_off, 0);
		ref_fill_checksums(buf, true);
		CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_upstream(buf, &pi, sc.s), 0);
		/* The checksum now is the word that would bring the sum to -0. */
		c = get16(buf + pi.l4_off + 6);

		len = build(buf, &fs);
		put16(buf + pi.payload_off, c == 0xffff ? 0 : c);
		ref_fill_checksums(buf, true);
		parse_ok(buf, len, &pi);
		CU_ASSERT_EQUAL_FATAL(nat_rewrite_to_upstream(buf, &pi, sc.s), 0);
		CU_ASSERT_EQUAL(get16(buf + pi.l4_off + 6), 0xffff);
		CU_ASSERT(ref_valid(buf));
		nat_table__destroy(sc.t);
	}
}

/* A packet of the other family than the session's is refused untouched. */
static void test_rewrite_family_mismatch(void)
{
	static uint8_t buf[BUF_MAX], copy[BUF_MAX];
	struct scenario sc;
	struct frame_spec fs = {.ttl = 64, .payload_len = 10};
	struct pkt_info pi;
	uint32_t len;

	scenario_init(&sc, 6, IPPROTO_UDP, 20000, 29999);
	fs.t = tuple(4, IPPROTO_UDP, a4(198, 18, 0, 1), 1, a4(198, 18, 0, 2), 2);
	len = build(buf, &fs);
	memcpy(copy, buf, len);
	parse_ok(buf, len, &pi);
	CU_ASSERT_EQUAL(nat_rewrite_to_upstream(buf, &pi, sc.s), -EINVAL);
	CU_ASSERT(memcmp(buf, copy, len) == 0);
	nat_table__destroy(sc.t);
}

static CU_TestInfo nat_tests[] = {
    {"create_args", test_create_args},
    {"insert_lookup", test_insert_lookup},
    {"duplicate", test_duplicate},
    {"full", test_full},
    {"ports_unique", test_ports_unique},
    {"port_exhaustion", test_port_exhaustion},
    {"port_exhaustion_bounded", test_port_exhaustion_bounded},
    {"hash_spread", test_hash_spread},
    {"remove_reinsert", test_remove_reinsert},
    {"expire", test_expire},
    {"churn", test_churn},
    {"tuple_from_pkt", test_tuple_from_pkt},
    {"rewrite_literal", test_rewrite_literal},
    {"rewrite_v4_udp", test_rewrite_v4_udp},
    {"rewrite_v4_udp_options", test_rewrite_v4_udp_options},
    {"rewrite_v4_tcp", test_rewrite_v4_tcp},
    {"rewrite_v6_udp", test_rewrite_v6_udp},
    {"rewrite_v6_tcp", test_rewrite_v6_tcp},
    {"rewrite_v4_udp_no_csum", test_rewrite_v4_udp_no_csum},
    {"rewrite_random", test_rewrite_random},
    {"rewrite_ttl_expired", test_rewrite_ttl_expired},
    {"rewrite_mtu", test_rewrite_mtu},
    {"rewrite_udp_zero_result", test_rewrite_udp_zero_result},
    {"rewrite_family_mismatch", test_rewrite_family_mismatch},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(nat, "nat", nat_tests, NULL, NULL);
