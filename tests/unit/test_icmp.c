// SPDX-License-Identifier: BSD-2-Clause
/*
 * ICMP and ICMPv6 errors about NAT sessions (lib/icmp.c).  Each golden case
 * plays the whole story from scratch: the client's packet, the packet ferry
 * sent upstream for it, the error a router or the upstream sent back about
 * that one, and the error the client should get.  The translated frame must
 * equal the expected one byte for byte, and every checksum in it is checked
 * again with a naive big-endian sum here, never with lib/csum.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "ferry_match.h"
#include "icmp.h"
#include "nat.h"
#include "packet.h"
#include "unit.h"

#define ETH_HLEN 14
#define BUF_MAX 2048

#define CLIENT_PORT 34567
#define FLOW_PORT 5000
#define NAT_PORT 40007
#define UPSTREAM_PORT 6000

static const uint8_t mac_cli[6] = {0x02, 0xc1, 0, 0, 0, 0x01};
static const uint8_t mac_px_c[6] = {0x02, 0x9c, 0, 0, 0, 0x02};
static const uint8_t mac_px_s[6] = {0x02, 0x95, 0, 0, 0, 0x03};
static const uint8_t mac_srv[6] = {0x02, 0x5e, 0, 0, 0, 0x04};

/* Client C, flow address F, egress E, upstream U, a router R between E and U. */
struct addrs {
	const char *c, *f, *e, *u, *r;
};

static const struct addrs addrs4 = {"198.18.1.2", "198.18.1.1", "198.18.2.1", "198.18.2.2",
				    "198.18.3.254"};
static const struct addrs addrs6 = {"fd00:1::2", "fd00:1::1", "fd00:2::1", "fd00:2::2",
				    "fd00:3::fe"};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static size_t alen(int family)
{
	return family == 4 ? 4 : 16;
}

static union ferry_addr addr(int family, const char *s)
{
	union ferry_addr a = {0};

	CU_ASSERT_FATAL(inet_pton(family == 4 ? AF_INET : AF_INET6, s, a.b) == 1);
	return a;
}

/* ---- the naive reference: RFC 1071 over big-endian 16-bit words ---- */

static uint32_t sum_be(const uint8_t *p, size_t len, uint32_t s)
{
	for (size_t i = 0; i < len; i++)
		s += i & 1 ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint16_t finish(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Pseudo-header sum (RFC 768, RFC 8200 8.1): src and dst at `addrs`, adjacent. */
static uint32_t pseudo(int family, const uint8_t *addrs, uint8_t proto, uint32_t len)
{
	uint32_t s = sum_be(addrs, 2 * alen(family), 0);

	return s + proto + (len >> 16) + (len & 0xffff);
}

/* ---- packets from scratch ---- */

struct l4spec {
	int family;
	uint8_t proto;
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t ttl;
	uint16_t payload;
	bool no_udp_csum; /* UDP/IPv4 without checksum */
};

static size_t ip_hlen(int family)
{
	return family == 4 ? 20 : 40;
}

static uint8_t *ip_addrs(uint8_t *ip, int family)
{
	return ip + (family == 4 ? 12 : 8);
}

static void ipv4_fix_csum(uint8_t *ip)
{
	put16(ip + 10, 0);
	put16(ip + 10, finish(sum_be(ip, 20, 0)));
}

/* An IP packet (no Ethernet) with UDP or TCP and a payload; every checksum computed here. */
static size_t build_ip(uint8_t *ip, const struct l4spec *sp)
{
	size_t hlen = ip_hlen(sp->family), l4hlen = sp->proto == IPPROTO_UDP ? 8 : 20;
	size_t l4len = l4hlen + sp->payload, len = hlen + l4len;
	uint8_t *l4 = ip + hlen, *csum;

	memset(ip, 0, len);
	if (sp->family == 4) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)len);
		put16(ip + 4, 0x1c46);
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = sp->ttl;
		ip[9] = sp->proto;
		inet_pton(AF_INET, sp->src, ip + 12);
		inet_pton(AF_INET, sp->dst, ip + 16);
		ipv4_fix_csum(ip);
	} else {
		ip[0] = 0x60;
		ip[2] = 0x12; /* a flow label */
		put16(ip + 4, (uint16_t)l4len);
		ip[6] = sp->proto;
		ip[7] = sp->ttl;
		inet_pton(AF_INET6, sp->src, ip + 8);
		inet_pton(AF_INET6, sp->dst, ip + 24);
	}
	put16(l4, sp->sport);
	put16(l4 + 2, sp->dport);
	if (sp->proto == IPPROTO_UDP) {
		put16(l4 + 4, (uint16_t)l4len);
		csum = l4 + 6;
	} else {
		put16(l4 + 4, 0x0102);
		put16(l4 + 6, 0x0304); /* sequence number */
		put16(l4 + 10, 0x0506);
		l4[12] = 5 << 4;
		l4[13] = 0x18; /* PSH, ACK */
		put16(l4 + 14, 0xffff);
		csum = l4 + 16;
	}
	for (size_t i = 0; i < sp->payload; i++)
		l4[l4hlen + i] = (uint8_t)(i * 13 + 7);
	if (!sp->no_udp_csum) {
		uint16_t c = finish(sum_be(
		    l4, l4len,
		    pseudo(sp->family, ip_addrs(ip, sp->family), sp->proto, (uint32_t)l4len)));

		if (c == 0 && sp->proto == IPPROTO_UDP)
			c = 0xffff;
		put16(csum, c);
	}
	return len;
}

