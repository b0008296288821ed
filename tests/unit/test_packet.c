// SPDX-License-Identifier: BSD-2-Clause
/*
 * pkt_parse(): offsets and fields of well-formed frames, every refusal
 * reason, and safety on truncated and random input.  Frames under test are
 * copied into heap buffers of their exact length so that valgrind (or ASan)
 * catches any read past the end.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "packet.h"
#include "unit.h"

#define ETH_HLEN 14
#define BUF_MAX 2048

struct spec {
	uint8_t family;
	uint8_t proto;
	uint8_t ip_opt_words;  /* IPv4: IHL - 5 */
	uint8_t tcp_opt_words; /* TCP: data offset - 5 */
	uint16_t payload_len;
	uint16_t sport, dport;
	uint8_t ttl;
};

static const uint8_t v4_src[4] = {198, 18, 0, 1};
static const uint8_t v4_dst[4] = {198, 19, 255, 2};
static const uint8_t v6_src[16] = {0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t v6_dst[16] = {0xfd, 0x00, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x02};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Ethernet + IP + UDP/TCP + payload; checksums are left zero (the parser ignores them). */
static uint32_t build(uint8_t *buf, const struct spec *sp)
{
	uint32_t ip_hlen, l4_hlen, off;
	uint8_t *ip = buf + ETH_HLEN, *l4;

	memset(buf, 0, BUF_MAX);
	memcpy(buf, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	l4_hlen = sp->proto == IPPROTO_UDP ? 8 : 20 + 4u * sp->tcp_opt_words;
	if (sp->family == 4) {
		ip_hlen = 20 + 4u * sp->ip_opt_words;
		put16(buf + 12, 0x0800);
		ip[0] = 0x40 | (5 + sp->ip_opt_words);
		put16(ip + 2, (uint16_t)(ip_hlen + l4_hlen + sp->payload_len));
		put16(ip + 4, 0x1234);
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = sp->ttl;
		ip[9] = sp->proto;
		memcpy(ip + 12, v4_src, 4);
		memcpy(ip + 16, v4_dst, 4);
		for (uint32_t i = 20; i < ip_hlen; i++)
			ip[i] = 1; /* NOP options */
	} else {
		ip_hlen = 40;
		put16(buf + 12, 0x86dd);
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(l4_hlen + sp->payload_len));
		ip[6] = sp->proto;
		ip[7] = sp->ttl;
		memcpy(ip + 8, v6_src, 16);
		memcpy(ip + 24, v6_dst, 16);
	}
	l4 = ip + ip_hlen;
	put16(l4, sp->sport);
	put16(l4 + 2, sp->dport);
	if (sp->proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint16_t)(l4_hlen + sp->payload_len));
	} else {
		put16(l4 + 4, 0x0102);
		l4[12] = (uint8_t)((5 + sp->tcp_opt_words) << 4);
		l4[13] = 0x18;
		for (uint32_t i = 20; i < l4_hlen; i++)
			l4[i] = 1;
	}
	off = ETH_HLEN + ip_hlen + l4_hlen;
	for (uint32_t i = 0; i < sp->payload_len; i++)
		buf[off + i] = (uint8_t)(i * 7 + 3);
	return off + sp->payload_len;
}

/*
 * Parse a heap copy of exactly `len` bytes.  Every frame of these tests is
 * also parsed by pkt_parse_general(), the parser without pkt_parse()'s
 * IPv4 shortcut: the two must agree on the result and, when it is PKT_OK,
 * on every byte they write.
 */
static enum pkt_parse_result parse_exact(const uint8_t *frame, uint32_t len, struct pkt_info *pi)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum pkt_parse_result r, r_general;
	struct pkt_info general;

	CU_ASSERT_FATAL(copy != NULL);
	memcpy(copy, frame, len);
	memset(pi, 0xa5, sizeof(*pi));
	memset(&general, 0xa5, sizeof(general));
	r = pkt_parse(copy, len, pi);
	r_general = pkt_parse_general(copy, len, &general);
	CU_ASSERT_EQUAL(r, r_general);
	if (r == PKT_OK && r_general == PKT_OK)
		CU_ASSERT(memcmp(pi, &general, sizeof(general)) == 0);
	free(copy);
	return r;
}

