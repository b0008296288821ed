// SPDX-License-Identifier: BSD-2-Clause
/*
 * Writes the seed corpora of the fuzz harnesses: `make fuzz-corpus` runs it
 * on tests/fuzz/corpus, whose files are committed.  Seeds are small and
 * each reaches somewhere different (valid IPv4/IPv6 UDP/TCP, IP and TCP
 * options, no UDP checksum, TTL 1, over the MTU, Ethernet padding, and a
 * few frames the parser must refuse), so libFuzzer starts from the
 * interesting paths instead of finding checksums and lengths by chance.
 * Checksums come from lib/csum.c after pkt_parse(), so a seed is valid
 * exactly when the library says it is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "csum.h"
#include "packet.h"

struct spec {
	int family; /* 4 or 6 */
	int proto;  /* IPPROTO_UDP or IPPROTO_TCP */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t ttl;
	uint32_t payload;
	uint32_t ip_opts;  /* IPv4 option bytes (NOPs), a multiple of 4 */
	uint32_t tcp_opts; /* TCP option bytes (NOPs), a multiple of 4 */
	bool no_udp_csum;
	bool bad_csum;
	uint32_t pad; /* Ethernet padding after the IP packet */
	uint8_t tcp_flags; /* 0: PSH ACK */
	const uint8_t *bytes; /* the payload's bytes; NULL: a-z repeated */
};

static const char *outdir;

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t build(uint8_t *f, const struct spec *s)
{
	static const uint8_t dst_mac[6] = { 0x02, 0x66, 0x65, 0x72, 0x00, 0x0b };
	static const uint8_t src_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x02 };
	uint32_t l4len = (s->proto == IPPROTO_UDP ? 8 : 20 + s->tcp_opts) + s->payload;
	uint32_t l3 = 14, ihl = s->family == 4 ? 20 + s->ip_opts : 40, l4 = l3 + ihl;
	struct pkt_info pi;
	uint16_t c;

	memset(f, 0, l4 + l4len + s->pad);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	if (s->family == 4) {
		put16(f + 12, 0x0800);
		f[l3] = (uint8_t)(0x40 | ihl / 4);
		put16(f + l3 + 2, (uint16_t)(ihl + l4len));
		put16(f + l3 + 4, 0x1234);
		put16(f + l3 + 6, 0x4000); /* DF */
		f[l3 + 8] = s->ttl;
		f[l3 + 9] = (uint8_t)s->proto;
		inet_pton(AF_INET, s->src, f + l3 + 12);
		inet_pton(AF_INET, s->dst, f + l3 + 16);
		memset(f + l3 + 20, 1, s->ip_opts); /* NOP */
	} else {
		put16(f + 12, 0x86dd);
		f[l3] = 0x60;
		put16(f + l3 + 4, (uint16_t)l4len);
		f[l3 + 6] = (uint8_t)s->proto;
		f[l3 + 7] = s->ttl;
		inet_pton(AF_INET6, s->src, f + l3 + 8);
		inet_pton(AF_INET6, s->dst, f + l3 + 24);
	}
	put16(f + l4, s->sport);
	put16(f + l4 + 2, s->dport);
	if (s->proto == IPPROTO_UDP) {
		put16(f + l4 + 4, (uint16_t)l4len);
	} else {
		put16(f + l4 + 4, 0x0101);  /* seq */
		put16(f + l4 + 10, 0x0202); /* ack */
		f[l4 + 12] = (uint8_t)((20 + s->tcp_opts) / 4 << 4);
		f[l4 + 13] = s->tcp_flags ? s->tcp_flags : 0x18; /* PSH ACK */
		put16(f + l4 + 14, 65535);
		memset(f + l4 + 20, 1, s->tcp_opts);
	}
	for (uint32_t i = 0; i < s->payload; i++)
		f[l4 + l4len - s->payload + i] = s->bytes ? s->bytes[i] : (uint8_t)('a' + i % 26);
	for (uint32_t i = 0; i < s->pad; i++)
		f[l4 + l4len + i] = 0xee; /* padding is not part of any sum */

	if (pkt_parse(f, l4 + l4len + s->pad, &pi) != PKT_OK) {
		fprintf(stderr, "gen_corpus: a seed does not parse\n");
		exit(1);
	}
	if (s->family == 4) {
		c = csum_ipv4_header(f + l3, ihl);
		memcpy(f + l3 + 10, &c, 2);
	}
	if (!(s->proto == IPPROTO_UDP && s->no_udp_csum)) {
		c = csum_l4_compute(f, &pi);
		if (s->bad_csum)
			c ^= 0x0101;
		memcpy(f + l4 + (s->proto == IPPROTO_UDP ? 6 : 16), &c, 2);
	}
	return l4 + l4len + s->pad;
}