static void set_ttl(uint8_t *ip, int family, uint8_t ttl)
{
	if (family == 4) {
		ip[8] = ttl;
		ipv4_fix_csum(ip);
	} else {
		ip[7] = ttl;
	}
}

struct icmpspec {
	int family;
	uint8_t type, code;
	uint32_t rest; /* the second word: unused, pointer or MTU */
	const char *src, *dst;
	uint8_t ttl;
	const uint8_t *dmac, *smac;
};

/* Ethernet, IP, ICMP(v6) header and `qlen` quoted bytes; checksums computed here. */
static size_t build_icmp(uint8_t *f, const struct icmpspec *sp, const uint8_t *quote, size_t qlen)
{
	size_t hlen = ip_hlen(sp->family), mlen = 8 + qlen;
	uint8_t *ip = f + ETH_HLEN, *icmp = ip + hlen;
	uint32_t s;

	memset(f, 0, ETH_HLEN + hlen + mlen);
	memcpy(f, sp->dmac, 6);
	memcpy(f + 6, sp->smac, 6);
	put16(f + 12, sp->family == 4 ? 0x0800 : 0x86dd);
	if (sp->family == 4) {
		ip[0] = 0x45;
		ip[1] = 0xc0; /* internetwork control, as Linux sends errors */
		put16(ip + 2, (uint16_t)(hlen + mlen));
		put16(ip + 4, 0x7a31);
		ip[8] = sp->ttl;
		ip[9] = IPPROTO_ICMP;
		inet_pton(AF_INET, sp->src, ip + 12);
		inet_pton(AF_INET, sp->dst, ip + 16);
		ipv4_fix_csum(ip);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)mlen);
		ip[6] = IPPROTO_ICMPV6;
		ip[7] = sp->ttl;
		inet_pton(AF_INET6, sp->src, ip + 8);
		inet_pton(AF_INET6, sp->dst, ip + 24);
	}
	icmp[0] = sp->type;
	icmp[1] = sp->code;
	put16(icmp + 4, (uint16_t)(sp->rest >> 16));
	put16(icmp + 6, (uint16_t)sp->rest);
	memcpy(icmp + 8, quote, qlen);
	s = sp->family == 6 ? pseudo(6, ip + 8, IPPROTO_ICMPV6, (uint32_t)mlen) : 0;
	put16(icmp + 2, finish(sum_be(icmp, mlen, s)));
	return ETH_HLEN + hlen + mlen;
}

