// SPDX-License-Identifier: BSD-2-Clause
/*
 * Checksums against a deliberately naive reference: RFC 1071 one byte at a
 * time, big-endian words as numbers, carries folded at every step.  It shares
 * nothing with lib/csum.c (no wide words, no host-order trick), so agreement
 * means something.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "csum.h"
#include "packet.h"
#include "unit.h"

#define ETH_HLEN 14
#define BUF_MAX 2048

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd();
}

/* Folded one's-complement sum, as a number; `odd` says p[0] is a low-order byte. */
static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t len, int odd)
{
	for (size_t i = 0; i < len; i++) {
		s += ((i + odd) % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
		while (s > 0xffff)
			s = (s & 0xffff) + (s >> 16);
	}
	return s;
}

static uint16_t ref_csum(const uint8_t *p, size_t len)
{
	return (uint16_t)~ref_add(0, p, len, 0);
}

/* What lib/csum.c stores, read back as a number. */
static uint16_t stored(uint16_t v)
{
	return ntohs(v);
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

static void test_partial_random(void)
{
	static uint8_t buf[BUF_MAX + 8];

	for (int iter = 0; iter < 4000; iter++) {
		size_t len = rnd() % BUF_MAX;
		size_t align = rnd() % 8;
		uint8_t *p = buf + align;

		fill_random(p, len);
		/* Runs of 0xff and 0x00 push the carries to their extremes. */
		if (iter % 5 == 1)
			memset(p, 0xff, len);
		if (iter % 5 == 2)
			memset(p, 0, len / 2);
		CU_ASSERT_EQUAL(stored(csum_fold(csum_partial(p, len, 0))), ref_csum(p, len));
	}
}

static void test_partial_edges(void)
{
	uint8_t buf[64] = {0};

	CU_ASSERT_EQUAL(csum_fold(csum_partial(buf, 0, 0)), 0xffff);
	memset(buf, 0, sizeof(buf));
	CU_ASSERT_EQUAL(csum_fold(csum_partial(buf, sizeof(buf), 0)), 0xffff);
	memset(buf, 0xff, sizeof(buf));
	CU_ASSERT_EQUAL(csum_fold(csum_partial(buf, sizeof(buf), 0)), 0);
	CU_ASSERT_EQUAL(csum_fold(csum_partial(buf, 1, 0)), htons(0x00ff));
	buf[0] = 0x12;
	CU_ASSERT_EQUAL(stored(csum_fold(csum_partial(buf, 1, 0))), (uint16_t)~0x1200);

	/* RFC 1071 section 3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2. */
	memcpy(buf, "\x00\x01\xf2\x03\xf4\xf5\xf6\xf7", 8);
	CU_ASSERT_EQUAL(stored(csum_fold(csum_partial(buf, 8, 0))), (uint16_t)~0xddf2);

	CU_ASSERT_EQUAL(csum_fold(0), 0xffff);
	CU_ASSERT_EQUAL(csum_fold(0xffff), 0);
	CU_ASSERT_EQUAL(csum_fold(0xffffffff), 0);
	CU_ASSERT_EQUAL(csum_fold(0x0001ffff), (uint16_t)~1);
}

/* A running sum carried across even-length chunks equals one pass; so does a starting sum. */
static void test_partial_chunks(void)
{
	static uint8_t buf[BUF_MAX];

	for (int iter = 0; iter < 1000; iter++) {
		size_t len = rnd() % BUF_MAX;
		size_t off = 0;
		uint32_t s = 0, init = rnd() | (rnd() << 16);
		uint8_t init_bytes[4];

		fill_random(buf, len);
		while (off < len) {
			size_t n = (rnd() % 128) * 2;

			if (n > len - off)
				n = len - off;
			s = csum_partial(buf + off, n, s);
			off += n;
		}
		CU_ASSERT_EQUAL(stored(csum_fold(s)), ref_csum(buf, len));
		/* A starting sum is in the same host order as the result: its bytes as stored. */
		memcpy(init_bytes, &init, 4);
		s = csum_partial(buf, len, init);
		CU_ASSERT_EQUAL(stored(csum_fold(s)),
				(uint16_t)~ref_add(ref_add(0, init_bytes, 4, 0), buf, len, 0));
	}
}

/* Crosses the internal block boundary of csum_partial. */
static void test_partial_large(void)
{
	size_t len = (5u << 19) + 7;
	uint8_t *buf = malloc(len);

	CU_ASSERT_FATAL(buf != NULL);
	fill_random(buf, len);
	CU_ASSERT_EQUAL(stored(csum_fold(csum_partial(buf, len, 0))), ref_csum(buf, len));
	memset(buf, 0xff, len);
	buf[len - 1] = 0xfe;
	CU_ASSERT_EQUAL(stored(csum_fold(csum_partial(buf, len, 0))), ref_csum(buf, len));
	free(buf);
}

/* RFC 1624 section 4: eqn. 3 must give 0x0000 where eqn. 2 gave 0xffff. */
static void test_rfc1624_example(void)
{
	uint16_t c = htons(0xdd2f);

	csum_replace2(&c, htons(0x5555), htons(0x3285));
	CU_ASSERT_EQUAL(stored(c), 0x0000);
}

/*
 * A random "packet" with a checksum at `coff`; change a 2, 4 or 16-byte field
 * and compare the incremental update with recomputation.
 */
static void test_incremental(void)
{
	static uint8_t buf[256];

	for (int iter = 0; iter < 30000; iter++) {
		size_t len = 40 + 2 * (rnd() % 100);
		size_t coff = 2 * (rnd() % (len / 2));
		size_t width = (size_t[]){2, 4, 16}[rnd() % 3];
		size_t foff;
		uint16_t c;

		fill_random(buf, len);
		do {
			foff = 2 * (rnd() % ((len - width) / 2 + 1));
		} while (foff < coff + 2 && coff < foff + width);
		put16(buf + coff, 0);
		put16(buf + coff, ref_csum(buf, len));
		memcpy(&c, buf + coff, 2);

		if (width == 2) {
			uint16_t from, to = (uint16_t)rnd();

			memcpy(&from, buf + foff, 2);
			if (iter % 7 == 0)
				to = from;
			memcpy(buf + foff, &to, 2);
			csum_replace2(&c, from, to);
		} else if (width == 4) {
			uint32_t from, to = rnd() ^ (rnd() << 16);

			memcpy(&from, buf + foff, 4);
			memcpy(buf + foff, &to, 4);
			csum_replace4(&c, from, to);
		} else {
			uint32_t from[4], to[4];

			memcpy(from, buf + foff, 16);
			for (int i = 0; i < 4; i++)
				to[i] = rnd() ^ (rnd() << 16);
			if (iter % 5 == 0)
				memset(to, iter % 2 ? 0xff : 0, sizeof(to));
			memcpy(buf + foff, to, 16);
			csum_replace16(&c, from, to);
		}
		put16(buf + coff, 0);
		CU_ASSERT_EQUAL(stored(c), ref_csum(buf, len));
		/* The stored form also verifies from scratch. */
		memcpy(buf + coff, &c, 2);
		CU_ASSERT_EQUAL(ref_csum(buf, len), 0);
	}
}

static void test_ipv4_header(void)
{
	uint8_t hdr[60];

	for (int iter = 0; iter < 5000; iter++) {
		unsigned int ihl = 20 + 4 * (rnd() % 11);
		uint16_t c;

		fill_random(hdr, ihl);
		hdr[0] = (uint8_t)(0x40 | ihl / 4);
		c = csum_ipv4_header(hdr, ihl);
		put16(hdr + 10, 0);
		CU_ASSERT_EQUAL(stored(c), ref_csum(hdr, ihl));
	}
	/* A classic header: 198.18.0.1 -> 198.19.0.1, UDP, TTL 64, ID 0x1c46, DF. */
	memcpy(hdr,
	       "\x45\x00\x00\x73\x1c\x46\x40\x00\x40\x11\x00\x00\xc6\x12\x00\x01\xc6\x13\x00\x01",
	       20);
	CU_ASSERT_EQUAL(stored(csum_ipv4_header(hdr, 20)), ref_csum(hdr, 20));
}

struct spec {
	uint8_t family;
	uint8_t proto;
	uint8_t ip_opt_words;
	uint16_t payload_len;
};

/* A frame with random addresses in 198.18.0.0/15 or fd00::/8, random ports and payload. */
static uint32_t build(uint8_t *buf, const struct spec *sp)
{
	uint8_t *ip = buf + ETH_HLEN, *l4;
	uint32_t ip_hlen, l4_hlen = sp->proto == IPPROTO_UDP ? 8 : 20;

	memset(buf, 0, BUF_MAX);
	fill_random(buf, 12);
	if (sp->family == 4) {
		ip_hlen = 20 + 4u * sp->ip_opt_words;
		put16(buf + 12, 0x0800);
		ip[0] = (uint8_t)(0x40 | (5 + sp->ip_opt_words));
		put16(ip + 2, (uint16_t)(ip_hlen + l4_hlen + sp->payload_len));
		put16(ip + 4, (uint16_t)rnd());
		ip[8] = (uint8_t)(rnd() | 2);
		ip[9] = sp->proto;
		for (int a = 12; a <= 16; a += 4) {
			ip[a] = 198;
			ip[a + 1] = (uint8_t)(18 + (rnd() & 1));
			ip[a + 2] = (uint8_t)rnd();
			ip[a + 3] = (uint8_t)rnd();
		}
		for (uint32_t i = 20; i < ip_hlen; i++)
			ip[i] = 1;
	} else {
		ip_hlen = 40;
		put16(buf + 12, 0x86dd);
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(l4_hlen + sp->payload_len));
		ip[6] = sp->proto;
		ip[7] = (uint8_t)(rnd() | 2);
		fill_random(ip + 8, 32);
		ip[8] = ip[24] = 0xfd;
	}
	l4 = ip + ip_hlen;
	put16(l4, (uint16_t)rnd());
	put16(l4 + 2, (uint16_t)rnd());
	if (sp->proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint16_t)(l4_hlen + sp->payload_len));
	} else {
		fill_random(l4 + 4, 16);
		l4[12] = 0x50;
	}
	fill_random(l4 + l4_hlen, sp->payload_len);
	return ETH_HLEN + ip_hlen + l4_hlen + sp->payload_len;
}