static void write_file(const char *sub, const char *name, const void *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "we");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* ---- packet ---- */

#define CLI4 "198.18.1.2"
#define FLOW4 "198.18.1.1"
#define CLI6 "fd00:1::2"
#define FLOW6 "fd00:1::1"

static const struct {
	const char *name;
	struct spec s;
} packets[] = {
	{ "udp4", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4, .sport = 40000,
		.dport = 5000, .ttl = 64, .payload = 5 } },
	{ "udp4-nocsum", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4,
		.sport = 1, .dport = 5000, .ttl = 64, .payload = 3, .no_udp_csum = true } },
	{ "udp4-ipopts", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4,
		.sport = 53, .dport = 5000, .ttl = 9, .payload = 17, .ip_opts = 8 } },
	{ "udp4-ttl1", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4, .sport = 7,
		.dport = 5000, .ttl = 1, .payload = 1 } },
	{ "udp4-padded", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4,
		.sport = 9, .dport = 5000, .ttl = 64, .pad = 18 } },
	{ "udp4-badcsum", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4,
		.sport = 9, .dport = 5000, .ttl = 64, .payload = 4, .bad_csum = true } },
	{ "udp4-big", { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4, .sport = 9,
		.dport = 5000, .ttl = 64, .payload = 1600 } },
	{ "tcp4", { .family = 4, .proto = IPPROTO_TCP, .src = CLI4, .dst = FLOW4, .sport = 33000,
		.dport = 443, .ttl = 64, .payload = 11, .tcp_opts = 12 } },
	{ "tcp4-empty", { .family = 4, .proto = IPPROTO_TCP, .src = CLI4, .dst = FLOW4,
		.sport = 33000, .dport = 443, .ttl = 2 } },
	{ "udp6", { .family = 6, .proto = IPPROTO_UDP, .src = CLI6, .dst = FLOW6, .sport = 40000,
		.dport = 5353, .ttl = 64, .payload = 7 } },
	{ "udp6-ttl2", { .family = 6, .proto = IPPROTO_UDP, .src = CLI6, .dst = FLOW6,
		.sport = 40000, .dport = 5353, .ttl = 2 } },
	{ "tcp6", { .family = 6, .proto = IPPROTO_TCP, .src = CLI6, .dst = FLOW6, .sport = 50000,
		.dport = 443, .ttl = 255, .payload = 33, .tcp_opts = 4 } },
};

/*
 * An ICMP error about the packet `s` describes, as sent upstream: from
 * `from` to its source, quoting `quote` bytes of it.
 */
static uint32_t build_icmp(uint8_t *f, const struct spec *s, const char *from, uint8_t type,
			   uint8_t code, uint32_t quote)
{
	uint8_t q[2048];
	uint32_t qlen = build(q, s) - 14, hl = s->family == 4 ? 20 : 40;
	uint64_t sum;
	uint16_t c;
	uint8_t *ip = f + 14, *icmp = ip + hl;

	if (quote < qlen)
		qlen = quote;
	memset(f, 0, 14 + hl + 8);
	memcpy(f, q + 6, 6);
	memcpy(f + 6, q, 6);
	memcpy(f + 12, q + 12, 2);
	memcpy(icmp + 8, q + 14, qlen);
	icmp[0] = type;
	icmp[1] = code;
	if (s->family == 4) {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(hl + 8 + qlen));
		ip[8] = 64;
		ip[9] = IPPROTO_ICMP;
		inet_pton(AF_INET, from, ip + 12);
		memcpy(ip + 16, q + 14 + 12, 4);
		c = csum_ipv4_header(ip, hl);
		memcpy(ip + 10, &c, 2);
		sum = csum_partial(icmp, 8 + qlen, 0);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(8 + qlen));
		ip[6] = IPPROTO_ICMPV6;
		ip[7] = 64;
		inet_pton(AF_INET6, from, ip + 8);
		memcpy(ip + 24, q + 14 + 8, 16);
		sum = csum_partial(icmp, 8 + qlen, 0) + csum_partial(ip + 8, 32, 0) +
		      htons((uint16_t)(8 + qlen)) + htons(IPPROTO_ICMPV6);
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	memcpy(icmp + 2, &c, 2);
	return 14 + hl + 8 + qlen;
}

