// SPDX-License-Identifier: BSD-2-Clause
/*
 * The XDP program, run on crafted packets with BPF_PROG_TEST_RUN (no
 * interface involved), then steer.c for real: attach and detach on veth
 * pairs in a network namespace of the test's own, with live traffic into an
 * AF_XDP socket.
 *
 * The namespace tests enter a fresh namespace and come back with setns(), so
 * they use only non-fatal assertions in between: a fatal one would jump out
 * and leave the rest of the run in the test namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/if_packet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "ferry_shared.h"
#include "ferry_steer.skel.h"
#include "log.h"
#include "steer.h"
#include "unit.h"

#define ETH_HDR 14
#define IP4_HDR 20
#define IP6_HDR 40
#define UDP_HDR 8
#define TCP_HDR 20
#define PKT_MAX 512

#define FLOW_A 3
#define FLOW_B 7

static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0, 0x02 };

/* ---- packets ---- */

struct pkt {
	int family;    /* 4 or 6 */
	uint8_t proto; /* IPPROTO_UDP, IPPROTO_TCP or anything else */
	const char *src, *dst;
	uint16_t sport, dport;
	uint16_t frag_off; /* IPv4 flags and offset, host order */
	bool no_l4;        /* a later fragment: no transport header */
	size_t payload;
};

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
	return p + 2;
}

static uint16_t ip4_csum(const uint8_t *hdr)
{
	uint32_t sum = 0;

	for (int i = 0; i < IP4_HDR; i += 2)
		sum += (hdr[i] << 8) | hdr[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/* Builds Ethernet + IP + UDP/TCP into buf; returns the frame length. */
static size_t build(uint8_t *buf, const struct pkt *p)
{
	size_t l4_len = p->no_l4 ? 0 : p->proto == IPPROTO_TCP ? TCP_HDR : UDP_HDR;
	size_t ip_len = (p->family == 4 ? IP4_HDR : IP6_HDR);
	uint8_t *l3 = buf + ETH_HDR, *l4 = l3 + ip_len;
	size_t len = ETH_HDR + ip_len + l4_len + p->payload;

	memset(buf, 0, len);
	memcpy(buf, mac_b, 6);
	memcpy(buf + 6, mac_a, 6);
	put16(buf + 12, p->family == 4 ? 0x0800 : 0x86dd);
	if (p->family == 4) {
		l3[0] = 0x45;
		put16(l3 + 2, IP4_HDR + l4_len + p->payload);
		put16(l3 + 6, p->frag_off);
		l3[8] = 64;
		l3[9] = p->proto;
		inet_pton(AF_INET, p->src, l3 + 12);
		inet_pton(AF_INET, p->dst, l3 + 16);
		put16(l3 + 10, ip4_csum(l3));
	} else {
		l3[0] = 0x60;
		put16(l3 + 4, l4_len + p->payload);
		l3[6] = p->proto;
		l3[7] = 64;
		inet_pton(AF_INET6, p->src, l3 + 8);
		inet_pton(AF_INET6, p->dst, l3 + 24);
	}
	if (!l4_len)
		return len;
	put16(l4, p->sport);
	put16(l4 + 2, p->dport);
	if (p->proto == IPPROTO_TCP) {
		l4[12] = 5 << 4;
		l4[13] = 0x02; /* SYN */
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, UDP_HDR + p->payload);
	}
	return len;
}

static const struct pkt udp4 = {
	.family = 4,
	.proto = IPPROTO_UDP,
	.src = "198.19.1.1",
	.dst = "198.18.0.10",
	.sport = 1500,
	.dport = 5000,
	.payload = 32,
};

static const struct pkt udp6 = {
	.family = 6,
	.proto = IPPROTO_UDP,
	.src = "fd00:1::1",
	.dst = "fd00:2::10",
	.sport = 1500,
	.dport = 5000,
	.payload = 32,
};

/* ---- rules ---- */

static struct ferry_rule rule(uint32_t flow_id, int family, uint8_t proto, const char *dst,
			      uint8_t dst_plen)
{
	struct ferry_rule r = {
		.flow_id = flow_id,
		.enabled = 1,
		.family = family,
		.l4_proto = proto,
		.dst_plen = dst_plen,
	};

	inet_pton(family == 4 ? AF_INET : AF_INET6, dst, r.dst);
	return r;
}

static void set_src(struct ferry_rule *r, const char *src, uint8_t plen)
{
	inet_pton(r->family == 4 ? AF_INET : AF_INET6, src, r->src);
	r->src_plen = plen;
}

/* ---- the program under test_run ---- */

struct fx {
	struct ferry_steer_bpf *skel;
	int ncpus;
};

static bool fx_load(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->ncpus = libbpf_num_possible_cpus();
	f->skel = ferry_steer_bpf__open_and_load();
	return f->skel && f->ncpus > 0;
}

static void fx_close(struct fx *f)
{
	ferry_steer_bpf__destroy(f->skel);
	f->skel = NULL;
}

static void fx_rule(struct fx *f, uint32_t slot, const struct ferry_rule *r)
{
	int fd = bpf_map__fd(f->skel->maps.ferry_rules);

	CU_ASSERT_EQUAL(bpf_map_update_elem(fd, &slot, r, 0), 0);
}

/* Runs one frame as if received on lo (ifindex 1), queue 0; returns the verdict or -errno. */
static int fx_run(struct fx *f, const void *data, size_t len)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = 1 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.ferry_steer), &opts);
	return err ? err : (int)opts.retval;
}

static int fx_run_pkt(struct fx *f, const struct pkt *p)
{
	uint8_t buf[PKT_MAX];

	return fx_run(f, buf, build(buf, p));
}

/* Sums the per-CPU copies of a record of u64 counters. */
static void percpu_sum(int fd, uint32_t key, void *out, size_t size, int ncpus)
{
	uint64_t *vals = calloc(ncpus, size), *sum = out;

	memset(out, 0, size);
	CU_ASSERT_PTR_NOT_NULL(vals);
	if (!vals)
		return;
	CU_ASSERT_EQUAL(bpf_map_lookup_elem(fd, &key, vals), 0);
	for (int cpu = 0; cpu < ncpus; cpu++)
		for (size_t i = 0; i < size / 8; i++)
			sum[i] += vals[cpu * size / 8 + i];
	free(vals);
}

static struct ferry_flow_stats fx_flow(struct fx *f, uint32_t flow_id)
{
	struct ferry_flow_stats s;

	percpu_sum(bpf_map__fd(f->skel->maps.ferry_flow_stats), flow_id, &s, sizeof(s), f->ncpus);
	return s;
}

static struct ferry_xdp_stats fx_xdp(struct fx *f)
{
	struct ferry_xdp_stats s;

	percpu_sum(bpf_map__fd(f->skel->maps.ferry_xdp_stats), 0, &s, sizeof(s), f->ncpus);
	return s;
}

#define FX_SETUP(f)                                                                                \
	do {                                                                                       \
		if (unit_require_root())                                                           \
			return;                                                                    \
		CU_ASSERT_FATAL(fx_load(f));                                                       \
	} while (0)

static void test_v4_udp_match(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_flow_stats fs;
	struct ferry_xdp_stats xs;
	uint8_t buf[PKT_MAX];
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(&f, 0, &r);

	len = build(buf, &udp4);
	/* No socket in the XSKMAP: the redirect falls back to XDP_PASS. */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);

	fs = fx_flow(&f, FLOW_A);
	CU_ASSERT_EQUAL(fs.packets, 2);
	CU_ASSERT_EQUAL(fs.bytes, 2 * len);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 2);
	CU_ASSERT_EQUAL(fs.redirected, 0);
	CU_ASSERT_EQUAL(fs.reply_packets, 0);
	CU_ASSERT_EQUAL(fs.passed_fragment, 0);
	xs = fx_xdp(&f);
	CU_ASSERT_EQUAL(xs.packets, 2);
	CU_ASSERT_EQUAL(xs.steered, 2);
	CU_ASSERT_EQUAL(xs.passed, 0);
	CU_ASSERT_EQUAL(xs.passed_malformed, 0);
	fx_close(&f);
}