/* ---- checks of a translated frame, from scratch ---- */

static bool ipv4_header_ok(const uint8_t *ip)
{
	return finish(sum_be(ip, (size_t)(ip[0] & 0x0f) * 4, 0)) == 0;
}

static bool icmp_csum_ok(const uint8_t *frame, size_t len, int family)
{
	const uint8_t *ip = frame + ETH_HLEN, *icmp = ip + ip_hlen(family);
	size_t mlen = len - ETH_HLEN - ip_hlen(family);
	uint32_t s = family == 6 ? pseudo(6, ip + 8, IPPROTO_ICMPV6, (uint32_t)mlen) : 0;

	return finish(sum_be(icmp, mlen, s)) == 0;
}

static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return len;
}

/* ---- sessions ---- */

struct fixture {
	struct nat_table *nat;
	struct nat_session *s;
};

/* One session C:c -> F:f sent as E:NAT_PORT -> U:u, the way forward creates it. */
static void fixture_up(struct fixture *fx, int family, uint8_t proto)
{
	const struct addrs *a = family == 4 ? &addrs4 : &addrs6;
	struct nat_tuple client = {
	    .saddr = addr(family, a->c),
	    .daddr = addr(family, a->f),
	    .sport = CLIENT_PORT,
	    .dport = FLOW_PORT,
	    .family = (uint8_t)family,
	    .proto = proto,
	};
	union ferry_addr e = addr(family, a->e), u = addr(family, a->u);

	fx->nat = nat_table__create(16, NAT_PORT, NAT_PORT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx->nat);
	CU_ASSERT_EQUAL_FATAL(
	    nat_table__insert(fx->nat, &client, &e, &u, UPSTREAM_PORT, 0, 1, &fx->s), 0);
	CU_ASSERT_EQUAL_FATAL(fx->s->upstream.sport, NAT_PORT);
	memcpy(fx->s->to_client.dst_mac, mac_cli, 6);
	memcpy(fx->s->to_client.src_mac, mac_px_c, 6);
	fx->s->to_client.port = 0;
	fx->s->to_client.mtu = 1500;
}

static void fixture_down(struct fixture *fx)
{
	nat_table__destroy(fx->nat);
}

/* The key the worker classifies an error with, as daemon/worker.c builds it. */
static int error_key(struct ferry_match_key *k, const struct pkt_info *pi)
{
	memset(k, 0, sizeof(*k));
	k->sport = pi->sport;
	k->dport = pi->dport;
	k->family = pi->family;
	k->l4_proto = pi->l4_proto;
	k->ports_valid = 1;
	memcpy(k->saddr, pi->saddr.w, sizeof(k->saddr));
	memcpy(k->daddr, pi->daddr.w, sizeof(k->daddr));
	return icmp_error_match_key(k, pi);
}

/* ---- golden translations ---- */

struct golden {
	int family;
	uint8_t proto;
	uint8_t type, code;
	uint32_t rest;
	bool from_upstream; /* the upstream host itself, else router R */
	uint8_t quoted_ttl; /* the TTL in the quote, as the sender of the error saw it */
	uint16_t payload;
	size_t quote_max; /* bytes of ferry's packet that the error quotes */
	bool no_udp_csum;
};