/* Reference L4 checksum: the pseudo-header written out in bytes, then the segment. */
static uint16_t ref_l4(const uint8_t *frame, const struct pkt_info *pi)
{
	static uint8_t tmp[40 + BUF_MAX];
	uint32_t l4_len = pi->pkt_len - pi->l4_off;
	size_t n = 0;
	uint16_t c;

	memset(tmp, 0, 40);
	if (pi->family == 4) {
		memcpy(tmp, frame + pi->l3_off + 12, 8);
		tmp[9] = pi->l4_proto;
		put16(tmp + 10, (uint16_t)l4_len);
		n = 12;
	} else {
		memcpy(tmp, frame + pi->l3_off + 8, 32);
		put16(tmp + 34, (uint16_t)l4_len);
		tmp[39] = pi->l4_proto;
		n = 40;
	}
	memcpy(tmp + n, frame + pi->l4_off, l4_len);
	put16(tmp + n + (pi->l4_proto == IPPROTO_UDP ? 6 : 16), 0);
	c = ref_csum(tmp, n + l4_len);
	if (c == 0 && pi->l4_proto == IPPROTO_UDP)
		c = 0xffff;
	return c;
}

static uint8_t *l4_csum_field(uint8_t *frame, const struct pkt_info *pi)
{
	return frame + pi->l4_off + (pi->l4_proto == IPPROTO_UDP ? 6 : 16);
}