/* on_failure: drop: the same packets are dropped, and counted so. */
static void test_drop_no_socket(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_flow_stats fs;
	uint8_t buf[PKT_MAX];
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	r.dport_lo = r.dport_hi = 5000;
	r.flags = FERRY_RULE_F_DROP_NO_SOCKET;
	fx_rule(&f, 0, &r);

	len = build(buf, &udp4);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_DROP);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_DROP);
	/* Only the flow's packets: another port still goes to the kernel. */
	r.dport_lo = r.dport_hi = 5001;
	fx_rule(&f, 0, &r);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);

	fs = fx_flow(&f, FLOW_A);
	CU_ASSERT_EQUAL(fs.packets, 2);
	CU_ASSERT_EQUAL(fs.dropped_no_socket, 2);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 0);
	CU_ASSERT_EQUAL(fs.redirected, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 1);
	fx_close(&f);
}

static void test_no_match(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct pkt p;
	struct fx f;

	FX_SETUP(&f);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(&f, 0, &r);

	p = udp4;
	p.dport = 5001;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	p = udp4;
	p.dst = "198.18.0.11";
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	p = udp4;
	p.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	/* Not UDP or TCP: never steered, whatever the rules. */
	p = udp4;
	p.proto = IPPROTO_ICMP;
	p.no_l4 = true;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	/* An IPv4 rule does not match IPv6. */
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &udp6), XDP_PASS);

	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 5);
	CU_ASSERT_EQUAL(fx_xdp(&f).steered, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed_malformed, 0);
	fx_close(&f);
}

static void test_prefix_and_port_edges(void)
{
	static const struct {
		const char *src;
		uint16_t sport, dport;
		bool match;
	} cases[] = {
		{ "198.18.4.0", 1024, 5000, true },    { "198.18.7.255", 2047, 5009, true },
		{ "198.18.3.255", 1500, 5005, false }, { "198.18.8.0", 1500, 5005, false },
		{ "198.18.5.5", 1023, 5005, false },   { "198.18.5.5", 2048, 5005, false },
		{ "198.18.5.5", 1500, 4999, false },   { "198.18.5.5", 1500, 5010, false },
	};
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.0", 24);
	unsigned int matches = 0;
	struct fx f;

	FX_SETUP(&f);
	set_src(&r, "198.18.4.0", 22);
	r.dport_lo = 5000;
	r.dport_hi = 5009;
	r.sport_lo = 1024;
	r.sport_hi = 2047;
	fx_rule(&f, 0, &r);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pkt p = udp4;
		uint64_t before = fx_flow(&f, FLOW_A).packets;

		p.src = cases[i].src;
		p.sport = cases[i].sport;
		p.dport = cases[i].dport;
		CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
		if (fx_flow(&f, FLOW_A).packets - before != cases[i].match)
			CU_FAIL("prefix/port edge case matched wrongly");
		matches += cases[i].match;
	}
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, matches);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, sizeof(cases) / sizeof(cases[0]) - matches);

	/* dst prefix edge: /24 of 198.18.0.0 */
	{
		struct pkt p = udp4;

		p.src = "198.18.5.5";
		p.dst = "198.18.1.0";
		CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
		CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, matches);
		p.dst = "198.18.0.255";
		CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
		CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, matches + 1);
	}
	fx_close(&f);
}

static void test_rule_order_and_end(void)
{
	struct ferry_rule wide = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.0", 16);
	struct ferry_rule narrow = rule(FLOW_B, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_rule off = {};
	struct ferry_rule after = rule(FLOW_B, 4, IPPROTO_UDP, "198.19.0.0", 16);
	struct pkt p = udp4;
	struct fx f;

	FX_SETUP(&f);
	wide.dport_lo = wide.dport_hi = 5000;
	fx_rule(&f, 0, &wide);
	fx_rule(&f, 1, &narrow);
	fx_rule(&f, 2, &off);
	fx_rule(&f, 3, &after);

	/* Both slot 0 and slot 1 match: the first wins. */
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 1);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 0);

	/* Only slot 1 matches. */
	p.dport = 6000;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 1);

	/* Slot 3 is behind the disabled slot 2: the table ends there. */
	p = udp4;
	p.dst = "198.19.0.1";
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 1);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 1);
	CU_ASSERT_EQUAL(fx_xdp(&f).steered, 2);
	fx_close(&f);
}

static void test_full_table(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct pkt p = udp4;
	struct fx f;

	FX_SETUP(&f);
	/* Every slot enabled, only the last one matching: the scan reaches it. */
	for (uint32_t slot = 0; slot < FERRY_MAX_RULES; slot++) {
		r.dport_lo = r.dport_hi = 10000 + slot;
		r.flow_id = slot == FERRY_MAX_RULES - 1 ? FLOW_B : FLOW_A;
		fx_rule(&f, slot, &r);
	}
	p.dport = 10000 + FERRY_MAX_RULES - 1;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 1);
	p.dport = 9999;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 1);
	fx_close(&f);
}

static void test_reply_rule(void)
{
	struct ferry_rule r = rule(FLOW_B, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_flow_stats fs;
	struct fx f;

	FX_SETUP(&f);
	r.dir = FERRY_DIR_REPLY;
	set_src(&r, "198.19.1.1", 32);
	r.sport_lo = r.sport_hi = 1500;
	fx_rule(&f, 0, &r);

	CU_ASSERT_EQUAL(fx_run_pkt(&f, &udp4), XDP_PASS);
	fs = fx_flow(&f, FLOW_B);
	CU_ASSERT_EQUAL(fs.packets, 1);
	CU_ASSERT_EQUAL(fs.reply_packets, 1);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 1);
	fx_close(&f);
}

static void test_ifindex(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct fx f;

	FX_SETUP(&f);
	r.ifindex = 1000000; /* not where test_run says the packet came from */
	fx_rule(&f, 0, &r);
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &udp4), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);

	r.ifindex = 1;
	fx_rule(&f, 0, &r);
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &udp4), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 1);
	fx_close(&f);
}

static void test_ipv6(void)
{
	/* /72 cuts through the third 32-bit word. */
	struct ferry_rule r = rule(FLOW_A, 6, IPPROTO_UDP, "fd00:2::", 72);
	struct ferry_rule tcp = rule(FLOW_B, 6, IPPROTO_TCP, "fd00:2::10", 128);
	uint8_t buf[PKT_MAX];
	struct pkt p;
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	set_src(&r, "fd00:1::", 32);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(&f, 0, &r);
	fx_rule(&f, 1, &tcp);

	len = build(buf, &udp6);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 1);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).bytes, len);

	p = udp6;
	p.dst = "fd00:2::ff:ffff:ffff:ffff"; /* last address of the /72 */
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 2);
	p.dst = "fd00:2::100:0:0:0"; /* first address after it */
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	p = udp6;
	p.src = "fd00:3::1"; /* outside the source /32 */
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 2);

	p = udp6;
	p.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 1);

	/* An extension header (here a fragment header) first: left to the kernel. */
	p = udp6;
	p.proto = 44;
	p.no_l4 = true;
	p.payload = 16;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 3);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed_malformed, 0);
	fx_close(&f);
}

/* Every cut of a valid frame is malformed, never matched, never dropped. */
static void check_truncations(struct fx *f, const struct pkt *p)
{
	struct ferry_xdp_stats before = fx_xdp(f), after;
	uint8_t buf[PKT_MAX];
	size_t len = build(buf, p);
	unsigned int runs = 0;

	for (size_t cut = 0; cut < len; cut++) {
		int ret = fx_run(f, buf, cut);

		/* The kernel refuses frames shorter than an Ethernet header itself. */
		if (cut < ETH_HDR) {
			CU_ASSERT(ret == XDP_PASS || ret < 0);
			runs += ret == XDP_PASS;
			continue;
		}
		CU_ASSERT_EQUAL(ret, XDP_PASS);
		runs++;
	}
	after = fx_xdp(f);
	CU_ASSERT_EQUAL(after.packets - before.packets, runs);
	CU_ASSERT_EQUAL(after.passed_malformed - before.passed_malformed, runs);
	CU_ASSERT_EQUAL(after.steered, before.steered);
}