static void check_addrs(const struct pkt_info *pi, uint8_t family)
{
	union ferry_addr s = {0}, d = {0};

	if (family == 4) {
		memcpy(s.b, v4_src, 4);
		memcpy(d.b, v4_dst, 4);
	} else {
		memcpy(s.b, v6_src, 16);
		memcpy(d.b, v6_dst, 16);
	}
	CU_ASSERT(memcmp(&pi->saddr, &s, sizeof(s)) == 0);
	CU_ASSERT(memcmp(&pi->daddr, &d, sizeof(d)) == 0);
}

static void test_v4_udp(void)
{
	struct spec sp = {.family = 4,
			  .proto = IPPROTO_UDP,
			  .payload_len = 100,
			  .sport = 40000,
			  .dport = 53,
			  .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	memset(&pi, 0xaa, sizeof(pi));
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.l3_off, 14);
	CU_ASSERT_EQUAL(pi.l4_off, 34);
	CU_ASSERT_EQUAL(pi.payload_off, 42);
	CU_ASSERT_EQUAL(pi.pkt_len, 142);
	CU_ASSERT_EQUAL(pi.family, 4);
	CU_ASSERT_EQUAL(pi.l4_proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.ttl, 64);
	CU_ASSERT_EQUAL(pi.has_ip_options, 0);
	CU_ASSERT_EQUAL(pi.sport, 40000);
	CU_ASSERT_EQUAL(pi.dport, 53);
	check_addrs(&pi, 4);
}

static void test_v4_tcp(void)
{
	struct spec sp = {.family = 4,
			  .proto = IPPROTO_TCP,
			  .tcp_opt_words = 3,
			  .payload_len = 10,
			  .sport = 443,
			  .dport = 51000,
			  .ttl = 3};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.l4_off, 34);
	CU_ASSERT_EQUAL(pi.payload_off, 34 + 32);
	CU_ASSERT_EQUAL(pi.pkt_len, 34 + 32 + 10);
	CU_ASSERT_EQUAL(pi.family, 4);
	CU_ASSERT_EQUAL(pi.l4_proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(pi.ttl, 3);
	CU_ASSERT_EQUAL(pi.sport, 443);
	CU_ASSERT_EQUAL(pi.dport, 51000);
	check_addrs(&pi, 4);
}

static void test_v4_options(void)
{
	struct spec sp = {.family = 4,
			  .proto = IPPROTO_UDP,
			  .ip_opt_words = 10,
			  .payload_len = 1,
			  .sport = 1,
			  .dport = 65535,
			  .ttl = 255};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.has_ip_options, 1);
	CU_ASSERT_EQUAL(pi.l4_off, 14 + 60);
	CU_ASSERT_EQUAL(pi.payload_off, 14 + 60 + 8);
	CU_ASSERT_EQUAL(pi.pkt_len, len);
	CU_ASSERT_EQUAL(pi.sport, 1);
	CU_ASSERT_EQUAL(pi.dport, 65535);
}

static void test_v6_udp(void)
{
	struct spec sp = {.family = 6,
			  .proto = IPPROTO_UDP,
			  .payload_len = 0,
			  .sport = 5353,
			  .dport = 5353,
			  .ttl = 1};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.l3_off, 14);
	CU_ASSERT_EQUAL(pi.l4_off, 54);
	CU_ASSERT_EQUAL(pi.payload_off, 62);
	CU_ASSERT_EQUAL(pi.pkt_len, 62);
	CU_ASSERT_EQUAL(pi.family, 6);
	CU_ASSERT_EQUAL(pi.l4_proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.ttl, 1);
	CU_ASSERT_EQUAL(pi.has_ip_options, 0);
	CU_ASSERT_EQUAL(pi.sport, 5353);
	CU_ASSERT_EQUAL(pi.dport, 5353);
	check_addrs(&pi, 6);
}