static void random_spec(struct spec *sp)
{
	sp->family = (rnd() & 1) ? 4 : 6;
	sp->proto = (rnd() & 1) ? IPPROTO_UDP : IPPROTO_TCP;
	sp->ip_opt_words = (rnd() & 3) ? 0 : rnd() % 11;
	sp->payload_len = rnd() % 1500;
}

static void test_l4_compute(void)
{
	static uint8_t buf[BUF_MAX];
	unsigned int seen[2][2] = {{0}};

	for (int iter = 0; iter < 4000; iter++) {
		struct spec sp;
		struct pkt_info pi;
		uint32_t len;

		random_spec(&sp);
		len = build(buf, &sp);
		CU_ASSERT_EQUAL_FATAL(pkt_parse(buf, len, &pi), PKT_OK);
		/* Whatever sits in the field must not matter. */
		put16(l4_csum_field(buf, &pi), (uint16_t)rnd());
		CU_ASSERT_EQUAL(stored(csum_l4_compute(buf, &pi)), ref_l4(buf, &pi));
		seen[sp.family == 6][sp.proto == IPPROTO_TCP]++;
	}
	CU_ASSERT(seen[0][0] && seen[0][1] && seen[1][0] && seen[1][1]);
}

static void set_checksums(uint8_t *frame, const struct pkt_info *pi)
{
	uint16_t c;

	if (pi->family == 4) {
		c = csum_ipv4_header(frame + pi->l3_off, pi->l4_off - pi->l3_off);
		memcpy(frame + pi->l3_off + 10, &c, 2);
	}
	c = csum_l4_compute(frame, pi);
	memcpy(l4_csum_field(frame, pi), &c, 2);
}