static void test_truncated(void)
{
	struct pkt tcp4 = udp4, tcp6 = udp6, frag = udp4;
	struct fx f;

	FX_SETUP(&f);
	/* Rules that would take every one of these frames, were it whole. */
	for (uint32_t slot = 0; slot < 4; slot++) {
		struct ferry_rule r = slot < 2 ? rule(FLOW_A, 4, 0, "198.18.0.0", 15)
					       : rule(FLOW_A, 6, 0, "fd00::", 8);

		r.l4_proto = slot % 2 ? IPPROTO_TCP : IPPROTO_UDP;
		fx_rule(&f, slot, &r);
	}
	tcp4.proto = tcp6.proto = IPPROTO_TCP;
	frag.frag_off = 0x2000;

	check_truncations(&f, &udp4);
	check_truncations(&f, &tcp4);
	check_truncations(&f, &udp6);
	check_truncations(&f, &tcp6);
	check_truncations(&f, &frag);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).passed_fragment, 0);
	fx_close(&f);
}

static void test_malformed_headers(void)
{
	struct ferry_rule udp = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.0", 15);
	struct ferry_rule tcp = rule(FLOW_A, 4, IPPROTO_TCP, "198.18.0.0", 15);
	uint8_t buf[PKT_MAX];
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	fx_rule(&f, 0, &udp);
	fx_rule(&f, 1, &tcp);

	len = build(buf, &udp4);
	buf[ETH_HDR] = 0x44; /* IHL 4 */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	len = build(buf, &udp4);
	buf[ETH_HDR] = 0x65; /* version 6 under an IPv4 EtherType */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	len = build(buf, &udp4);
	put16(buf + ETH_HDR + 2, 19); /* total length below the header's */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	len = build(buf, &udp4);
	put16(buf + ETH_HDR + 2, IP4_HDR + 4); /* UDP header past the IP length */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	len = build(buf, &udp4);
	buf[ETH_HDR] = 0x4f; /* IHL 15: options run past the frame */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	{
		struct pkt p = udp4;

		p.proto = IPPROTO_TCP;
		len = build(buf, &p);
		buf[ETH_HDR + IP4_HDR + 12] = 4 << 4; /* TCP data offset 4 */
		CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	}
	len = build(buf, &udp6);
	put16(buf + ETH_HDR + 4, 4); /* IPv6 payload too short for UDP */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);

	CU_ASSERT_EQUAL(fx_xdp(&f).passed_malformed, 7);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);

	/* Trailing bytes after the IP packet (Ethernet padding) are fine. */
	len = build(buf, &udp4);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len + 20), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 1);
	fx_close(&f);
}

static void test_garbage(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_xdp_stats xs;
	uint8_t buf[PKT_MAX];
	unsigned int seed = 42, runs = 0;
	struct fx f;

	FX_SETUP(&f);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(&f, 0, &r);

	for (int i = 0; i < 300; i++) {
		size_t len = ETH_HDR + rand_r(&seed) % (PKT_MAX - ETH_HDR);

		for (size_t j = 0; j < len; j++)
			buf[j] = rand_r(&seed);
		/* Most of them claim to be IP, so the IP parsers see the garbage. */
		if (i % 3 == 0)
			put16(buf + 12, 0x0800);
		else if (i % 3 == 1)
			put16(buf + 12, 0x86dd);
		CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
		runs++;
	}
	xs = fx_xdp(&f);
	CU_ASSERT_EQUAL(xs.packets, runs);
	CU_ASSERT_EQUAL(xs.passed + xs.passed_malformed + xs.passed_fragment + xs.steered, runs);
	CU_ASSERT(xs.passed_malformed > 0);
	fx_close(&f);
}

static void test_not_ip(void)
{
	uint8_t buf[PKT_MAX];
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	len = build(buf, &udp4);
	put16(buf + 12, 0x0806); /* ARP */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	put16(buf + 12, 0x8100); /* VLAN tag: not parsed */
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 2);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed_malformed, 0);
	fx_close(&f);
}

static void test_fragment(void)
{
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_flow_stats fs;
	struct ferry_xdp_stats xs;
	struct pkt p;
	struct fx f;

	FX_SETUP(&f);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(&f, 0, &r);

	/* First fragment (MF set, offset 0): has ports, still not steered. */
	p = udp4;
	p.frag_off = 0x2000;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	/* A later one: no UDP header, matched on addresses and protocol only. */
	p = udp4;
	p.frag_off = 0x0004;
	p.no_l4 = true;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
	/* A fragment of something else. */
	p.dst = "198.18.0.11";
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);

	fs = fx_flow(&f, FLOW_A);
	CU_ASSERT_EQUAL(fs.passed_fragment, 2);
	CU_ASSERT_EQUAL(fs.packets, 0);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 0);
	xs = fx_xdp(&f);
	CU_ASSERT_EQUAL(xs.passed_fragment, 2);
	CU_ASSERT_EQUAL(xs.passed, 1);
	CU_ASSERT_EQUAL(xs.steered, 0);
	fx_close(&f);
}

/* ---- policy: what is never steered, and what is never let through ---- */

/* Inserts n bytes of IPv4 options after the fixed header of a frame from build(). */
static size_t add_ip4_opts(uint8_t *buf, size_t len, const uint8_t *opts, size_t n)
{
	uint8_t *l3 = buf + ETH_HDR;

	memmove(l3 + IP4_HDR + n, l3 + IP4_HDR, len - ETH_HDR - IP4_HDR);
	memcpy(l3 + IP4_HDR, opts, n);
	l3[0] = 0x40 | (IP4_HDR + n) / 4;
	put16(l3 + 2, (l3[2] << 8 | l3[3]) + n);
	return len + n;
}

/* Inserts one IPv6 extension header `type` (8 bytes, `hdr`) after the fixed header. */
static size_t add_ip6_ext(uint8_t *buf, size_t len, uint8_t type, const uint8_t hdr[8])
{
	uint8_t *l3 = buf + ETH_HDR;

	memmove(l3 + IP6_HDR + 8, l3 + IP6_HDR, len - ETH_HDR - IP6_HDR);
	memcpy(l3 + IP6_HDR, hdr, 8);
	l3[IP6_HDR] = l3[6]; /* the extension header leads to what the fixed one did */
	l3[6] = type;
	put16(l3 + 4, (l3[4] << 8 | l3[5]) + 8);
	return len + 8;
}

/*
 * A reply rule bound to the upstream's interface: the same reply arriving on
 * another interface (the client side, where a forger sits) matches nothing.
 */
static void test_reply_rule_wrong_iface(void)
{
	struct ferry_rule r = rule(FLOW_B, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct fx f;

	FX_SETUP(&f);
	r.dir = FERRY_DIR_REPLY;
	set_src(&r, "198.19.1.1", 32);
	r.sport_lo = r.sport_hi = 1500;
	r.ifindex = 1000000; /* the upstream's side; test_run says lo (1) */
	fx_rule(&f, 0, &r);

	CU_ASSERT_EQUAL(fx_run_pkt(&f, &udp4), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 0);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).reply_packets, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 1);
	CU_ASSERT_EQUAL(fx_xdp(&f).steered, 0);

	r.ifindex = 1;
	fx_rule(&f, 0, &r);
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &udp4), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).reply_packets, 1);
	fx_close(&f);
}

/*
 * on_failure: drop keeps the kernel from getting what ferry cannot steer:
 * first fragments and IPv6 extension headers of the flow are dropped and
 * counted; a later fragment (no ports, useless without its first) still
 * goes to the kernel.  With on_failure: pass, all of it goes to the kernel.
 */