static void gen_icmp(void)
{
	struct spec up4 = { .family = 4, .proto = IPPROTO_UDP, .src = "198.18.2.1",
			    .dst = "198.18.2.2", .sport = 40001, .dport = 6000, .ttl = 63,
			    .payload = 20 };
	struct spec up6 = { .family = 6, .proto = IPPROTO_TCP, .src = "fd00:2::1",
			    .dst = "fd00:2::2", .sport = 40002, .dport = 8443, .ttl = 63,
			    .tcp_flags = 0x02 };
	uint8_t f[2048];
	uint32_t len;

	len = build_icmp(f, &up4, "198.18.2.2", 3, 3, 28); /* port unreachable, 8 bytes of UDP */
	write_file("packet", "icmp4-port-unreachable", f, len);
	up4.ip_opts = 4;
	len = build_icmp(f, &up4, "198.18.2.254", 11, 0, 1000); /* time exceeded, all quoted */
	write_file("packet", "icmp4-time-exceeded", f, len);
	len = build_icmp(f, &up6, "fd00:2::fe", 2, 0, 1000); /* packet too big */
	write_file("packet", "icmp6-too-big", f, len);
	len = build_icmp(f, &up6, "fd00:2::2", 1, 4, 48); /* port unreachable */
	write_file("packet", "icmp6-port-unreachable", f, len);
}

static void gen_packets(void)
{
	uint8_t f[2048];
	uint32_t len;

	for (size_t i = 0; i < sizeof(packets) / sizeof(packets[0]); i++) {
		len = build(f, &packets[i].s);
		write_file("packet", packets[i].name, f, len);
	}
	/* Refused: truncated IPv4 header, a fragment, a VLAN tag, ARP. */
	len = build(f, &packets[0].s);
	write_file("packet", "bad-truncated", f, 30);
	f[14 + 6] = 0x20; /* MF */
	write_file("packet", "bad-fragment", f, len);
	memmove(f + 16, f + 12, len - 12);
	f[12] = 0x81;
	f[13] = 0x00;
	f[14] = 0x00;
	f[15] = 0x01;
	write_file("packet", "bad-vlan", f, len + 4);
	memset(f + 12, 0, 30);
	f[12] = 0x08;
	f[13] = 0x06;
	write_file("packet", "bad-arp", f, 42);
}

/* ---- chain ---- */

struct script {
	uint8_t buf[8192];
	size_t len;
};

static void op(struct script *sc, uint8_t b)
{
	sc->buf[sc->len++] = b;
}

/* fuzz_chain's configs (configs[] in fuzz_chain.c) */
enum { CFG_FORWARD, CFG_SERVICES_A, CFG_SERVICES_B, CFG_TAP };

/* A script for the daemon of `config`, with resolver and ring knobs. */
static void begin(struct script *sc, uint8_t config, uint8_t knobs)
{
	sc->len = 0;
	op(sc, config);
	op(sc, knobs);
}

static void frame(struct script *sc, int port, const struct spec *s)
{
	uint32_t len = build(sc->buf + sc->len + 2, s);

	sc->buf[sc->len] = (uint8_t)(port | (len >> 8) << 2);
	sc->buf[sc->len + 1] = (uint8_t)len;
	sc->len += 2 + len;
}

#define END_BURST 0x02
#define TICK 0x40
#define ADVANCE(n) ((n) << 2)
#define REFLECT_ALL 0x03
#define ICMP_ERROR 0x43
#define EVENT_TICK 0xc3
#define TCP_SYN 0x02