static void test_v6_tcp(void)
{
	struct spec sp = {.family = 6,
			  .proto = IPPROTO_TCP,
			  .tcp_opt_words = 10,
			  .payload_len = 1400,
			  .sport = 50123,
			  .dport = 80,
			  .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.l4_off, 54);
	CU_ASSERT_EQUAL(pi.payload_off, 54 + 60);
	CU_ASSERT_EQUAL(pi.pkt_len, 54 + 60 + 1400);
	CU_ASSERT_EQUAL(pi.family, 6);
	CU_ASSERT_EQUAL(pi.l4_proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(pi.sport, 50123);
	CU_ASSERT_EQUAL(pi.dport, 80);
	check_addrs(&pi, 6);
}

static void check_truncation(const struct spec *sp)
{
	uint8_t buf[BUF_MAX];
	uint32_t len = build(buf, sp);
	uint32_t l3_end = ETH_HLEN + (sp->family == 4 ? 20 + 4u * sp->ip_opt_words : 40);

	for (uint32_t l = 0; l <= len; l++) {
		struct pkt_info pi;
		enum pkt_parse_result r = parse_exact(buf, l, &pi);

		if (l == len) {
			CU_ASSERT_EQUAL(r, PKT_OK);
		} else if (l < l3_end) {
			CU_ASSERT_EQUAL(r, PKT_ERR_TRUNCATED);
		} else {
			/* The IP header is whole but its length runs past the frame. */
			CU_ASSERT_EQUAL(r, PKT_ERR_BAD_LENGTH);
		}
	}
}

static void test_truncated(void)
{
	const struct spec specs[] = {
	    {.family = 4, .proto = IPPROTO_UDP, .payload_len = 20, .sport = 1, .dport = 2},
	    {.family = 4,
	     .proto = IPPROTO_TCP,
	     .ip_opt_words = 2,
	     .tcp_opt_words = 3,
	     .payload_len = 5,
	     .sport = 1,
	     .dport = 2},
	    {.family = 6, .proto = IPPROTO_UDP, .payload_len = 3, .sport = 1, .dport = 2},
	    {.family = 6,
	     .proto = IPPROTO_TCP,
	     .tcp_opt_words = 1,
	     .payload_len = 0,
	     .sport = 1,
	     .dport = 2},
	};

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		check_truncation(&specs[i]);
}

/* L4 headers cut by the IP length (not by the frame) are truncated too. */
static void test_l4_past_ip_end(void)
{
	struct spec sp = {.family = 4, .proto = IPPROTO_TCP, .payload_len = 0, .ttl = 9};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	put16(buf + ETH_HLEN + 2, 20 + 19);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_TRUNCATED);

	/* Data offset 15 (60 bytes) but only the 20-byte header in the packet. */
	len = build(buf, &sp);
	buf[ETH_HLEN + 20 + 12] = 0xf0;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_TRUNCATED);

	sp.family = 6;
	sp.proto = IPPROTO_UDP;
	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 4, 7);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_TRUNCATED);
}

static void test_bad_header(void)
{
	struct spec sp4 = {.family = 4, .proto = IPPROTO_UDP, .payload_len = 30, .ttl = 64};
	struct spec sp6 = {.family = 6, .proto = IPPROTO_TCP, .payload_len = 30, .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len;

	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		len = build(buf, &sp4);
		buf[ETH_HLEN] = 0x40 | ihl;
		CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_HEADER);
	}
	/* IHL 15 in a frame too short for 60 bytes of header. */
	sp4.payload_len = 0;
	len = build(buf, &sp4);
	buf[ETH_HLEN] = 0x4f;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_TRUNCATED);

	sp4.payload_len = 30;
	len = build(buf, &sp4);
	buf[ETH_HLEN] = 0x65;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_HEADER);

	len = build(buf, &sp6);
	buf[ETH_HLEN] = 0x40;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_HEADER);

	for (uint8_t doff = 0; doff < 5; doff++) {
		len = build(buf, &sp6);
		buf[ETH_HLEN + 40 + 12] = (uint8_t)(doff << 4);
		CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_HEADER);
	}
}