static void test_policy_fragments(void)
{
	static const uint8_t hbh[8] = { 0, 0, 1, 4, 0, 0, 0, 0 };     /* PadN */
	static const uint8_t frag0[8] = { 0, 0, 0x00, 0x01, 0, 0, 0, 1 }; /* offset 0, M */
	static const uint8_t frag8[8] = { 0, 0, 0x00, 0x08, 0, 0, 0, 1 }; /* offset 8 */
	struct ferry_rule r4 = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_rule r6 = rule(FLOW_A, 6, IPPROTO_UDP, "fd00:2::10", 128);
	struct ferry_flow_stats fs;
	uint8_t buf[PKT_MAX];
	struct pkt p;
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	for (int drop = 1; drop >= 0; drop--) {
		int verdict = drop ? XDP_DROP : XDP_PASS;

		r4.dport_lo = r4.dport_hi = r6.dport_lo = r6.dport_hi = 5000;
		r4.flags = r6.flags = drop ? FERRY_RULE_F_DROP_NO_SOCKET : 0;
		r4.flow_id = r6.flow_id = drop ? FLOW_A : FLOW_B;
		fx_rule(&f, 0, &r4);
		fx_rule(&f, 1, &r6);

		p = udp4;
		p.frag_off = 0x2000; /* first fragment */
		CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), verdict);
		p.frag_off = 0x0004; /* a later one */
		p.no_l4 = true;
		CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);
		/* Another port of the same address is not the flow's: the kernel's. */
		p = udp4;
		p.frag_off = 0x2000;
		p.dport = 53;
		CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_PASS);

		len = add_ip6_ext(buf, build(buf, &udp6), 0, hbh);
		CU_ASSERT_EQUAL(fx_run(&f, buf, len), verdict);
		len = add_ip6_ext(buf, build(buf, &udp6), 44, frag0);
		CU_ASSERT_EQUAL(fx_run(&f, buf, len), verdict);
		p = udp6;
		p.no_l4 = true;
		len = add_ip6_ext(buf, build(buf, &p), 44, frag8);
		CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);

		fs = fx_flow(&f, drop ? FLOW_A : FLOW_B);
		CU_ASSERT_EQUAL(fs.dropped_fragment, drop ? 3 : 0);
		CU_ASSERT_EQUAL(fs.passed_fragment, drop ? 2 : 5);
		CU_ASSERT_EQUAL(fs.packets, 0);
	}
	CU_ASSERT_EQUAL(fx_xdp(&f).dropped_policy, 3);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed_fragment, 7);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 2);
	CU_ASSERT_EQUAL(fx_xdp(&f).steered, 0);
	fx_close(&f);
}

/*
 * Where the walk gives up before the transport header (more than
 * FERRY_IPV6_EXT_MAX extension headers, AH, ESP, a header it does not
 * walk), the kernel may still find the flow's UDP or TCP there (it accepts
 * a long chain of destination options): such a packet is matched on its
 * addresses alone, and a drop flow among the matches drops it.  IPv4 AH and
 * ESP likewise.  Another transport after the headers is not a flow's.
 */
static void test_policy_unknown_l4(void)
{
	static const uint8_t pad[8] = { 0, 0, 1, 4, 0, 0, 0, 0 }; /* PadN */
	struct ferry_rule pass6 = rule(FLOW_B, 6, IPPROTO_UDP, "fd00:2::10", 128);
	struct ferry_rule drop6 = rule(FLOW_A, 6, IPPROTO_UDP, "fd00:2::10", 128);
	struct ferry_rule tcp6 = rule(FLOW_A, 6, IPPROTO_TCP, "fd00:2::20", 128);
	struct ferry_rule drop4 = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	uint8_t buf[PKT_MAX];
	struct pkt p;
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	/* A pass flow on the same address first: the drop flow (port 5000) still wins. */
	pass6.dport_lo = pass6.dport_hi = 53;
	drop6.dport_lo = drop6.dport_hi = 5000;
	tcp6.dport_lo = tcp6.dport_hi = 5000;
	drop4.dport_lo = drop4.dport_hi = 5000;
	drop6.flags = tcp6.flags = drop4.flags = FERRY_RULE_F_DROP_NO_SOCKET;
	fx_rule(&f, 0, &pass6);
	fx_rule(&f, 1, &drop6);
	fx_rule(&f, 2, &tcp6);
	fx_rule(&f, 3, &drop4);

	/* 7 destination options headers, one more than the walk follows. */
	len = build(buf, &udp6);
	for (int i = 0; i < 7; i++)
		len = add_ip6_ext(buf, len, IPPROTO_DSTOPTS, pad);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_DROP);
	/* An experimental extension header (RFC 3692), Shim6, AH, ESP: not walked. */
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, build(buf, &udp6), 253, pad)), XDP_DROP);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, build(buf, &udp6), 140, pad)), XDP_DROP);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, build(buf, &udp6), IPPROTO_AH, pad)),
			XDP_DROP);
	len = add_ip6_ext(buf, build(buf, &udp6), IPPROTO_AH, pad);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, len, IPPROTO_HOPOPTS, pad)), XDP_DROP);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, build(buf, &udp6), IPPROTO_ESP, pad)),
			XDP_DROP);
	/* Only a TCP flow's address: its rules are tried too. */
	p = udp6;
	p.dst = "fd00:2::20";
	len = build(buf, &p);
	for (int i = 0; i < 7; i++)
		len = add_ip6_ext(buf, len, IPPROTO_DSTOPTS, pad);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_DROP);
	/* IPv4 AH and ESP. */
	p = udp4;
	p.proto = IPPROTO_AH;
	p.no_l4 = true;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_DROP);
	p.proto = IPPROTO_ESP;
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &p), XDP_DROP);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).dropped_fragment, 9);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).dropped_policy, 9);

	/* Another address: nobody's.  Another transport after the headers: not a flow's. */
	p = udp6;
	p.dst = "fd00:2::99";
	len = build(buf, &p);
	for (int i = 0; i < 7; i++)
		len = add_ip6_ext(buf, len, IPPROTO_DSTOPTS, pad);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS);
	p = udp6;
	p.proto = 132; /* SCTP */
	p.no_l4 = true;
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, build(buf, &p), IPPROTO_DSTOPTS, pad)),
			XDP_PASS);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 2);

	/* Without the drop flows, the pass flow's: to the kernel, counted. */
	fx_rule(&f, 1, &(struct ferry_rule){ 0 });
	fx_rule(&f, 2, &(struct ferry_rule){ 0 });
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip6_ext(buf, build(buf, &udp6), 253, pad)), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).passed_fragment, 1);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed_fragment, 1);
	CU_ASSERT_EQUAL(fx_xdp(&f).dropped_policy, 9);
	fx_close(&f);
}

/* IPv4 source-route options (LSRR, SSRR) of a flow: dropped and counted, whatever on_failure. */
static void test_source_route(void)
{
	static const uint8_t lsrr[8] = { 131, 7, 4, 198, 18, 0, 99, 0 };
	static const uint8_t ssrr[8] = { 1, 137, 7, 4, 198, 18, 0, 99 };
	static const uint8_t rr[8] = { 7, 7, 4, 0, 0, 0, 0, 0 };     /* record route */
	static const uint8_t nops[4] = { 1, 1, 1, 0 };
	static const uint8_t bad[4] = { 68, 1, 131, 0 };             /* length 1: the list ends */
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	uint8_t buf[PKT_MAX];
	struct pkt p;
	struct fx f;

	FX_SETUP(&f);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(&f, 0, &r);

	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &udp4), lsrr, 8)), XDP_DROP);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &udp4), ssrr, 8)), XDP_DROP);
	/* Fragments too: the kernel would reassemble them into a source-routed packet. */
	p = udp4;
	p.frag_off = 0x2000;
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &p), lsrr, 8)), XDP_DROP);
	/* Other options are forwarded as they are (no socket here: XDP_PASS). */
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &udp4), rr, 8)), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &udp4), nops, 4)), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &udp4), bad, 4)), XDP_PASS);
	/* Not a flow's: the kernel's to judge (accept_source_route). */
	p = udp4;
	p.dport = 53;
	CU_ASSERT_EQUAL(fx_run(&f, buf, add_ip4_opts(buf, build(buf, &p), lsrr, 8)), XDP_PASS);

	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).dropped_source_route, 3);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 3);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).passed_no_socket, 3);
	CU_ASSERT_EQUAL(fx_xdp(&f).dropped_policy, 3);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 1);
	fx_close(&f);
}

/* ---- ICMP errors ---- */