static void gen_chain(void)
{
	struct spec udp4 = { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4,
			     .sport = 40000, .dport = 5000, .ttl = 64, .payload = 12 };
	struct spec tcp6 = { .family = 6, .proto = IPPROTO_TCP, .src = CLI6, .dst = FLOW6,
			     .sport = 50000, .dport = 443, .ttl = 64, .payload = 20,
			     .tcp_flags = TCP_SYN };
	struct spec net4 = { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = "198.18.1.7",
			     .sport = 1000, .dport = 7, .ttl = 64, .payload = 4 };
	struct spec tcp4 = { .family = 4, .proto = IPPROTO_TCP, .src = "203.0.113.9",
			     .dst = "192.0.2.1", .sport = 999, .dport = 80, .ttl = 64,
			     .tcp_opts = 8, .tcp_flags = TCP_SYN };
	struct spec udp6 = { .family = 6, .proto = IPPROTO_UDP, .src = "2001:db8::1",
			     .dst = "2001:db8::2", .sport = 5, .dport = 53, .ttl = 64,
			     .payload = 8 };
	struct spec reply = { .family = 4, .proto = IPPROTO_UDP, .src = "198.18.2.2",
			      .dst = "198.18.2.1", .sport = 6000, .dport = 40003, .ttl = 64,
			      .payload = 8 };
	struct script sc;

	/* A request, the upstream's answer, back to the client. */
	begin(&sc, CFG_FORWARD, 0x00);
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST);
	write_file("chain", "udp4-round-trip", sc.buf, sc.len);

	begin(&sc, CFG_FORWARD, 0x00);
	frame(&sc, 0, &tcp6);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST);
	tcp6.tcp_flags = 0x10; /* ACK */
	frame(&sc, 0, &tcp6);
	tcp6.tcp_flags = 0x11; /* FIN ACK */
	frame(&sc, 0, &tcp6);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST | ADVANCE(15) | TICK);
	write_file("chain", "tcp6-round-trip", sc.buf, sc.len);

	/* Every flow at once, with a reply that has no session. */
	begin(&sc, CFG_FORWARD, 0x00);
	frame(&sc, 0, &udp4);
	frame(&sc, 0, &net4);
	frame(&sc, 0, &tcp4);
	frame(&sc, 0, &udp6);
	frame(&sc, 1, &reply);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	write_file("chain", "all-flows", sc.buf, sc.len);

	/* The client's neighbour is unknown: the reply waits for it. */
	begin(&sc, CFG_FORWARD, 0x04);
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	write_file("chain", "client-unresolved", sc.buf, sc.len);

	/* Upstream unresolved: held until the kernel says it is reachable. */
	begin(&sc, CFG_FORWARD, 0x08);
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST | 0x80);
	op(&sc, 0x00);
	frame(&sc, 0, &udp4);
	op(&sc, EVENT_TICK);
	op(&sc, 0x39); /* NEIGH, usable, with a MAC, on fz-s */
	op(&sc, 0x88); /* upstream 0, reachable */
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	write_file("chain", "upstream-late", sc.buf, sc.len);

	/* The upstream never resolves: held frames time out. */
	begin(&sc, CFG_FORWARD, 0x18);
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST | ADVANCE(15) | TICK);
	op(&sc, EVENT_TICK);
	op(&sc, 0x05); /* overflow: anything may have changed */
	op(&sc, 0x00);
	write_file("chain", "upstream-failed", sc.buf, sc.len);

	/* ICMP errors about sent packets, from the upstream and from a router. */
	begin(&sc, CFG_FORWARD, 0x00);
	frame(&sc, 0, &udp4);
	frame(&sc, 0, &udp6);
	frame(&sc, 0, &tcp4);
	op(&sc, END_BURST);
	op(&sc, ICMP_ERROR);
	op(&sc, 0x00 | 3 << 3); /* port unreachable, 24 more bytes quoted */
	op(&sc, ICMP_ERROR);
	op(&sc, 0x06); /* too big, from a router */
	op(&sc, ICMP_ERROR);
	op(&sc, 0x05); /* time exceeded, from a router */
	op(&sc, END_BURST);
	write_file("chain", "icmp-errors", sc.buf, sc.len);

	/* More clients than NAT ports and sessions; then they expire. */
	begin(&sc, CFG_FORWARD, 0x00);
	for (int i = 0; i < 12; i++) {
		net4.sport = (uint16_t)(2000 + i);
		frame(&sc, 0, &net4);
	}
	op(&sc, END_BURST | ADVANCE(15) | TICK);
	op(&sc, END_BURST | ADVANCE(15) | TICK);
	frame(&sc, 0, &net4);
	write_file("chain", "exhaust-expire", sc.buf, sc.len);

	/* A TX ring of 4 and a burst of 6: the burst finds the ring full. */
	begin(&sc, CFG_FORWARD, 0x80);
	for (int i = 0; i < 6; i++) {
		udp4.sport = (uint16_t)(3000 + i);
		frame(&sc, 0, &udp4);
	}
	op(&sc, END_BURST);
	write_file("chain", "tx-ring-full", sc.buf, sc.len);

	/* TTL 1, over a 576-byte MTU, a runt and a non-IP frame. */
	begin(&sc, CFG_FORWARD, 0x40);
	udp4.ttl = 1;
	frame(&sc, 0, &udp4);
	udp4.ttl = 64;
	udp4.payload = 700;
	frame(&sc, 0, &udp4);
	op(&sc, 0x00);
	op(&sc, 10);
	memset(sc.buf + sc.len, 0xff, 10);
	sc.len += 10;
	write_file("chain", "refused", sc.buf, sc.len);

	/* No route, then routes via the other port and via a foreign interface. */
	begin(&sc, CFG_FORWARD, 0x20);
	udp4.payload = 12;
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST | ADVANCE(15) | TICK | 0x80);
	op(&sc, 0x05);
	frame(&sc, 0, &udp4);
	op(&sc, END_BURST | ADVANCE(15) | TICK | 0x80);
	op(&sc, 0x02);
	udp4.sport = 4000;
	frame(&sc, 0, &udp4);
	write_file("chain", "routes", sc.buf, sc.len);
}