static void run_golden(const struct golden *g)
{
	const struct addrs *a = g->family == 4 ? &addrs4 : &addrs6;
	struct l4spec cs = {g->family, g->proto, a->c,	     a->f,	    CLIENT_PORT,
			    FLOW_PORT, 64,	 g->payload, g->no_udp_csum};
	struct l4spec us = {g->family,	   g->proto, a->e,	 a->u,		NAT_PORT,
			    UPSTREAM_PORT, 63,	     g->payload, g->no_udp_csum};
	struct icmpspec in_spec = {
	    g->family, g->type, g->code,  g->rest, g->from_upstream ? a->u : a->r,
	    a->e,      64,	mac_px_s, mac_srv};
	struct icmpspec want_spec = {g->family, g->type, g->code, g->rest, a->f,
				     a->c,	63,	 mac_cli, mac_px_c};
	static uint8_t client[BUF_MAX], up[BUF_MAX], frame[BUF_MAX], want[BUF_MAX];
	size_t clen, ulen, qlen, len, want_len, hlen = ip_hlen(g->family);
	size_t csum_off = hlen + (g->proto == IPPROTO_UDP ? 6 : 16);
	union ferry_addr u = addr(g->family, a->u), e = addr(g->family, a->e);
	struct ferry_match_key k;
	struct nat_tuple t;
	struct fixture fx;
	struct pkt_info pi;
	uint8_t *ip, *q;

	fixture_up(&fx, g->family, g->proto);
	clen = build_ip(client, &cs);
	ulen = build_ip(up, &us);
	CU_ASSERT_EQUAL_FATAL(clen, ulen);
	/* The sender of the error quotes ferry's packet as it arrived there. */
	set_ttl(up, g->family, g->quoted_ttl);
	qlen = ulen < g->quote_max ? ulen : g->quote_max;
	len = build_icmp(frame, &in_spec, up, qlen);
	/* What the client must see: its own packet, quoted the same way. */
	set_ttl(client, g->family, g->quoted_ttl);
	want_len = build_icmp(want, &want_spec, client, qlen);
	CU_ASSERT_EQUAL_FATAL(len, want_len);

	CU_ASSERT_EQUAL_FATAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	CU_ASSERT(icmp_is_error(&pi));
	CU_ASSERT_EQUAL(pi.icmp_type, g->type);
	CU_ASSERT_EQUAL(pi.icmp_code, g->code);
	CU_ASSERT_EQUAL(pi.l4_off, ETH_HLEN + hlen);
	CU_ASSERT_EQUAL(pi.payload_off, ETH_HLEN + hlen + 8);
	CU_ASSERT_EQUAL(pi.pkt_len, len);
	CU_ASSERT_EQUAL(pi.quote.l3_off, ETH_HLEN + hlen + 8);
	CU_ASSERT_EQUAL(pi.quote.l4_off, ETH_HLEN + 2 * hlen + 8);
	CU_ASSERT_EQUAL(pi.quote.l4_proto, g->proto);
	CU_ASSERT_EQUAL(pi.quote.sport, NAT_PORT);
	CU_ASSERT_EQUAL(pi.quote.dport, UPSTREAM_PORT);

	/* Classified as a reply on the session's reply tuple: U:u -> E:n. */
	CU_ASSERT_EQUAL_FATAL(error_key(&k, &pi), 0);
	CU_ASSERT(!memcmp(k.saddr, u.w, 16) && !memcmp(k.daddr, e.w, 16));
	CU_ASSERT_EQUAL(k.sport, UPSTREAM_PORT);
	CU_ASSERT_EQUAL(k.dport, NAT_PORT);
	CU_ASSERT_EQUAL(k.l4_proto, g->proto);
	CU_ASSERT_EQUAL(k.reply_only, 1);
	icmp_quote_reply_tuple(&t, &pi);
	CU_ASSERT_PTR_EQUAL(nat_table__lookup_reply(fx.nat, &t), fx.s);

	CU_ASSERT_EQUAL_FATAL(icmp_rewrite_to_client(frame, &pi, fx.s), 0);
	if (memcmp(frame, want, len)) {
		size_t at = first_diff(frame, want, len);

		fprintf(stderr, "icmp: type %u about %s/IPv%d: byte %zu is %02x, expected %02x\n",
			g->type, g->proto == IPPROTO_UDP ? "UDP" : "TCP", g->family, at, frame[at],
			want[at]);
		CU_FAIL("translated error differs from the expected frame");
	}

	/* Every checksum again, from scratch. */
	ip = frame + ETH_HLEN;
	q = ip + hlen + 8;
	if (g->family == 4) {
		CU_ASSERT(ipv4_header_ok(ip));
		CU_ASSERT(ipv4_header_ok(q));
		CU_ASSERT_EQUAL(ip[8], 63);
	} else {
		CU_ASSERT_EQUAL(ip[7], 63);
	}
	CU_ASSERT(icmp_csum_ok(frame, len, g->family));
	/* The quoted L4 checksum is the client's own, computed over its whole packet. */
	if (csum_off + 2 <= qlen)
		CU_ASSERT_EQUAL(get16(q + csum_off), get16(client + csum_off));
	if (g->no_udp_csum && csum_off + 2 <= qlen)
		CU_ASSERT_EQUAL(get16(q + csum_off), 0);
	fixture_down(&fx);
}