/* What ferry sent upstream for a client: egress:NAT port -> upstream:6000. */
static const struct pkt sent4 = {
	.family = 4,
	.proto = IPPROTO_UDP,
	.src = "198.18.2.1",
	.dst = "198.18.2.2",
	.sport = 40007,
	.dport = 6000,
	.payload = 32,
};

static const struct pkt sent6 = {
	.family = 6,
	.proto = IPPROTO_UDP,
	.src = "fd00:2::1",
	.dst = "fd00:2::2",
	.sport = 40007,
	.dport = 6000,
	.payload = 32,
};

/*
 * An ICMP (family 4) or ICMPv6 message of `type` from `src` to `dst`, whose
 * body is the first `quote_max` bytes of the IP packet `quoted`.  The XDP
 * program reads no checksum, so none is filled in.
 */
static size_t build_icmp(uint8_t *buf, uint8_t type, const char *src, const char *dst,
			 const struct pkt *quoted, size_t quote_max)
{
	size_t ip_len = quoted->family == 4 ? IP4_HDR : IP6_HDR, qlen;
	uint8_t inner[PKT_MAX], *l3 = buf + ETH_HDR, *icmp = l3 + ip_len;

	qlen = build(inner, quoted) - ETH_HDR;
	if (qlen > quote_max)
		qlen = quote_max;
	memset(buf, 0, ETH_HDR + ip_len + 8);
	memcpy(buf, mac_b, 6);
	memcpy(buf + 6, mac_a, 6);
	if (quoted->family == 4) {
		put16(buf + 12, 0x0800);
		l3[0] = 0x45;
		put16(l3 + 2, IP4_HDR + 8 + qlen);
		l3[8] = 64;
		l3[9] = IPPROTO_ICMP;
		inet_pton(AF_INET, src, l3 + 12);
		inet_pton(AF_INET, dst, l3 + 16);
		put16(l3 + 10, ip4_csum(l3));
	} else {
		put16(buf + 12, 0x86dd);
		l3[0] = 0x60;
		put16(l3 + 4, 8 + qlen);
		l3[6] = IPPROTO_ICMPV6;
		l3[7] = 64;
		inet_pton(AF_INET6, src, l3 + 8);
		inet_pton(AF_INET6, dst, l3 + 24);
	}
	icmp[0] = type;
	icmp[1] = quoted->family == 4 ? 3 : 4; /* port unreachable, for the unreachables */
	memcpy(icmp + 8, inner + ETH_HDR, qlen);
	return ETH_HDR + ip_len + 8 + qlen;
}

static int fx_run_icmp(struct fx *f, uint8_t type, const char *src, const char *dst,
		       const struct pkt *quoted, size_t quote_max)
{
	uint8_t buf[PKT_MAX];

	return fx_run(f, buf, build_icmp(buf, type, src, dst, quoted, quote_max));
}

/* forward's reply rule for sent4/sent6: upstream:6000 -> egress, NAT ports 40000-40999. */
static struct ferry_rule reply_rule(uint32_t flow_id, int family, uint8_t proto)
{
	uint8_t plen = family == 4 ? 32 : 128;
	struct ferry_rule r = rule(flow_id, family, proto, family == 4 ? "198.18.2.1" : "fd00:2::1",
				   plen);

	r.dir = FERRY_DIR_REPLY;
	set_src(&r, family == 4 ? "198.18.2.2" : "fd00:2::2", plen);
	r.sport_lo = r.sport_hi = 6000;
	r.dport_lo = 40000;
	r.dport_hi = 40999;
	return r;
}

/* Flow A: UDP 198.18.1.1:5000 and its replies; flow B: v4 TCP and v6 UDP replies. */
static void fx_icmp_rules(struct fx *f)
{
	struct ferry_rule r;

	r = reply_rule(FLOW_A, 4, IPPROTO_UDP);
	fx_rule(f, 0, &r);
	r = reply_rule(FLOW_B, 4, IPPROTO_TCP);
	fx_rule(f, 1, &r);
	r = reply_rule(FLOW_B, 6, IPPROTO_UDP);
	fx_rule(f, 2, &r);
	r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.1.1", 32);
	r.dport_lo = r.dport_hi = 5000;
	fx_rule(f, 3, &r);
}

static void test_icmp_error_session(void)
{
	struct ferry_flow_stats fs;
	struct ferry_xdp_stats xs;
	uint8_t buf[PKT_MAX];
	struct pkt tcp = sent4;
	size_t len;
	struct fx f;

	FX_SETUP(&f);
	fx_icmp_rules(&f);

	/* The upstream's port unreachable about what ferry sent: flow A's redirect path. */
	len = build_icmp(buf, 3, "198.18.2.2", "198.18.2.1", &sent4, PKT_MAX);
	CU_ASSERT_EQUAL(fx_run(&f, buf, len), XDP_PASS); /* no socket: the fallback */
	fs = fx_flow(&f, FLOW_A);
	CU_ASSERT_EQUAL(fs.packets, 1);
	CU_ASSERT_EQUAL(fs.bytes, len);
	CU_ASSERT_EQUAL(fs.reply_packets, 1);
	CU_ASSERT_EQUAL(fs.icmp_errors, 1);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 1);
	CU_ASSERT_EQUAL(fs.redirected, 0);
	/* Time exceeded and parameter problem from a router in between. */
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 11, "198.18.3.254", "198.18.2.1", &sent4, PKT_MAX),
			XDP_PASS);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 12, "198.18.3.254", "198.18.2.1", &sent4, PKT_MAX),
			XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).icmp_errors, 3);

	/* TCP, quoting only the 8 bytes RFC 792 promises: flow B. */
	tcp.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 11, "198.18.3.254", "198.18.2.1", &tcp, IP4_HDR + 8),
			XDP_PASS);
	/* ICMPv6 packet too big and port unreachable: flow B. */
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 2, "fd00:3::fe", "fd00:2::1", &sent6, PKT_MAX), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 1, "fd00:2::2", "fd00:2::1", &sent6, IP6_HDR + 8),
			XDP_PASS);
	fs = fx_flow(&f, FLOW_B);
	CU_ASSERT_EQUAL(fs.packets, 3);
	CU_ASSERT_EQUAL(fs.reply_packets, 3);
	CU_ASSERT_EQUAL(fs.icmp_errors, 3);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 3);

	xs = fx_xdp(&f);
	CU_ASSERT_EQUAL(xs.packets, 6);
	CU_ASSERT_EQUAL(xs.steered, 6);
	CU_ASSERT_EQUAL(xs.passed, 0);
	CU_ASSERT_EQUAL(xs.passed_malformed, 0);

	/* A plain reply still counts no ICMP error. */
	CU_ASSERT_EQUAL(fx_run_pkt(&f, &(struct pkt){ .family = 4, .proto = IPPROTO_UDP,
						    .src = "198.18.2.2", .dst = "198.18.2.1",
						    .sport = 6000, .dport = 40007 }),
			XDP_PASS);
	fs = fx_flow(&f, FLOW_A);
	CU_ASSERT_EQUAL(fs.reply_packets, 4);
	CU_ASSERT_EQUAL(fs.icmp_errors, 3);
	fx_close(&f);
}

/* An ICMP error about a session is taken only from the upstream's interface. */
static void test_icmp_error_wrong_iface(void)
{
	struct ferry_rule r = reply_rule(FLOW_A, 4, IPPROTO_UDP);
	struct fx f;

	FX_SETUP(&f);
	r.ifindex = 1000000; /* the upstream's side; test_run says lo (1) */
	fx_rule(&f, 0, &r);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &sent4, PKT_MAX), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).icmp_errors, 0);
	CU_ASSERT_EQUAL(fx_xdp(&f).passed, 1);

	r.ifindex = 1;
	fx_rule(&f, 0, &r);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &sent4, PKT_MAX), XDP_PASS);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).icmp_errors, 1);
	fx_close(&f);
}