static void test_bad_length(void)
{
	struct spec sp = {
	    .family = 4, .proto = IPPROTO_UDP, .ip_opt_words = 1, .payload_len = 30, .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len;

	/* Total length past the frame, and shorter than the header itself. */
	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 2, (uint16_t)(len - ETH_HLEN + 1));
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
	put16(buf + ETH_HLEN + 2, 23);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
	put16(buf + ETH_HLEN + 2, 0);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
	put16(buf + ETH_HLEN + 2, 0xffff);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);

	/* UDP length longer and shorter than the IP payload. */
	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 24 + 4, 8 + 31);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
	put16(buf + ETH_HLEN + 24 + 4, 8 + 29);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
	put16(buf + ETH_HLEN + 24 + 4, 0);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);

	/* IPv6 payload length past the frame, and a UDP length mismatch. */
	sp.family = 6;
	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 4, (uint16_t)(len - ETH_HLEN - 40 + 1));
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 40 + 4, 8 + 31);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_BAD_LENGTH);
}

static void test_fragments(void)
{
	struct spec sp = {.family = 4, .proto = IPPROTO_UDP, .payload_len = 30, .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len;

	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 6, 0x2000); /* MF, offset 0: the first fragment */
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_FRAGMENT);
	put16(buf + ETH_HLEN + 6, 0x0001); /* last fragment, offset 8 */
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_FRAGMENT);
	put16(buf + ETH_HLEN + 6, 0x1fff);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_FRAGMENT);
	put16(buf + ETH_HLEN + 6, 0x4000); /* DF alone is fine */
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_OK);
	put16(buf + ETH_HLEN + 6, 0x8000); /* reserved bit: not a fragment */
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_OK);

	sp.family = 6;
	len = build(buf, &sp);
	buf[ETH_HLEN + 6] = IPPROTO_FRAGMENT;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_FRAGMENT);
}

static void test_unsupported(void)
{
	struct spec sp = {.family = 4, .proto = IPPROTO_UDP, .payload_len = 30, .ttl = 64};
	const uint8_t v6_next[] = {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS,
				   IPPROTO_ICMPV6,  IPPROTO_NONE,    IPPROTO_ESP,
				   IPPROTO_AH};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len;

	len = build(buf, &sp);
	put16(buf + 12, 0x8100); /* 802.1Q */
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);
	put16(buf + 12, 0x88a8); /* 802.1ad */
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);
	put16(buf + 12, 0x0806); /* ARP */
	CU_ASSERT_EQUAL(parse_exact(buf, 42, &pi), PKT_ERR_UNSUPPORTED);
	CU_ASSERT_EQUAL(parse_exact(buf, 14, &pi), PKT_ERR_UNSUPPORTED);

	len = build(buf, &sp);
	buf[ETH_HLEN + 9] = IPPROTO_ICMP;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);
	buf[ETH_HLEN + 9] = IPPROTO_SCTP;
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);

	sp.family = 6;
	for (size_t i = 0; i < sizeof(v6_next); i++) {
		len = build(buf, &sp);
		buf[ETH_HLEN + 6] = v6_next[i];
		CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);
	}
}

/*
 * An ICMP error about a UDP/TCP packet: the built frame, shifted 8 bytes down
 * behind a new IP and ICMP header, becomes its own quote.  Every way the
 * quote can be wrong is in the "icmp" suite.
 */