static void test_v4_port_unreachable_udp(void)
{
	/* The upstream's kernel: no socket on the port. Odd length, fully quoted. */
	struct golden g = {4, IPPROTO_UDP, 3, 3, 0, true, 63, 33, 548, false};

	run_golden(&g);
	/* No UDP checksum: none in the quote either. */
	g.no_udp_csum = true;
	run_golden(&g);
}

static void test_v4_port_unreachable_tcp(void)
{
	/* A firewall rejecting with port unreachable, quoting the whole header. */
	struct golden g = {4, IPPROTO_TCP, 3, 3, 0, true, 63, 100, 548, false};

	run_golden(&g);
}

static void test_v4_time_exceeded_udp(void)
{
	/* A router in between, quoting as much as fits 576 bytes of a large datagram. */
	struct golden g = {4, IPPROTO_UDP, 11, 0, 0, false, 1, 1200, 548, false};

	run_golden(&g);
}

static void test_v4_time_exceeded_tcp(void)
{
	/* RFC 792's minimum quote: the TCP checksum is not in it. */
	struct golden g = {4, IPPROTO_TCP, 11, 0, 0, false, 1, 200, 28, false};

	run_golden(&g);
	/* Cut right after the checksum. */
	g.quote_max = 38;
	run_golden(&g);
}

static void test_v4_frag_needed(void)
{
	/* Fragmentation needed keeps its next-hop MTU. */
	struct golden g = {4, IPPROTO_UDP, 3, 4, 1400, false, 63, 1420, 548, false};

	run_golden(&g);
}

static void test_v6_packet_too_big(void)
{
	/* Quoted up to the IPv6 minimum MTU; the MTU itself stays as reported. */
	struct golden g = {6, IPPROTO_UDP, 2, 0, 1280, false, 63, 1400, 1232, false};

	run_golden(&g);
	g.proto = IPPROTO_TCP;
	run_golden(&g);
}

static void test_v6_port_unreachable(void)
{
	struct golden g = {6, IPPROTO_UDP, 1, 4, 0, true, 63, 21, 1232, false};

	run_golden(&g);
	g.proto = IPPROTO_TCP;
	run_golden(&g);
}

static void test_v6_time_exceeded_short_quote(void)
{
	/* 8 bytes of UDP: the checksum is the last quoted field. */
	struct golden g = {6, IPPROTO_UDP, 3, 0, 0, false, 1, 64, 48, false};

	run_golden(&g);
}

/* ---- refusals ---- */

/* A v4 or v6 error about E:n -> U:u (UDP), fully formed; returns the frame length. */
static size_t good_error(uint8_t *frame, int family, uint8_t proto, uint16_t payload)
{
	const struct addrs *a = family == 4 ? &addrs4 : &addrs6;
	struct l4spec us = {family, proto, a->e, a->u, NAT_PORT, UPSTREAM_PORT, 63, payload, false};
	struct icmpspec sp = {
	    family, family == 4 ? 3 : 1, family == 4 ? 3 : 4, 0, a->u, a->e, 64, mac_px_s, mac_srv};
	uint8_t up[BUF_MAX];
	size_t ulen = build_ip(up, &us);

	return build_icmp(frame, &sp, up, ulen);
}