static void test_icmp_not_steered(void)
{
	struct pkt p, reply_to_client = {
		.family = 4,
		.proto = IPPROTO_UDP,
		.src = "198.18.1.1",
		.dst = "198.18.1.2",
		.sport = 5000,
		.dport = 34567,
		.payload = 8,
	};
	struct ferry_xdp_stats xs;
	unsigned int runs = 0;
	struct fx f;

	FX_SETUP(&f);
	fx_icmp_rules(&f);

	/* Ping to the proxy, even with a body that reads like a quote. */
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 8, "198.18.1.2", "198.18.1.1", &udp4, 16), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 8, "198.18.2.2", "198.18.2.1", &sent4, PKT_MAX), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 0, "198.18.2.2", "198.18.2.1", &sent4, PKT_MAX), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 128, "fd00:2::2", "fd00:2::1", &sent6, PKT_MAX), XDP_PASS);
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 135, "fd00:2::2", "fd00:2::1", &sent6, PKT_MAX), XDP_PASS);
	/* Redirect: not an error ferry relays. */
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 5, "198.18.2.2", "198.18.2.1", &sent4, PKT_MAX), XDP_PASS);
	runs += 6;

	/* Errors about other tuples: another upstream port, a port outside the NAT range. */
	p = sent4;
	p.dport = 6001;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &p, PKT_MAX), XDP_PASS);
	p = sent4;
	p.sport = 39999;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &p, PKT_MAX), XDP_PASS);
	/* The host's own traffic, from the egress address too. */
	p = sent4;
	p.sport = 22;
	p.dport = 50000;
	p.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &p, PKT_MAX), XDP_PASS);
	/* A v6 error about a v6 tuple that no rule has. */
	p = sent6;
	p.proto = IPPROTO_TCP;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 1, "fd00:2::2", "fd00:2::1", &p, PKT_MAX), XDP_PASS);
	/* Not addressed to the quoted packet's sender. */
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.9", &sent4, PKT_MAX), XDP_PASS);
	/* The client refusing one of ferry's replies: client rules never take an error. */
	CU_ASSERT_EQUAL(
	    fx_run_icmp(&f, 3, "198.18.1.2", "198.18.1.1", &reply_to_client, PKT_MAX), XDP_PASS);
	/* A quoted fragment, and a quote of neither UDP nor TCP. */
	p = sent4;
	p.frag_off = 0x2000;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &p, PKT_MAX), XDP_PASS);
	p = sent4;
	p.proto = IPPROTO_ICMP;
	CU_ASSERT_EQUAL(fx_run_icmp(&f, 3, "198.18.2.2", "198.18.2.1", &p, PKT_MAX), XDP_PASS);
	runs += 8;

	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 0);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 0);
	xs = fx_xdp(&f);
	CU_ASSERT_EQUAL(xs.packets, runs);
	CU_ASSERT_EQUAL(xs.passed, runs);
	CU_ASSERT_EQUAL(xs.steered, 0);
	CU_ASSERT_EQUAL(xs.passed_malformed, 0);
	fx_close(&f);
}

/* Every cut of a whole error, and quotes too short with consistent lengths: malformed. */
static void check_icmp_truncations(struct fx *f, const struct pkt *quoted, uint8_t type,
				   const char *src, const char *dst)
{
	struct ferry_xdp_stats before = fx_xdp(f), after;
	size_t ip_len = quoted->family == 4 ? IP4_HDR : IP6_HDR;
	uint8_t buf[PKT_MAX];
	size_t len = build_icmp(buf, type, src, dst, quoted, PKT_MAX);
	unsigned int runs = 0;

	for (size_t cut = ETH_HDR; cut < len; cut++, runs++)
		CU_ASSERT_EQUAL(fx_run(f, buf, cut), XDP_PASS);
	/* The ICMP header or the quote's first 8 L4 bytes cut short. */
	for (size_t q = 0; q < ip_len + 8; q++, runs++) {
		size_t n = build_icmp(buf, type, src, dst, quoted, q);

		CU_ASSERT_EQUAL(fx_run(f, buf, n), XDP_PASS);
	}
	after = fx_xdp(f);
	CU_ASSERT_EQUAL(after.packets - before.packets, runs);
	CU_ASSERT_EQUAL(after.passed_malformed - before.passed_malformed, runs);
	CU_ASSERT_EQUAL(after.steered, before.steered);
	/* Whole, it is steered. */
	len = build_icmp(buf, type, src, dst, quoted, PKT_MAX);
	CU_ASSERT_EQUAL(fx_run(f, buf, len), XDP_PASS);
	CU_ASSERT_EQUAL(fx_xdp(f).steered, before.steered + 1);
}

static void test_icmp_truncated(void)
{
	struct pkt tcp = sent4;
	struct fx f;

	FX_SETUP(&f);
	fx_icmp_rules(&f);
	tcp.proto = IPPROTO_TCP;
	check_icmp_truncations(&f, &sent4, 3, "198.18.2.2", "198.18.2.1");
	check_icmp_truncations(&f, &tcp, 11, "198.18.3.254", "198.18.2.1");
	check_icmp_truncations(&f, &sent6, 2, "fd00:3::fe", "fd00:2::1");
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_A).packets, 1);
	CU_ASSERT_EQUAL(fx_flow(&f, FLOW_B).packets, 2);
	fx_close(&f);
}

/* ---- steer.c on real interfaces ---- */

struct netns {
	int orig_fd;
};

/* A namespace of the test's own: its interfaces vanish with it. */
static int netns_enter(struct netns *ns)
{
	ns->orig_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->orig_fd < 0)
		return -errno;
	if (unshare(CLONE_NEWNET)) {
		int err = -errno;

		close(ns->orig_fd);
		return err;
	}
	return 0;
}

static void netns_leave(struct netns *ns)
{
	if (setns(ns->orig_fd, CLONE_NEWNET))
		CU_FAIL("cannot return to the original network namespace");
	close(ns->orig_fd);
}