static uint32_t build_icmp_error(uint8_t *buf, const struct spec *quoted, uint8_t type)
{
	uint8_t inner[BUF_MAX];
	uint32_t qlen = build(inner, quoted) - ETH_HLEN;
	uint32_t hlen = quoted->family == 4 ? 20 : 40;
	uint8_t *ip = buf + ETH_HLEN;

	memcpy(buf + ETH_HLEN + hlen + 8, inner + ETH_HLEN, qlen);
	memcpy(buf, inner, ETH_HLEN);
	memset(ip, 0, hlen + 8);
	if (quoted->family == 4) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(hlen + 8 + qlen));
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		memcpy(ip + 12, v4_dst, 4);
		memcpy(ip + 16, v4_src, 4);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(8 + qlen));
		ip[6] = IPPROTO_ICMPV6;
		ip[7] = 64;
		memcpy(ip + 8, v6_dst, 16);
		memcpy(ip + 24, v6_src, 16);
	}
	ip[hlen] = type;
	ip[hlen + 1] = 3;
	return ETH_HLEN + hlen + 8 + qlen;
}

static void test_icmp_errors(void)
{
	struct spec sp = {.family = 4,
			  .proto = IPPROTO_UDP,
			  .ip_opt_words = 2,
			  .payload_len = 10,
			  .sport = 40000,
			  .dport = 6000,
			  .ttl = 63};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build_icmp_error(buf, &sp, 3);

	memset(&pi, 0xaa, sizeof(pi));
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.family, 4);
	CU_ASSERT_EQUAL(pi.l4_proto, IPPROTO_ICMP);
	CU_ASSERT_EQUAL(pi.ttl, 64);
	CU_ASSERT_EQUAL(pi.l4_off, 34);
	CU_ASSERT_EQUAL(pi.payload_off, 42);
	CU_ASSERT_EQUAL(pi.pkt_len, len);
	CU_ASSERT_EQUAL(pi.sport, 0);
	CU_ASSERT_EQUAL(pi.dport, 0);
	CU_ASSERT_EQUAL(pi.icmp_type, 3);
	CU_ASSERT_EQUAL(pi.icmp_code, 3);
	CU_ASSERT_EQUAL(pi.quote.l3_off, 42);
	CU_ASSERT_EQUAL(pi.quote.l4_off, 42 + 28); /* IPv4 options in the quote */
	CU_ASSERT_EQUAL(pi.quote.l4_proto, IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.quote.sport, 40000);
	CU_ASSERT_EQUAL(pi.quote.dport, 6000);
	CU_ASSERT(memcmp(pi.quote.saddr.b, v4_src, 4) == 0);
	CU_ASSERT(memcmp(pi.quote.daddr.b, v4_dst, 4) == 0);
	CU_ASSERT(memcmp(pi.saddr.b, v4_dst, 4) == 0);
	CU_ASSERT(pi.quote.saddr.w[1] == 0 && pi.quote.saddr.w[3] == 0);

	/* A TCP quote needs only its first 8 bytes (RFC 792). */
	sp.proto = IPPROTO_TCP;
	sp.ip_opt_words = 0;
	build_icmp_error(buf, &sp, 11);
	len = ETH_HLEN + 20 + 8 + 20 + 8;
	put16(buf + ETH_HLEN + 2, (uint16_t)(len - ETH_HLEN));
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.quote.l4_proto, IPPROTO_TCP);
	CU_ASSERT_EQUAL(pi.icmp_type, 11);
	CU_ASSERT_EQUAL(parse_exact(buf, len - 1, &pi), PKT_ERR_BAD_LENGTH);

	sp.family = 6;
	sp.proto = IPPROTO_UDP;
	len = build_icmp_error(buf, &sp, 1);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.l4_proto, IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL(pi.l4_off, 54);
	CU_ASSERT_EQUAL(pi.quote.l3_off, 62);
	CU_ASSERT_EQUAL(pi.quote.l4_off, 102);
	CU_ASSERT(memcmp(pi.quote.saddr.b, v6_src, 16) == 0);
	CU_ASSERT(memcmp(pi.quote.daddr.b, v6_dst, 16) == 0);

	/* Echo request: the kernel's, so not parsed; so is a packet after one. */
	len = build_icmp_error(buf, &sp, 128);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);
	sp.family = 4;
	len = build_icmp_error(buf, &sp, 8);
	CU_ASSERT_EQUAL(parse_exact(buf, len, &pi), PKT_ERR_UNSUPPORTED);
	sp.payload_len = 0;
	len = build(buf, &sp);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.icmp_type, 0);
	CU_ASSERT_EQUAL(pi.quote.l4_off, 0);
}