/*
 * A payload as compress sends it (ferry.yaml(5), "On-wire format"): header, then
 * the original (stored) or its raw deflate stream.  Returns its length.
 */
static uint32_t wire_payload(uint8_t *out, uint32_t room, const char *text, bool stored)
{
	uint32_t len = (uint32_t)strlen(text);
	z_stream z = { 0 };

	out[0] = 0xfc;
	out[1] = (uint8_t)(0x10 | (stored ? 0x1 : 0));
	put16(out + 2, (uint16_t)len);
	if (stored) {
		memcpy(out + 4, text, len);
		return 4 + len;
	}
	if (deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		exit(1);
	z.next_in = (Bytef *)text;
	z.avail_in = len;
	z.next_out = out + 4;
	z.avail_out = room - 4;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		exit(1);
	len = 4 + (uint32_t)z.total_out;
	deflateEnd(&z);
	return len;
}

/* Seeds for the daemons that run the other services: each reaches its services. */
static void gen_services(void)
{
	static const char text[] = "ferry ferry ferry ferry ferry ferry ferry ferry ferry ferry";
	struct spec u4 = { .family = 4, .proto = IPPROTO_UDP, .src = CLI4, .dst = FLOW4,
			   .sport = 40000, .ttl = 64, .payload = 40 };
	struct spec u6 = { .family = 6, .proto = IPPROTO_UDP, .src = "fd00:3::2", .dst = FLOW6,
			   .sport = 40000, .ttl = 64, .payload = 40 };
	struct spec t4 = { .family = 4, .proto = IPPROTO_TCP, .src = CLI4, .dst = FLOW4,
			   .sport = 40000, .ttl = 64, .tcp_flags = TCP_SYN };
	uint8_t stored[128], deflated[128];
	struct script sc;

	/* services A: one packet to each flow, the answers, then time passes. */
	begin(&sc, CFG_SERVICES_A, 0x00);
	for (uint16_t port = 5001; port <= 5007; port++) {
		u4.dport = port;
		frame(&sc, 0, &u4);
	}
	t4.dport = 5002;
	frame(&sc, 0, &t4);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST | ADVANCE(1) | TICK);
	write_file("chain", "services-a", sc.buf, sc.len);

	/* Over the rate limits, and more than pace queues. */
	begin(&sc, CFG_SERVICES_A, 0x00);
	for (int i = 0; i < 12; i++) {
		u4.dport = 5002;
		u4.sport = (uint16_t)(41000 + i);
		frame(&sc, 0, &u4);
		u4.dport = 5007;
		frame(&sc, 0, &u4);
		t4.sport = (uint16_t)(41000 + i);
		frame(&sc, 0, &t4);
	}
	op(&sc, END_BURST | ADVANCE(1) | TICK);
	op(&sc, END_BURST | ADVANCE(15) | TICK);
	write_file("chain", "services-a-limits", sc.buf, sc.len);

	/* filter's deny rule and default; decompress on stored, deflated and bad payloads. */
	begin(&sc, CFG_SERVICES_A, 0x00);
	u4.sport = 80;
	u4.dport = 5001;
	frame(&sc, 0, &u4);
	u4.sport = 40000;
	u4.src = "203.0.113.7";
	frame(&sc, 0, &u4);
	u4.src = CLI4;
	u4.dport = 5004;
	u4.payload = wire_payload(stored, sizeof(stored), text, true);
	u4.bytes = stored;
	frame(&sc, 0, &u4);
	u4.sport = 40001;
	u4.payload = wire_payload(deflated, sizeof(deflated), text, false);
	u4.bytes = deflated;
	frame(&sc, 0, &u4);
	deflated[5] ^= 0x55;
	u4.sport = 40002;
	frame(&sc, 0, &u4);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST);
	write_file("chain", "services-a-filter-unzip", sc.buf, sc.len);

	/* services B: IPv6, TCP, other arguments. */
	begin(&sc, CFG_SERVICES_B, 0x00);
	u4.bytes = NULL;
	u4.payload = 40;
	u4.sport = 40000;
	for (uint16_t port = 5001; port <= 5006; port++) {
		u6.dport = port;
		frame(&sc, 0, &u6);
	}
	u6.src = CLI6;
	u6.dport = 5001;
	frame(&sc, 0, &u6);
	u4.dport = 5007;
	u4.payload = wire_payload(stored, sizeof(stored), text, true);
	u4.bytes = stored;
	frame(&sc, 0, &u4);
	t4.sport = 2000;
	t4.dport = 443;
	frame(&sc, 0, &t4);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST | ADVANCE(1) | TICK);
	op(&sc, END_BURST | ADVANCE(15) | TICK);
	write_file("chain", "services-b", sc.buf, sc.len);

	/* tap: enough records of 64 bytes to rotate its 4096-byte file. */
	begin(&sc, CFG_TAP, 0x00);
	u4.bytes = NULL;
	u4.payload = 40;
	u4.dport = 5008;
	u6.dport = 5008;
	for (int i = 0; i < 60; i++) {
		u4.sport = (uint16_t)(42000 + i % 8);
		frame(&sc, 0, &u4);
		if (i % 8 == 7)
			op(&sc, END_BURST);
	}
	frame(&sc, 0, &u6);
	op(&sc, END_BURST);
	op(&sc, REFLECT_ALL);
	op(&sc, END_BURST | ADVANCE(1) | TICK);
	write_file("chain", "tap", sc.buf, sc.len);
}