static int sh(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* va <-> vb with fixed MACs, a bridge (no native XDP), lo up; IPv6 off for quiet links. */
static int make_links(void)
{
	write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	return sh("ip link add va address 02:00:00:00:00:01 type veth peer name vb "
		  "address 02:00:00:00:00:02 && ip link add br0 type bridge && "
		  "ip link set va up && ip link set vb up && ip link set lo up");
}

static char pin_root[64], pin_path[96];

static void pin_paths(void)
{
	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/ferry-unit-%d", (int)getpid());
	snprintf(pin_path, sizeof(pin_path), "%s/ferry", pin_root);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Whatever is left is a failure; remove it anyway. */
static void pin_cleanup(void)
{
	struct stat st;

	if (!stat(pin_path, &st)) {
		CU_FAIL("pin directory left behind");
		nftw(pin_path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	rmdir(pin_root);
}

/* ferry_steer programs on ifindex; *id gets one's id. */
static int ferry_progs(int ifindex, uint32_t *id)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p;
	int n = 0;

	if (!mp || libxdp_get_error(mp))
		return 0;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		if (p && !strcmp(xdp_program__name(p), "ferry_steer")) {
			n = 1;
			if (id)
				*id = xdp_program__id(p);
		}
	} else {
		for (p = xdp_multiprog__next_prog(NULL, mp); p;
		     p = xdp_multiprog__next_prog(p, mp)) {
			if (strcmp(xdp_program__name(p), "ferry_steer"))
				continue;
			n++;
			if (id)
				*id = xdp_program__id(p);
		}
	}
	xdp_multiprog__close(mp);
	return n;
}

static enum xdp_attach_mode attach_mode(int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	enum xdp_attach_mode mode;

	if (!mp || libxdp_get_error(mp))
		return XDP_MODE_UNSPEC;
	mode = xdp_multiprog__attach_mode(mp);
	xdp_multiprog__close(mp);
	return mode;
}

static int pin_open(const char *name)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", pin_path, name);
	return bpf_obj_get(path);
}

static bool mode_is(struct steer *s, const char *ifname, const char *want)
{
	const char *mode = steer__mode_name(s, ifname);

	return mode && !strcmp(mode, want);
}

static bool pin_mode(const char *name, mode_t want)
{
	char path[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", pin_path, name);
	return !stat(path, &st) && (st.st_mode & 07777) == want;
}

static void steer_lifecycle(void)
{
	struct steer_opts opts = { .pin_path = pin_path };
	int va = if_nametoindex("va"), vb = if_nametoindex("vb");
	int lo = if_nametoindex("lo"), br = if_nametoindex("br0");
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.2", 32), back;
	struct ferry_flow_info info;
	struct steer *s = NULL;
	struct stat st;
	uint32_t key;
	int fd;

	CU_ASSERT_EQUAL(steer__create(&s, &opts), 0);
	if (!s)
		return;
	CU_ASSERT(!stat(pin_path, &st) && (st.st_mode & 07777) == 0700);

	CU_ASSERT_EQUAL(steer__attach(s, "vb", CFG_XDP_NATIVE), 0);
	CU_ASSERT(mode_is(s, "vb", "native"));
	CU_ASSERT_EQUAL(attach_mode(vb), XDP_MODE_NATIVE);
	CU_ASSERT_EQUAL(steer__attach(s, "va", CFG_XDP_SKB), 0);
	CU_ASSERT(mode_is(s, "va", "skb"));
	CU_ASSERT_EQUAL(attach_mode(va), XDP_MODE_SKB);
	/* lo has no native XDP: native falls back, native-only fails cleanly. */
	CU_ASSERT_EQUAL(steer__attach(s, "lo", CFG_XDP_NATIVE), 0);
	CU_ASSERT(mode_is(s, "lo", "skb"));
	CU_ASSERT_NOT_EQUAL(steer__attach(s, "br0", CFG_XDP_NATIVE_ONLY), 0);
	CU_ASSERT_PTR_NULL(steer__mode_name(s, "br0"));
	CU_ASSERT_EQUAL(ferry_progs(br, NULL), 0);
	CU_ASSERT_FALSE(pin_mode("ferry_xdp_stats_br0", 0600));
	CU_ASSERT_EQUAL(steer__attach(s, "vb", CFG_XDP_NATIVE), -EEXIST);
	CU_ASSERT_EQUAL(steer__attach(s, "nosuch0", CFG_XDP_NATIVE), -ENODEV);

	CU_ASSERT_EQUAL(ferry_progs(va, NULL), 1);
	CU_ASSERT_EQUAL(ferry_progs(vb, NULL), 1);
	CU_ASSERT_EQUAL(ferry_progs(lo, NULL), 1);
	CU_ASSERT(steer__xsks_fd(s, "vb") >= 0);
	CU_ASSERT(steer__xsks_fd(s, "va") != steer__xsks_fd(s, "vb"));
	CU_ASSERT_EQUAL(steer__xsks_fd(s, "br0"), -ENOENT);
	CU_ASSERT(steer__fwd_stats_fd(s) >= 0);

	CU_ASSERT(pin_mode(FERRY_PIN_RULES, 0600));
	CU_ASSERT(pin_mode(FERRY_PIN_FLOW_STATS, 0600));
	CU_ASSERT(pin_mode(FERRY_PIN_FWD_STATS, 0600));
	CU_ASSERT(pin_mode(FERRY_PIN_FLOW_INFO, 0600));
	CU_ASSERT(pin_mode("ferry_xdp_stats_va", 0600));
	CU_ASSERT(pin_mode("ferry_xdp_stats_vb", 0600));
	CU_ASSERT(pin_mode("ferry_xdp_stats_lo", 0600));

	/* What steer writes is what the pins show. */
	CU_ASSERT_EQUAL(steer__set_rule(s, 0, &r), 0);
	CU_ASSERT_EQUAL(steer__set_rule(s, FERRY_MAX_RULES, &r), -ERANGE);
	r.family = 5;
	CU_ASSERT_EQUAL(steer__set_rule(s, 1, &r), -EINVAL);
	CU_ASSERT_EQUAL(steer__set_flow_info(s, FLOW_A, "telemetry"), 0);
	CU_ASSERT_EQUAL(steer__set_flow_info(s, FERRY_MAX_FLOWS, "x"), -ERANGE);
	fd = pin_open(FERRY_PIN_RULES);
	key = 0;
	CU_ASSERT(fd >= 0 && !bpf_map_lookup_elem(fd, &key, &back) && back.enabled &&
		  back.flow_id == FLOW_A);
	CU_ASSERT_EQUAL(steer__clear_rules(s, 0), 0);
	CU_ASSERT(fd >= 0 && !bpf_map_lookup_elem(fd, &key, &back) && !back.enabled);
	if (fd >= 0)
		close(fd);
	fd = pin_open(FERRY_PIN_FLOW_INFO);
	key = FLOW_A;
	CU_ASSERT(fd >= 0 && !bpf_map_lookup_elem(fd, &key, &info) && info.configured &&
		  !strcmp(info.name, "telemetry"));
	if (fd >= 0)
		close(fd);

	steer__destroy(s);
	CU_ASSERT_EQUAL(ferry_progs(va, NULL), 0);
	CU_ASSERT_EQUAL(ferry_progs(vb, NULL), 0);
	CU_ASSERT_EQUAL(ferry_progs(lo, NULL), 0);
	CU_ASSERT_EQUAL(attach_mode(vb), XDP_MODE_UNSPEC);
	CU_ASSERT_NOT_EQUAL(stat(pin_path, &st), 0);
}

static void test_steer_attach_detach(void)
{
	struct netns ns;

	if (unit_require_root())
		return;
	pin_paths();
	CU_ASSERT_EQUAL_FATAL(netns_enter(&ns), 0);
	CU_ASSERT_EQUAL(make_links(), 0);
	steer_lifecycle();
	netns_leave(&ns);
	pin_cleanup();
}

/* An AF_XDP socket on queue 0, copy mode, receive only. */
struct xsk {
	void *area;
	size_t size;
	struct xsk_umem *umem;
	struct xsk_socket *sock;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp, rx;
};

#define XSK_FRAMES 64

static int xsk_open(struct xsk *x, const char *ifname)
{
	struct xsk_socket_config cfg = {
		.rx_size = XSK_RING_CONS__DEFAULT_NUM_DESCS,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	uint32_t idx;
	int err;

	memset(x, 0, sizeof(*x));
	x->size = XSK_FRAMES * XSK_UMEM__DEFAULT_FRAME_SIZE;
	x->area = mmap(NULL, x->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x->area == MAP_FAILED)
		return -errno;
	err = xsk_umem__create(&x->umem, x->area, x->size, &x->fill, &x->comp, NULL);
	if (err)
		return err;
	/* The queue is released asynchronously after a previous socket closed. */
	for (int tries = 0; tries < 50; tries++) {
		err = xsk_socket__create(&x->sock, ifname, 0, x->umem, &x->rx, NULL, &cfg);
		if (err != -EBUSY)
			break;
		usleep(20000);
	}
	if (err)
		return err;
	if (xsk_ring_prod__reserve(&x->fill, XSK_FRAMES, &idx) != XSK_FRAMES)
		return -ENOSPC;
	for (uint32_t i = 0; i < XSK_FRAMES; i++)
		*xsk_ring_prod__fill_addr(&x->fill, idx + i) = i * XSK_UMEM__DEFAULT_FRAME_SIZE;
	xsk_ring_prod__submit(&x->fill, XSK_FRAMES);
	return 0;
}

static void xsk_close(struct xsk *x)
{
	if (x->sock)
		xsk_socket__delete(x->sock);
	if (x->umem)
		xsk_umem__delete(x->umem);
	if (x->area && x->area != MAP_FAILED)
		munmap(x->area, x->size);
	memset(x, 0, sizeof(*x));
}

/* Length of the next received frame, or -ETIMEDOUT. */
static int xsk_recv(struct xsk *x, int timeout_ms)
{
	struct pollfd pfd = { .fd = xsk_socket__fd(x->sock), .events = POLLIN };
	const struct xdp_desc *d;
	uint32_t idx, fidx;
	int len;

	if (poll(&pfd, 1, timeout_ms) <= 0 || !xsk_ring_cons__peek(&x->rx, 1, &idx))
		return -ETIMEDOUT;
	d = xsk_ring_cons__rx_desc(&x->rx, idx);
	len = d->len;
	if (xsk_ring_prod__reserve(&x->fill, 1, &fidx) == 1) {
		*xsk_ring_prod__fill_addr(&x->fill, fidx) = xsk_umem__extract_addr(d->addr);
		xsk_ring_prod__submit(&x->fill, 1);
	}
	xsk_ring_cons__release(&x->rx, 1);
	return len;
}

static int send_frame(const char *ifname, const void *frame, size_t len)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = if_nametoindex(ifname),
		.sll_halen = 6,
	};
	ssize_t n;
	int fd;

	memcpy(sll.sll_addr, mac_b, 6);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll));
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static struct ferry_flow_stats pinned_flow(uint32_t flow_id)
{
	struct ferry_flow_stats fs = {};
	int fd = pin_open(FERRY_PIN_FLOW_STATS);

	CU_ASSERT(fd >= 0);
	if (fd >= 0) {
		percpu_sum(fd, flow_id, &fs, sizeof(fs), libbpf_num_possible_cpus());
		close(fd);
	}
	return fs;
}