static void test_padding_trimmed(void)
{
	struct spec sp = {
	    .family = 4, .proto = IPPROTO_UDP, .payload_len = 2, .sport = 7, .dport = 9, .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	/* A 44-byte frame padded to the 60-byte Ethernet minimum. */
	CU_ASSERT_EQUAL_FATAL(len, 44);
	memset(buf + len, 0xee, 16);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, 60, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.pkt_len, 44);
	CU_ASSERT_EQUAL(pi.payload_off, 42);

	/* IPv6 with a zero-length UDP payload in a minimum-size frame. */
	sp.family = 6;
	sp.payload_len = 0;
	len = build(buf, &sp);
	CU_ASSERT_EQUAL_FATAL(len, 62);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, 64, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pi.pkt_len, 62);

	/* Bytes in the padding do not make up for a short UDP header. */
	sp.family = 4;
	len = build(buf, &sp);
	put16(buf + ETH_HLEN + 2, 20 + 4);
	CU_ASSERT_EQUAL(parse_exact(buf, 60, &pi), PKT_ERR_TRUNCATED);
}

/* The length a frame is forwarded with: no trailer, the sender's minimum padding kept. */
static void test_frame_len(void)
{
	struct spec sp = {
	    .family = 4, .proto = IPPROTO_UDP, .payload_len = 32, .sport = 7, .dport = 9, .ttl = 64};
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	uint32_t len = build(buf, &sp);

	/* A 74-byte IP packet with 1400 bytes of trailer leaves as 74 bytes. */
	CU_ASSERT_EQUAL_FATAL(len, 74);
	memset(buf + len, 0xee, 1400);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len + 1400, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, len + 1400), 74);
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, len), 74);

	/* A 44-byte packet keeps padding up to the Ethernet minimum, not beyond... */
	sp.payload_len = 2;
	len = build(buf, &sp);
	CU_ASSERT_EQUAL_FATAL(len, 44);
	memset(buf + len, 0xee, 1400);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len + 1400, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, len + 1400), PKT_ETH_MIN_LEN);
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, 60), 60);
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, 50), 50);
	/* ... and is not padded when it came unpadded (a veth does not pad). */
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, 44), 44);

	/* IPv6 alike. */
	sp.family = 6;
	sp.payload_len = 100;
	len = build(buf, &sp);
	memset(buf + len, 0xee, 1000);
	CU_ASSERT_EQUAL_FATAL(parse_exact(buf, len + 1000, &pi), PKT_OK);
	CU_ASSERT_EQUAL(pkt_frame_len(&pi, len + 1000), len);
}