/* Adjust two payload bytes so the UDP sum comes to 0xffff: RFC 768 sends 0 as 0xffff. */
static void test_udp_zero_result(void)
{
	static uint8_t buf[BUF_MAX];

	for (int family = 4; family <= 6; family += 2) {
		struct spec sp = {
		    .family = (uint8_t)family, .proto = IPPROTO_UDP, .payload_len = 20};
		struct pkt_info pi;
		uint32_t len = build(buf, &sp);
		uint16_t c;

		CU_ASSERT_EQUAL_FATAL(pkt_parse(buf, len, &pi), PKT_OK);
		put16(buf + pi.payload_off, 0);
		/* The word that brings the sum to -0 is the checksum the packet has now. */
		c = ref_l4(buf, &pi);
		put16(buf + pi.payload_off, c == 0xffff ? 0 : c);
		CU_ASSERT_EQUAL(csum_l4_compute(buf, &pi), 0xffff);
		CU_ASSERT_EQUAL(ref_l4(buf, &pi), 0xffff);
		set_checksums(buf, &pi);
		CU_ASSERT_EQUAL(get16(l4_csum_field(buf, &pi)), 0xffff);
		CU_ASSERT_EQUAL(csum_verify(buf, &pi), 1);
	}
}

static void test_verify(void)
{
	static uint8_t buf[BUF_MAX];

	for (int iter = 0; iter < 2000; iter++) {
		struct spec sp;
		struct pkt_info pi;
		uint32_t len, pos, l3, l4;

		random_spec(&sp);
		len = build(buf, &sp);
		CU_ASSERT_EQUAL_FATAL(pkt_parse(buf, len, &pi), PKT_OK);
		set_checksums(buf, &pi);
		CU_ASSERT_EQUAL(csum_verify(buf, &pi), 1);
		CU_ASSERT_EQUAL(ref_l4(buf, &pi), get16(l4_csum_field(buf, &pi)));

		/* Any single-byte change in the checksummed data is caught. */
		l3 = pi.l3_off;
		l4 = pi.l4_off;
		pos = l3 + rnd() % (pi.pkt_len - l3);
		if (pi.family == 6 && pos < l3 + 8)
			pos = l3 + 8; /* v6 version/class/flow/hop limit are not covered */
		/* A UDP/IPv4 checksum turned into 0 would read as "none". */
		if (pi.l4_proto == IPPROTO_UDP && pos >= l4 + 6 && pos < l4 + 8)
			pos = l4;
		buf[pos] ^= (uint8_t)(1 + rnd() % 255);
		CU_ASSERT_EQUAL(csum_verify(buf, &pi), 0);
	}

	/* UDP with checksum 0: "none" over IPv4, invalid over IPv6 (RFC 8200 8.1). */
	for (int family = 4; family <= 6; family += 2) {
		struct spec sp = {
		    .family = (uint8_t)family, .proto = IPPROTO_UDP, .payload_len = 33};
		struct pkt_info pi;
		uint32_t len = build(buf, &sp);

		CU_ASSERT_EQUAL_FATAL(pkt_parse(buf, len, &pi), PKT_OK);
		set_checksums(buf, &pi);
		put16(l4_csum_field(buf, &pi), 0);
		CU_ASSERT_EQUAL(csum_verify(buf, &pi), family == 4);
		/* A bad IPv4 header checksum fails even with no UDP checksum. */
		if (family == 4) {
			buf[pi.l3_off + 10] ^= 1;
			CU_ASSERT_EQUAL(csum_verify(buf, &pi), 0);
		}
	}

	/* TCP checksum 0 is a value like any other. */
	{
		struct spec sp = {.family = 4, .proto = IPPROTO_TCP, .payload_len = 10};
		struct pkt_info pi;
		uint32_t len = build(buf, &sp);

		CU_ASSERT_EQUAL_FATAL(pkt_parse(buf, len, &pi), PKT_OK);
		set_checksums(buf, &pi);
		if (get16(l4_csum_field(buf, &pi)) != 0) {
			put16(l4_csum_field(buf, &pi), 0);
			CU_ASSERT_EQUAL(csum_verify(buf, &pi), 0);
		}
	}
}

static CU_TestInfo csum_tests[] = {
    {"partial_random", test_partial_random},
    {"partial_edges", test_partial_edges},
    {"partial_chunks", test_partial_chunks},
    {"partial_large", test_partial_large},
    {"rfc1624_example", test_rfc1624_example},
    {"incremental_2_4_16", test_incremental},
    {"ipv4_header", test_ipv4_header},
    {"l4_compute", test_l4_compute},
    {"udp_zero_result", test_udp_zero_result},
    {"verify", test_verify},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(csum, "csum", csum_tests, NULL, NULL);