/* ---- config ---- */

static void gen_config(void)
{
	static const char *const good =
		"pin_path: /sys/fs/bpf/ferry\n"
		"log_level: debug\n"
		"queues: 2\n"
		"interfaces:\n"
		"  - name: eth0\n"
		"    xdp_mode: native-only\n"
		"  - {name: eth1, xdp_mode: skb}\n"
		"nat: {ports: 40000-40999, max_sessions: 1024, udp_timeout: 30}\n"
		"umem: {frames: 4096, frame_size: 2048, ring_size: 1024, batch: 32}\n"
		"flows:\n"
		"  - name: dns\n"
		"    match: {protocol: udp, destination: 198.18.1.0/24, port: 53, source: "
		"198.18.0.0/15}\n"
		"    services:\n"
		"      - forward: {upstream: '198.18.2.2:53', source: 198.18.2.1/24}\n"
		"  - name: web6\n"
		"    match: {protocol: tcp, destination: 'fd00:1::1', port: 80-443}\n"
		"    services: [ {forward: {upstream: '[fd00:2::2]:8080'}} ]\n";
	static const char *const bad =
		"queues: 0\n"
		"interfaces:\n"
		"  - name: 'a/b'\n"
		"  - name: eth0\n"
		"  - name: eth0\n"
		"nat: {ports: 70000, max_sessions: 0, bogus: 1}\n"
		"umem: {frames: 1000, frame_size: 1024, ring_size: 4096, batch: 300}\n"
		"flows:\n"
		"  - name: 'bad name'\n"
		"    match: {protocol: icmp, destination: 300.1.1.1/33, port: 0-1, source: '::1'}\n"
		"    services: [nope, {forward: {upstream: '198.18.2.2'}}, {forward: 3}]\n"
		"---\n"
		"second: document\n";
	/* A chain of services; their arguments need not all be right. */
	static const char *const chain =
		"interfaces: [ {name: eth0} ]\n"
		"flows:\n"
		"  - name: chained\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 53}\n"
		"    services:\n"
		"      - filter: {allow: [198.18.0.0/15], default: deny}\n"
		"      - ratelimit: {packets_per_second: 1000, burst_packets: 64}\n"
		"      - mirror: {to: ['198.18.2.9:9']}\n"
		"      - lb: {upstreams: ['198.18.2.2:53', '198.18.2.3:53']}\n"
		"      - forward: {upstream: '198.18.2.2:53'}\n";
	static const char *const anchors =
		"interfaces: &i [ {name: x0} ]\n"
		"flows:\n"
		"  - &f\n"
		"    name: a\n"
		"    match: &m {protocol: udp, destination: 198.18.1.1, port: 1}\n"
		"    services: [ {forward: &u {upstream: '198.18.2.2:1'}} ]\n"
		"  - {name: b, match: *m, services: [ {forward: *u} ]}\n"
		"  - *f\n";

	/*
	 * Reloads (fuzz_config diffs the config before the NUL with the one
	 * after it): a flow changed, one removed, one added; and a change that
	 * needs a restart.
	 */
	static const char reloaded[] =
		"interfaces: [ {name: eth0} ]\n"
		"flows:\n"
		"  - name: a\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 1}\n"
		"    services: [ {forward: {upstream: '198.18.2.2:1'}} ]\n"
		"  - name: b\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 2}\n"
		"    services: [ {forward: {upstream: '198.18.2.2:2'}} ]\n"
		"  - name: c\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 3}\n"
		"    services: [ {forward: {upstream: '198.18.2.2:3'}} ]\n"
		"\0"
		"interfaces: [ {name: eth0} ]\n"
		"flows:\n"
		"  - name: a\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 1}\n"
		"    services: [ {forward: {upstream: '198.18.2.2:1'}} ]\n"
		"  - name: c\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 3}\n"
		"    services: [ {forward: {upstream: '198.18.2.3:3'}} ]\n"
		"  - name: d\n"
		"    match: {protocol: udp, destination: 198.18.1.1, port: 4}\n"
		"    services: [ {forward: {upstream: '198.18.2.2:4'}} ]\n";
	static const char restart[] =
		"interfaces: [ {name: eth0} ]\n"
		"nat: {ports: 40000-40999}\n"
		"flows: [ {name: a, match: {protocol: udp, destination: 198.18.1.1, port: 1},\n"
		"          services: [ {forward: {upstream: '198.18.2.2:1'}} ]} ]\n"
		"\0"
		"interfaces: [ {name: eth1} ]\n"
		"nat: {ports: 41000-41999}\n"
		"flows: [ {name: a, match: {protocol: udp, destination: 198.18.1.1, port: 1},\n"
		"          services: [ {forward: {upstream: '198.18.2.2:1'}} ]} ]\n";

	write_file("config", "reload.yaml", reloaded, sizeof(reloaded) - 1);
	write_file("config", "reload-restart.yaml", restart, sizeof(restart) - 1);
	write_file("config", "good.yaml", good, strlen(good));
	write_file("config", "chain.yaml", chain, strlen(chain));
	write_file("config", "bad.yaml", bad, strlen(bad));
	write_file("config", "anchors.yaml", anchors, strlen(anchors));
	write_file("config", "empty.yaml", "", 0);
	write_file("config", "syntax.yaml", "flows: [ {name: x\n", 18);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	gen_packets();
	gen_icmp();
	gen_chain();
	gen_services();
	gen_config();
	return 0;
}