/* Set the outer IP length so the packet ends `len` bytes into the frame. */
static void set_ip_end(uint8_t *frame, int family, size_t len)
{
	if (family == 4) {
		put16(frame + ETH_HLEN + 2, (uint16_t)(len - ETH_HLEN));
		ipv4_fix_csum(frame + ETH_HLEN);
	} else {
		put16(frame + ETH_HLEN + 4, (uint16_t)(len - ETH_HLEN - 40));
	}
}

static void test_truncated_quote(void)
{
	for (int family = 4; family <= 6; family += 2) {
		size_t hlen = ip_hlen(family), need = ETH_HLEN + hlen + 8 + hlen + 8;

		for (int proto = 0; proto < 2; proto++) {
			uint8_t frame[BUF_MAX], copy[BUF_MAX];
			size_t len =
			    good_error(frame, family, proto ? IPPROTO_TCP : IPPROTO_UDP, 16);
			struct pkt_info pi;

			/* Consistent lengths, quote too short: truncated, at every length. */
			for (size_t end = ETH_HLEN + hlen; end < need; end++) {
				memcpy(copy, frame, len);
				set_ip_end(copy, family, end);
				CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)end, &pi),
						PKT_ERR_TRUNCATED);
			}
			memcpy(copy, frame, len);
			set_ip_end(copy, family, need);
			CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)need, &pi), PKT_OK);
			/* A frame shorter than its IP length: never parsed. */
			for (size_t cut = ETH_HLEN; cut < len; cut++)
				CU_ASSERT_NOT_EQUAL(pkt_parse(frame, (uint32_t)cut, &pi), PKT_OK);
		}
	}
}

static void test_malformed_quote(void)
{
	uint8_t frame[BUF_MAX], copy[BUF_MAX];
	struct pkt_info pi;
	size_t len, q4 = ETH_HLEN + 20 + 8, q6 = ETH_HLEN + 40 + 8;

	len = good_error(frame, 4, IPPROTO_UDP, 16);
	CU_ASSERT_EQUAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	/* Quoted fragments: ferry sends none, and a later one has no ports. */
	memcpy(copy, frame, len);
	put16(copy + q4 + 6, 0x2000); /* MF */
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_FRAGMENT);
	put16(copy + q4 + 6, 0x0010); /* offset 128 */
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_FRAGMENT);
	/* The quote is not UDP or TCP. */
	memcpy(copy, frame, len);
	copy[q4 + 9] = IPPROTO_ICMP;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_UNSUPPORTED);
	/* The quote is not IPv4, or its header length is impossible. */
	memcpy(copy, frame, len);
	copy[q4] = 0x65;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_BAD_HEADER);
	copy[q4] = 0x44;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_BAD_HEADER);
	/* Options running past the quote's end. */
	copy[q4] = 0x4f;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_TRUNCATED);
	/* ICMPv6 over IPv4 is no ICMP error. */
	memcpy(copy, frame, len);
	copy[ETH_HLEN + 9] = IPPROTO_ICMPV6;
	ipv4_fix_csum(copy + ETH_HLEN);
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_UNSUPPORTED);
	/* The error itself fragmented. */
	memcpy(copy, frame, len);
	put16(copy + ETH_HLEN + 6, 0x2000);
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_FRAGMENT);

	len = good_error(frame, 6, IPPROTO_UDP, 16);
	CU_ASSERT_EQUAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	memcpy(copy, frame, len);
	copy[q6 + 6] = IPPROTO_FRAGMENT;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_FRAGMENT);
	copy[q6 + 6] = IPPROTO_HOPOPTS;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_UNSUPPORTED);
	memcpy(copy, frame, len);
	copy[q6] = 0x45;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_BAD_HEADER);
	/* ICMPv4 over IPv6. */
	memcpy(copy, frame, len);
	copy[ETH_HLEN + 6] = IPPROTO_ICMP;
	CU_ASSERT_EQUAL(pkt_parse(copy, (uint32_t)len, &pi), PKT_ERR_UNSUPPORTED);
}