/* Live packets from va into ferry_steer on vb, then into an AF_XDP socket. */
static void steer_traffic(enum cfg_xdp_mode mode)
{
	struct steer_opts opts = { .pin_path = pin_path };
	struct ferry_rule r = rule(FLOW_A, 4, IPPROTO_UDP, "198.18.0.10", 32);
	struct ferry_flow_stats fs;
	struct steer *s = NULL;
	uint8_t frame[PKT_MAX];
	struct xsk x = {};
	uint32_t key = 0;
	struct pkt p;
	size_t len;
	int fd, err;

	CU_ASSERT_EQUAL(steer__create(&s, &opts), 0);
	if (!s)
		return;
	CU_ASSERT_EQUAL(steer__attach(s, "vb", mode), 0);
	r.dport_lo = r.dport_hi = 5000;
	CU_ASSERT_EQUAL(steer__set_rule(s, 0, &r), 0);
	CU_ASSERT_EQUAL(steer__clear_rules(s, 1), 0);
	err = xsk_open(&x, "vb");
	if (err)
		fprintf(stderr, "iface vb: AF_XDP socket: %s\n", strerror(-err));
	CU_ASSERT_EQUAL(err, 0);
	if (err)
		goto out;
	fd = xsk_socket__fd(x.sock);
	CU_ASSERT_EQUAL(bpf_map_update_elem(steer__xsks_fd(s, "vb"), &key, &fd, 0), 0);

	len = build(frame, &udp4);
	CU_ASSERT_EQUAL(send_frame("va", frame, len), 0);
	CU_ASSERT_EQUAL(xsk_recv(&x, 2000), (int)len);

	/* Not a flow of ferry: to the kernel, not to the socket. */
	p = udp4;
	p.dport = 5001;
	CU_ASSERT_EQUAL(send_frame("va", frame, build(frame, &p)), 0);
	CU_ASSERT_EQUAL(xsk_recv(&x, 300), -ETIMEDOUT);

	/* The flow again, with no socket on the queue. */
	CU_ASSERT_EQUAL(bpf_map_delete_elem(steer__xsks_fd(s, "vb"), &key), 0);
	CU_ASSERT_EQUAL(send_frame("va", frame, build(frame, &udp4)), 0);
	CU_ASSERT_EQUAL(xsk_recv(&x, 300), -ETIMEDOUT);

	fs = pinned_flow(FLOW_A);
	CU_ASSERT_EQUAL(fs.packets, 2);
	CU_ASSERT_EQUAL(fs.redirected, 1);
	CU_ASSERT_EQUAL(fs.passed_no_socket, 1);
	CU_ASSERT_EQUAL(fs.bytes, 2 * len);
out:
	xsk_close(&x);
	steer__destroy(s);
	CU_ASSERT_EQUAL(ferry_progs(if_nametoindex("vb"), NULL), 0);
}

static void test_steer_traffic(void)
{
	struct netns ns;

	if (unit_require_root())
		return;
	pin_paths();
	CU_ASSERT_EQUAL_FATAL(netns_enter(&ns), 0);
	CU_ASSERT_EQUAL(make_links(), 0);
	steer_traffic(CFG_XDP_NATIVE_ONLY);
	steer_traffic(CFG_XDP_SKB);
	netns_leave(&ns);
	pin_cleanup();
}

/* A run that dies without steer__destroy(), and the one after it. */
static void steer_crash_and_restart(void)
{
	struct steer_opts opts = { .pin_path = pin_path };
	int vb = if_nametoindex("vb");
	struct steer *s = NULL, *other = NULL;
	uint32_t stale_id = 0, id = 0;
	pid_t pid;
	int st;

	pid = fork();
	if (pid == 0) {
		/* Mid-test: not a place to return to. */
		if (steer__create(&s, &opts) || steer__attach(s, "vb", CFG_XDP_NATIVE))
			_exit(1);
		_exit(0);
	}
	CU_ASSERT(pid > 0);
	if (pid < 0)
		return;
	CU_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL(ferry_progs(vb, &stale_id), 1);
	CU_ASSERT(pin_mode("ferry_xdp_stats_vb", 0600));

	/* Stale pins and the stale program go, with a warning each. */
	CU_ASSERT_EQUAL(steer__create(&s, &opts), 0);
	if (!s)
		return;
	CU_ASSERT_FALSE(pin_mode("ferry_xdp_stats_vb", 0600));
	CU_ASSERT_EQUAL(steer__attach(s, "vb", CFG_XDP_NATIVE), 0);
	CU_ASSERT_EQUAL(ferry_progs(vb, &id), 1);
	CU_ASSERT_NOT_EQUAL(id, stale_id);

	/* A live owner is not a crashed one: its pins stay. */
	CU_ASSERT_EQUAL(steer__create(&other, &opts), -EBUSY);
	CU_ASSERT_PTR_NULL(other);
	CU_ASSERT(pin_mode(FERRY_PIN_RULES, 0600));
	CU_ASSERT(pin_mode("ferry_xdp_stats_vb", 0600));

	steer__destroy(s);
	CU_ASSERT_EQUAL(ferry_progs(vb, NULL), 0);
}

static void test_steer_stale(void)
{
	struct netns ns;

	if (unit_require_root())
		return;
	pin_paths();
	CU_ASSERT_EQUAL_FATAL(netns_enter(&ns), 0);
	CU_ASSERT_EQUAL(make_links(), 0);
	steer_crash_and_restart();
	netns_leave(&ns);
	pin_cleanup();
}

static int suite_init(void)
{
	/* libbpf's and libxdp's chatter (e.g. the dispatcher probe) through the log. */
	log__hook_libraries();
	return 0;
}

static CU_TestInfo steer_bpf_tests[] = {
	{ "v4 udp match, no socket", test_v4_udp_match },
	{ "on_failure drop, no socket", test_drop_no_socket },
	{ "no match: port, address, protocol", test_no_match },
	{ "prefix and port range edges", test_prefix_and_port_edges },
	{ "first match wins, table ends", test_rule_order_and_end },
	{ "full rule table", test_full_table },
	{ "reply rule", test_reply_rule },
	{ "ifindex", test_ifindex },
	{ "ipv6", test_ipv6 },
	{ "truncated at every length", test_truncated },
	{ "malformed headers", test_malformed_headers },
	{ "garbage", test_garbage },
	{ "not ip", test_not_ip },
	{ "ipv4 fragments", test_fragment },
	{ "reply rule on the wrong interface", test_reply_rule_wrong_iface },
	{ "on_failure drop: fragments and extension headers", test_policy_fragments },
	{ "on_failure drop: transport header not found", test_policy_unknown_l4 },
	{ "ipv4 source route options", test_source_route },
	{ "icmp error about a session", test_icmp_error_session },
	{ "icmp error from the wrong interface", test_icmp_error_wrong_iface },
	{ "icmp not steered: echo, other tuples", test_icmp_not_steered },
	{ "icmp error truncated", test_icmp_truncated },
	{ "steer attach/detach on veth", test_steer_attach_detach },
	{ "steer live traffic to AF_XDP", test_steer_traffic },
	{ "steer after a crash", test_steer_stale },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(steer_bpf, "steer_bpf", steer_bpf_tests, suite_init, NULL)