static void test_result_str(void)
{
	CU_ASSERT_STRING_EQUAL(pkt_parse_result_str(PKT_OK), "ok");
	CU_ASSERT_STRING_EQUAL(pkt_parse_result_str(PKT_ERR_TRUNCATED), "truncated");
	CU_ASSERT_STRING_EQUAL(pkt_parse_result_str(PKT_ERR_BAD_LENGTH), "bad_length");
	CU_ASSERT_STRING_EQUAL(pkt_parse_result_str(PKT_ERR_BAD_HEADER), "bad_header");
	CU_ASSERT_STRING_EQUAL(pkt_parse_result_str(PKT_ERR_FRAGMENT), "fragment");
	CU_ASSERT_STRING_EQUAL(pkt_parse_result_str(PKT_ERR_UNSUPPORTED), "unsupported");
	CU_ASSERT_PTR_NOT_NULL(pkt_parse_result_str(PKT_ERR__MAX));
	CU_ASSERT_PTR_NOT_NULL(pkt_parse_result_str((enum pkt_parse_result) - 1));
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void check_ok_invariants(const struct pkt_info *pi, uint32_t len)
{
	CU_ASSERT_EQUAL(pi->l3_off, ETH_HLEN);
	CU_ASSERT(pi->family == 4 || pi->family == 6);
	CU_ASSERT(pi->l3_off < pi->l4_off);
	CU_ASSERT(pi->payload_off <= pi->pkt_len);
	CU_ASSERT(pi->pkt_len <= len);
	if (pi->l4_proto == IPPROTO_ICMP || pi->l4_proto == IPPROTO_ICMPV6) {
		/* An ICMP error: its quote's headers lie inside the packet. */
		CU_ASSERT(pi->l4_proto == (pi->family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6));
		CU_ASSERT(pi->payload_off == pi->l4_off + 8);
		CU_ASSERT(pi->quote.l3_off == pi->payload_off);
		CU_ASSERT(pi->quote.l4_off >= pi->quote.l3_off + (pi->family == 4 ? 20 : 40));
		CU_ASSERT(pi->quote.l4_off + 8 <= pi->pkt_len);
		return;
	}
	CU_ASSERT(pi->l4_proto == IPPROTO_UDP || pi->l4_proto == IPPROTO_TCP);
	CU_ASSERT(pi->l4_off + (pi->l4_proto == IPPROTO_UDP ? 8 : 20) <= pi->payload_off);
}

/* Random bytes, and valid frames with random bytes changed: no crash, sane results. */
static void test_fuzz(void)
{
	uint8_t buf[BUF_MAX];
	struct pkt_info pi;
	unsigned int ok = 0;

	for (int iter = 0; iter < 20000; iter++) {
		uint32_t len;

		if (iter & 1) {
			struct spec sp = {
			    .family = (rnd() & 1) ? 4 : 6,
			    .proto = (rnd() & 1) ? IPPROTO_UDP : IPPROTO_TCP,
			    .ip_opt_words = rnd() % 11,
			    .tcp_opt_words = rnd() % 11,
			    .payload_len = rnd() % 300,
			    .sport = (uint16_t)rnd(),
			    .dport = (uint16_t)rnd(),
			    .ttl = (uint8_t)rnd(),
			};
			int flips = rnd() % 4;

			len = build(buf, &sp);
			for (int i = 0; i < flips; i++)
				buf[rnd() % len] = (uint8_t)rnd();
			if (rnd() % 4 == 0)
				len = rnd() % (len + 1);
		} else {
			len = rnd() % 200;
			for (uint32_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rnd();
			if (len >= 15 && (rnd() & 1)) {
				put16(buf + 12, (rnd() & 1) ? 0x0800 : 0x86dd);
				buf[14] =
				    (uint8_t)((buf[13] == 0 ? 0x40 : 0x60) | (buf[14] & 0x0f));
			}
		}
		if (parse_exact(buf, len, &pi) == PKT_OK) {
			ok++;
			check_ok_invariants(&pi, len);
		}
	}
	/* The mutated half must keep reaching the end of the parser. */
	CU_ASSERT(ok > 1000);
}

static CU_TestInfo packet_tests[] = {
    {"v4_udp", test_v4_udp},
    {"v4_tcp", test_v4_tcp},
    {"v4_options", test_v4_options},
    {"v6_udp", test_v6_udp},
    {"v6_tcp", test_v6_tcp},
    {"truncated_every_length", test_truncated},
    {"l4_past_ip_end", test_l4_past_ip_end},
    {"bad_header", test_bad_header},
    {"bad_length", test_bad_length},
    {"fragments", test_fragments},
    {"unsupported", test_unsupported},
    {"icmp_errors", test_icmp_errors},
    {"padding_trimmed", test_padding_trimmed},
    {"frame_len_no_trailer", test_frame_len},
    {"result_str", test_result_str},
    {"fuzz", test_fuzz},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(packet, "packet", packet_tests, NULL, NULL);