static void test_not_errors(void)
{
	/* Echo, redirects, router and neighbour discovery: the kernel's, never parsed. */
	static const uint8_t v4_types[] = {0, 4, 5, 8, 9, 10, 13, 14, 40, 255};
	static const uint8_t v6_types[] = {0, 5, 127, 128, 129, 133, 134, 135, 136, 137, 143};
	uint8_t frame[BUF_MAX];
	struct pkt_info pi;
	size_t len;

	len = good_error(frame, 4, IPPROTO_UDP, 16);
	for (size_t i = 0; i < sizeof(v4_types); i++) {
		frame[ETH_HLEN + 20] = v4_types[i];
		CU_ASSERT_EQUAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_ERR_UNSUPPORTED);
	}
	len = good_error(frame, 6, IPPROTO_UDP, 16);
	for (size_t i = 0; i < sizeof(v6_types); i++) {
		frame[ETH_HLEN + 40] = v6_types[i];
		CU_ASSERT_EQUAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_ERR_UNSUPPORTED);
	}
	/* Every error type is accepted. */
	for (uint8_t t = 1; t <= 4; t++) {
		frame[ETH_HLEN + 40] = t;
		CU_ASSERT_EQUAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	}
}

static void test_match_key(void)
{
	const struct addrs *a = &addrs4;
	struct ferry_rule reply = {.enabled = 1,
				   .family = 4,
				   .l4_proto = IPPROTO_UDP,
				   .dir = FERRY_DIR_REPLY,
				   .dst_plen = 32,
				   .src_plen = 32,
				   .dport_lo = 40000,
				   .dport_hi = 40999,
				   .sport_lo = UPSTREAM_PORT,
				   .sport_hi = UPSTREAM_PORT};
	struct ferry_rule client = {.enabled = 1,
				    .family = 4,
				    .l4_proto = IPPROTO_UDP,
				    .dir = FERRY_DIR_CLIENT,
				    .dst_plen = 32,
				    .dport_lo = FLOW_PORT,
				    .dport_hi = FLOW_PORT};
	struct l4spec reply_pkt = {4,		IPPROTO_UDP, a->f, a->c, FLOW_PORT,
				   CLIENT_PORT, 64,	     8,	   false};
	struct icmpspec sp = {4, 3, 3, 0, a->c, a->f, 64, mac_px_c, mac_cli};
	uint8_t frame[BUF_MAX], ip[BUF_MAX];
	struct ferry_match_key k;
	struct pkt_info pi;
	size_t len;

	inet_pton(AF_INET, a->u, reply.src);
	inet_pton(AF_INET, a->e, reply.dst);
	inet_pton(AF_INET, a->f, client.dst);

	len = good_error(frame, 4, IPPROTO_UDP, 16);
	CU_ASSERT_EQUAL_FATAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	CU_ASSERT_EQUAL_FATAL(error_key(&k, &pi), 0);
	CU_ASSERT(ferry_rule_match(&reply, &k));
	/* The same key built for the other protocol does not match. */
	k.l4_proto = IPPROTO_TCP;
	CU_ASSERT(!ferry_rule_match(&reply, &k));

	/* Not addressed to the quoted packet's sender: not about anything ferry sent. */
	inet_pton(AF_INET, "198.18.2.9", frame + ETH_HLEN + 16);
	CU_ASSERT_EQUAL_FATAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(error_key(&k, &pi), -ENOENT);

	/*
	 * The client's kernel refusing one of ferry's replies (F:f -> C:c): read
	 * in reverse it looks like client traffic, but client rules never take
	 * an error.
	 */
	len = build_icmp(frame, &sp, ip, build_ip(ip, &reply_pkt));
	CU_ASSERT_EQUAL_FATAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	CU_ASSERT_EQUAL_FATAL(error_key(&k, &pi), 0);
	CU_ASSERT(!ferry_rule_match(&client, &k));
	k.reply_only = 0;
	CU_ASSERT(ferry_rule_match(&client, &k));

	CU_ASSERT(ferry_icmp_is_error(4, 3) && ferry_icmp_is_error(4, 11) &&
		  ferry_icmp_is_error(4, 12) && !ferry_icmp_is_error(4, 8));
	CU_ASSERT(ferry_icmp_is_error(6, 1) && ferry_icmp_is_error(6, 4) &&
		  !ferry_icmp_is_error(6, 128) && !ferry_icmp_is_error(6, 0));
}

static void test_rewrite_refusals(void)
{
	uint8_t frame[BUF_MAX], before[BUF_MAX];
	struct fixture fx;
	struct pkt_info pi;
	size_t len;

	fixture_up(&fx, 4, IPPROTO_UDP);
	len = good_error(frame, 4, IPPROTO_UDP, 16);
	memcpy(before, frame, len);
	CU_ASSERT_EQUAL_FATAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);

	/* A session whose upstream tuple is not the quote: refused, nothing written. */
	fx.s->upstream.sport++;
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -EINVAL);
	fx.s->upstream.sport--;
	fx.s->upstream.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -EINVAL);
	fx.s->upstream.proto = IPPROTO_UDP;
	fx.s->upstream.daddr.b[3]++;
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -EINVAL);
	fx.s->upstream.daddr.b[3]--;
	/* A plain UDP packet is no error. */
	pi.l4_proto = IPPROTO_UDP;
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -EINVAL);
	pi.l4_proto = IPPROTO_ICMP;
	/* Too big for the client's link. */
	fx.s->to_client.mtu = (uint16_t)(len - ETH_HLEN - 1);
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -EMSGSIZE);
	fx.s->to_client.mtu = 1500;
	CU_ASSERT(!memcmp(frame, before, len));

	/* The error's own TTL runs out. */
	frame[ETH_HLEN + 8] = 1;
	ipv4_fix_csum(frame + ETH_HLEN);
	memcpy(before, frame, len);
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -ETIMEDOUT);
	CU_ASSERT(!memcmp(frame, before, len));
	fixture_down(&fx);

	/* An IPv6 error against an IPv4 session. */
	fixture_up(&fx, 4, IPPROTO_UDP);
	len = good_error(frame, 6, IPPROTO_UDP, 16);
	CU_ASSERT_EQUAL_FATAL(pkt_parse(frame, (uint32_t)len, &pi), PKT_OK);
	CU_ASSERT_EQUAL(icmp_rewrite_to_client(frame, &pi, fx.s), -EINVAL);
	fixture_down(&fx);
}

static CU_TestInfo icmp_tests[] = {
    {"v4 port unreachable about UDP", test_v4_port_unreachable_udp},
    {"v4 port unreachable about TCP", test_v4_port_unreachable_tcp},
    {"v4 time exceeded about UDP", test_v4_time_exceeded_udp},
    {"v4 time exceeded about TCP, short quotes", test_v4_time_exceeded_tcp},
    {"v4 fragmentation needed keeps its MTU", test_v4_frag_needed},
    {"v6 packet too big", test_v6_packet_too_big},
    {"v6 port unreachable", test_v6_port_unreachable},
    {"v6 time exceeded, 8-byte quote", test_v6_time_exceeded_short_quote},
    {"truncated quotes", test_truncated_quote},
    {"malformed quotes", test_malformed_quote},
    {"other ICMP is not parsed", test_not_errors},
    {"classification key", test_match_key},
    {"rewrite refusals", test_rewrite_refusals},
    CU_TEST_INFO_NULL,
};

UNIT_SUITE(icmp, "icmp", icmp_tests, NULL, NULL);
