// SPDX-License-Identifier: BSD-2-Clause
/*
 * One rewrite, two implementations: the XDP fast path (bpf/ferry_fastpath.h
 * inside ferry_steer, run with BPF_PROG_TEST_RUN) and the workers' rewrite
 * (lib/nat.c with the precomputed deltas of a session from
 * nat_table__insert()) must write the same bytes for the same packet.
 *
 * Seeded, generated sessions (IPv4 and IPv6, UDP and TCP, addresses from
 * 198.18.0.0/15 and fd00::/8, random MACs and MTUs) are installed in
 * ferry_sessions both ways with offload__entry(), the function ferryd's
 * workers install with.  Generated packets of those sessions (payloads of 0
 * to 1400 bytes, UDP with and without a checksum, TCP with ACK/PSH and
 * options, TTLs 2 to 255, Ethernet trailers) run through the program and
 * through pkt_parse() + pkt_frame_len() + nat_rewrite_*() on a copy: verdict
 * XDP_REDIRECT and the same bytes.  Packets the fast path must leave to the
 * workers (TCP SYN/FIN/RST, IPv4 options, fragments, TTL 1, above the
 * entry's MTU, a UDP length that disagrees, a key miss, an egress missing
 * from ferry_tx_ports) must come back XDP_PASS and untouched.  The
 * per-session and per-flow counters must add up to what was sent.
 *
 * test_run does not transmit a redirect (no BPF_F_TEST_XDP_LIVE_FRAMES): the
 * verdict and data_out are what is compared.  The egress in ferry_tx_ports
 * is the loopback (ifindex 1), which is also the packets' ingress.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "csum.h"
#include "ferry_shared.h"
#include "ferry_steer.skel.h"
#include "nat.h"
#include "offload.h"
#include "packet.h"
#include "unit.h"

#define OB_SEED 0x0ff10adull
#define OB_SESSIONS 24
#define OB_CASES 800
#define OB_MAP_ENTRIES 64
#define OB_LO 1              /* ingress and egress: the loopback */
#define OB_NO_DEV 0x7ffffff0 /* an ifindex no device has, never in ferry_tx_ports */
#define OB_FRAME_MAX 2048
#define OB_DUMPS 4 /* mismatches printed in full */

/* ---- seeded randomness ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic for a seed, on every machine. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static void rnd_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static void rnd_addr(union ferry_addr *a, int family)
{
	memset(a, 0, sizeof(*a));
	if (family == 4) {
		a->b[0] = 198;
		a->b[1] = 18 | (uint8_t)(rnd() & 1);
		rnd_bytes(a->b + 2, 2);
	} else {
		a->b[0] = 0xfd;
		rnd_bytes(a->b + 1, 15);
	}
}

static void rnd_mac(uint8_t mac[6])
{
	rnd_bytes(mac, 6);
	mac[0] = (mac[0] & 0xfe) | 0x02; /* unicast, locally administered */
}

/* ---- sessions ---- */

struct ob_sess {
	struct nat_session *s;
	bool no_egress; /* the upstream side's interface is not in ferry_tx_ports */
	struct ferry_sess_key key[2];
	struct ferry_sess val[2];
	/* What the fast path forwarded, by enum ferry_dir. */
	uint64_t packets[2], bytes[2];
	bool tcp_seen[2];
	uint32_t tcp_seq_end[2], tcp_ack[2], tcp_win[2];
};

struct ob_flow {
	uint64_t packets, bytes, offloaded, offloaded_bytes, reply, reply_bytes, redirect_failed;
};

#define OB_FLOWS 3

struct ob {
	struct ferry_steer_bpf *skel;
	int ncpus;
	int prog_fd, sess_fd, stats_fd, tx_fd;
	struct nat_table *nat;
	struct ob_sess sess[OB_SESSIONS];
	struct ob_flow flow[OB_FLOWS + 1]; /* by flow id, 1 to OB_FLOWS */
	uint64_t offloaded, packets;
	int dumps;
};

static bool ob_load(struct ob *o)
{
	struct bpf_devmap_val dev = { .ifindex = OB_LO };
	__u32 ifindex = OB_LO;

	memset(o, 0, sizeof(*o));
	o->ncpus = libbpf_num_possible_cpus();
	o->skel = ferry_steer_bpf__open();
	if (!o->skel || o->ncpus <= 0)
		return false;
	/* ferryd sizes them from nat.offload_max_sessions; a test needs few. */
	if (bpf_map__set_max_entries(o->skel->maps.ferry_sessions, OB_MAP_ENTRIES) ||
	    bpf_map__set_max_entries(o->skel->maps.ferry_sess_stats, OB_MAP_ENTRIES) ||
	    ferry_steer_bpf__load(o->skel))
		return false;
	o->prog_fd = bpf_program__fd(o->skel->progs.ferry_steer);
	o->sess_fd = bpf_map__fd(o->skel->maps.ferry_sessions);
	o->stats_fd = bpf_map__fd(o->skel->maps.ferry_sess_stats);
	o->tx_fd = bpf_map__fd(o->skel->maps.ferry_tx_ports);
	if (bpf_map_update_elem(o->tx_fd, &ifindex, &dev, BPF_ANY))
		return false;
	o->nat = nat_table__create(OB_SESSIONS * 2, 40000, 40999);
	return o->nat != NULL;
}

static void ob_close(struct ob *o)
{
	if (o->nat)
		nat_table__destroy(o->nat);
	ferry_steer_bpf__destroy(o->skel);
	memset(o, 0, sizeof(*o));
}

static void rnd_l2(struct nat_l2 *l2)
{
	rnd_mac(l2->dst_mac);
	rnd_mac(l2->src_mac);
	/* Now and then unchecked (0), else an MTU small enough for the packets to cross it. */
	l2->mtu = rnd_below(8) ? (uint16_t)(576 + rnd_below(1500 - 576 + 1)) : 0;
}

/* A session as a worker creates it, installed both ways as a worker installs it. */
static bool ob_session(struct ob *o, uint32_t i)
{
	struct ob_sess *os = &o->sess[i];
	int family = i & 1 ? 6 : 4;
	union ferry_addr egress, upstream;
	struct nat_tuple client;
	int err;

	memset(&client, 0, sizeof(client));
	rnd_addr(&client.saddr, family);
	rnd_addr(&client.daddr, family);
	client.sport = (uint16_t)(1024 + rnd_below(64000));
	client.dport = (uint16_t)(1 + rnd_below(65535));
	client.family = (uint8_t)family;
	client.proto = i & 2 ? IPPROTO_TCP : IPPROTO_UDP;
	rnd_addr(&egress, family);
	rnd_addr(&upstream, family);
	err = nat_table__insert(o->nat, &client, &egress, &upstream,
				(uint16_t)(1 + rnd_below(65535)), 1 + i % OB_FLOWS, 1, &os->s);
	CU_ASSERT_EQUAL(err, 0);
	if (err)
		return false;
	/* The deltas the workers use: what this test holds the fast path to. */
	CU_ASSERT(os->s->rw_upstream.ready && os->s->rw_client.ready);
	rnd_l2(&os->s->to_upstream);
	rnd_l2(&os->s->to_client);
	os->no_egress = i % 8 == 5;
	for (int dir = 0; dir < 2; dir++) {
		offload__entry(os->s, (enum ferry_dir)dir, OB_LO, os->no_egress ? OB_NO_DEV : OB_LO,
			       i, 0, &os->key[dir], &os->val[dir]);
		if (bpf_map_update_elem(o->sess_fd, &os->key[dir], &os->val[dir], BPF_NOEXIST)) {
			CU_FAIL("ferry_sessions update");
			return false;
		}
	}
	return true;
}

/* ---- packets ---- */

enum ob_kind {
	K_NORMAL,
	K_SYN,
	K_FIN,
	K_RST,
	K_IP_OPTIONS,
	K_FRAGMENT,
	K_TTL1,
	K_OVER_MTU,
	K_UDP_LEN,
	K_MISS,
	K_NO_EGRESS,
	K__MAX
};

static const char *const kind_name[K__MAX] = {
	"normal", "TCP SYN", "TCP FIN", "TCP RST", "IPv4 options", "fragment",
	"TTL 1", "above MTU", "UDP length", "key miss", "no egress",
};

struct ob_pkt {
	uint8_t data[OB_FRAME_MAX];
	uint32_t len;
	uint32_t ip_len;
	/* TCP: what the fast path notes of it. */
	uint32_t seq_end, ack, win;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * A packet of direction `dir` of `os`, of kind `kind`: valid checksums
 * unless the kind says otherwise, everything the rewrite must carry over
 * (TOS, ID, flow label, sequence numbers, options, payload) random.
 */
static void gen_packet(const struct ob_sess *os, int dir, enum ob_kind kind, struct ob_pkt *p)
{
	const struct nat_session *s = os->s;
	const struct nat_tuple *t = &s->client;
	const struct nat_l2 *l2 = dir == FERRY_DIR_CLIENT ? &s->to_upstream : &s->to_client;
	union ferry_addr saddr, daddr;
	uint16_t sport, dport;
	int family = t->family, proto = t->proto;
	uint32_t ip_hlen = family == 4 ? 20 : 40, opt_len = 0, l4_hlen, payload, trailer = 0;
	uint8_t *ip = p->data + 14, *l4;
	uint8_t ttl = (uint8_t)(2 + rnd_below(254));
	struct pkt_info pi;

	if (dir == FERRY_DIR_CLIENT) {
		saddr = t->saddr;
		daddr = t->daddr;
		sport = t->sport;
		dport = t->dport;
	} else {
		saddr = s->upstream.daddr;
		daddr = s->upstream.saddr;
		sport = s->upstream.dport;
		dport = s->upstream.sport;
	}
	if (kind == K_MISS) {
		/* Another port of the same addresses: no entry. */
		if (rnd() & 1)
			sport ^= (uint16_t)(1 + rnd_below(0xffff));
		else
			dport ^= (uint16_t)(1 + rnd_below(0xffff));
	}
	if (kind == K_IP_OPTIONS)
		opt_len = 4 * (1 + rnd_below(10));
	if (kind == K_FRAGMENT && family == 6)
		opt_len = 8; /* a fragment header */
	l4_hlen = proto == IPPROTO_UDP ? 8 : 20 + 4 * rnd_below(11);
	payload = rnd_below(1401);
	/* Within the entry's MTU, sometimes exactly at it. */
	if (l2->mtu && kind != K_OVER_MTU) {
		uint32_t room = l2->mtu - ip_hlen - opt_len - l4_hlen;

		if (payload > room || !rnd_below(16))
			payload = room;
	}
	if (kind == K_OVER_MTU)
		payload = l2->mtu + 1 + rnd_below(20) - ip_hlen - l4_hlen;
	if (kind == K_TTL1)
		ttl = (uint8_t)rnd_below(2);
	p->ip_len = ip_hlen + opt_len + l4_hlen + payload;
	/* Ethernet trailers: padding to the minimum, or junk after the IP packet. */
	if (!rnd_below(4))
		trailer = 1 + rnd_below(40);
	else if (14 + p->ip_len < PKT_ETH_MIN_LEN && (rnd() & 1))
		trailer = PKT_ETH_MIN_LEN - 14 - p->ip_len;
	p->len = 14 + p->ip_len + trailer;

	rnd_bytes(p->data, p->len); /* payload and trailer; headers are written over */
	rnd_mac(p->data);
	rnd_mac(p->data + 6);
	put16(p->data + 12, family == 4 ? 0x0800 : 0x86dd);
	if (family == 4) {
		ip[0] = (uint8_t)(0x40 | (5 + opt_len / 4));
		put16(ip + 2, (uint16_t)p->ip_len);
		put16(ip + 6, (rnd() & 1) ? 0x4000 : 0); /* DF or not */
		if (kind == K_FRAGMENT)
			put16(ip + 6, (rnd() & 1) ? 0x2000 : (uint16_t)(1 + rnd_below(0x1fff)));
		ip[8] = ttl;
		ip[9] = (uint8_t)proto;
		memcpy(ip + 12, saddr.b, 4);
		memcpy(ip + 16, daddr.b, 4);
		memset(ip + 20, 1, opt_len); /* NOPs */
	} else {
		ip[0] = 0x60 | (ip[0] & 0x0f);
		put16(ip + 4, (uint16_t)(p->ip_len - 40));
		ip[6] = (uint8_t)proto;
		ip[7] = ttl;
		memcpy(ip + 8, saddr.b, 16);
		memcpy(ip + 24, daddr.b, 16);
		if (kind == K_FRAGMENT) {
			ip[6] = IPPROTO_FRAGMENT;
			ip[40] = (uint8_t)proto;
			ip[41] = 0;
			/* The first fragment (offset 0, more) or a later one. */
			put16(ip + 42, (rnd() & 1) ? 1 : (uint16_t)((1 + rnd_below(0x1fff)) << 3));
		}
	}
	l4 = ip + ip_hlen + opt_len;
	put16(l4, sport);
	put16(l4 + 2, dport);
	if (proto == IPPROTO_UDP) {
		uint16_t ulen = (uint16_t)(l4_hlen + payload);

		/* Longer than the IP packet says, or shorter (down to 0). */
		if (kind == K_UDP_LEN)
			ulen = (rnd() & 1) ? (uint16_t)(ulen + 1 + rnd_below(8)) :
					     (uint16_t)rnd_below(ulen);
		put16(l4 + 4, ulen);
	} else {
		static const uint8_t flags[] = { 0x10, 0x18, 0x10, 0x30, 0x18 | 0x80 };

		l4[12] = (uint8_t)(l4_hlen / 4) << 4;
		l4[13] = flags[rnd_below(sizeof(flags))];
		if (kind == K_SYN)
			l4[13] |= 0x02;
		else if (kind == K_FIN)
			l4[13] |= 0x01;
		else if (kind == K_RST)
			l4[13] |= 0x04;
		memset(l4 + 20, 1, l4_hlen - 20); /* NOP options */
		p->seq_end = get32(l4 + 4) + payload;
		p->ack = get32(l4 + 8);
		p->win = (uint32_t)l4[14] << 8 | l4[15];
	}

	/* Checksums, from scratch where the packet parses. */
	if (family == 4) {
		uint16_t c;

		ip[10] = ip[11] = 0;
		c = csum_ipv4_header(ip, 20 + opt_len);
		memcpy(ip + 10, &c, 2);
	}
	if (pkt_parse(p->data, p->len, &pi) == PKT_OK) {
		uint8_t *field = l4 + (proto == IPPROTO_UDP ? 6 : 16);
		uint16_t c = csum_l4_compute(p->data, &pi);
		uint32_t pick = rnd_below(8);

		memcpy(field, &c, 2);
		/* UDP/IPv4 without a checksum: it must stay without. */
		if (proto == IPPROTO_UDP && family == 4 && pick == 0)
			memset(field, 0, 2);
		/*
		 * A UDP checksum that the rewrite's delta turns into 0 (not a
		 * valid one): both must send it as 0xffff.
		 */
		if (proto == IPPROTO_UDP && pick == 1) {
			uint16_t d = dir == FERRY_DIR_CLIENT ? s->rw_upstream.l4_delta :
							       s->rw_client.l4_delta;

			memcpy(field, &d, 2);
		}
	}
}

/* ---- the two paths ---- */

struct ob_out {
	int verdict;
	uint8_t data[OB_FRAME_MAX];
	uint32_t len;
};

static int ob_xdp(struct ob *o, const struct ob_pkt *p, struct ob_out *out)
{
	struct xdp_md ctx = { .data_end = p->len, .ingress_ifindex = OB_LO };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->data, .data_size_in = p->len,
		    .data_out = out->data, .data_size_out = sizeof(out->data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(o->prog_fd, &opts);
	out->verdict = err ? err : (int)opts.retval;
	out->len = opts.data_size_out;
	return err;
}

/* What a worker sends: parse, trim (daemon/rx.c), rewrite.  The rewrite's error, or 0. */
static int ob_user(const struct ob_sess *os, int dir, const struct ob_pkt *p, struct ob_out *out)
{
	struct pkt_info pi;
	int err;

	memcpy(out->data, p->data, p->len);
	out->len = p->len;
	if (pkt_parse(out->data, out->len, &pi) != PKT_OK)
		return -EINVAL;
	out->len = pkt_frame_len(&pi, p->len);
	if (dir == FERRY_DIR_CLIENT)
		err = nat_rewrite_to_upstream(out->data, &pi, os->s);
	else
		err = nat_rewrite_to_client(out->data, &pi, os->s);
	return err;
}

static void hexdump(const char *what, const uint8_t *d, uint32_t len)
{
	fprintf(stderr, "  %s (%u bytes):", what, len);
	for (uint32_t i = 0; i < len; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n    ", d[i]);
	fputc('\n', stderr);
}

static void ob_mismatch(struct ob *o, uint32_t n, enum ob_kind kind, int dir, const char *why,
			const struct ob_pkt *p, const struct ob_out *x, const struct ob_out *u)
{
	if (o->dumps++ >= OB_DUMPS)
		return;
	fprintf(stderr, "\noffload_bpf: seed %#llx case %u (%s, %s): %s; XDP verdict %d\n",
		(unsigned long long)OB_SEED, n, kind_name[kind], dir ? "reply" : "client", why,
		x->verdict);
	hexdump("input", p->data, p->len);
	hexdump("XDP", x->data, x->len);
	if (u)
		hexdump("lib/nat.c", u->data, u->len);
}

/* One generated case; false when the two paths disagree. */
static bool ob_case(struct ob *o, uint32_t n, uint32_t *seen)
{
	static struct ob_pkt p;
	static struct ob_out x, u;
	uint32_t i = rnd_below(OB_SESSIONS);
	struct ob_sess *os = &o->sess[i];
	int dir = (int)(rnd() & 1);
	int proto = os->s->client.proto, family = os->s->client.family;
	const struct nat_l2 *l2;
	enum ob_kind kind = K_NORMAL;
	struct ob_flow *fl;
	int uerr;

	/* The reply side of a session without an egress arrives on a device that is not lo. */
	if (os->no_egress)
		dir = FERRY_DIR_CLIENT;
	l2 = dir == FERRY_DIR_CLIENT ? &os->s->to_upstream : &os->s->to_client;
	if (os->no_egress) {
		kind = K_NO_EGRESS;
	} else if (rnd() & 1) {
		do
			kind = (enum ob_kind)(1 + rnd_below(K_NO_EGRESS - 1));
		while ((proto != IPPROTO_TCP && (kind == K_SYN || kind == K_FIN || kind == K_RST)) ||
		       (proto != IPPROTO_UDP && kind == K_UDP_LEN) ||
		       (family != 4 && kind == K_IP_OPTIONS) ||
		       (!l2->mtu && kind == K_OVER_MTU));
	}
	seen[kind]++;
	gen_packet(os, dir, kind, &p);
	o->packets++;
	if (ob_xdp(o, &p, &x)) {
		CU_FAIL("BPF_PROG_TEST_RUN");
		return false;
	}
	uerr = ob_user(os, dir, &p, &u);
	fl = &o->flow[os->s->flow_id];

	if (kind != K_NORMAL) {
		/* Left to the workers: as it came, for the rule scan (no rules here: XDP_PASS). */
		if (x.verdict != XDP_PASS || x.len != p.len || memcmp(x.data, p.data, p.len)) {
			ob_mismatch(o, n, kind, dir, "the fast path took a packet it must leave", &p,
				    &x, NULL);
			return false;
		}
		/* The workers' own verdict on the same packets. */
		if ((kind == K_TTL1 && uerr != -ETIMEDOUT) ||
		    (kind == K_OVER_MTU && uerr != -EMSGSIZE) ||
		    ((kind == K_UDP_LEN || kind == K_FRAGMENT) && uerr != -EINVAL)) {
			ob_mismatch(o, n, kind, dir, "lib/nat.c disagrees on what this is", &p, &x,
				    &u);
			return false;
		}
		if (kind == K_NO_EGRESS)
			fl->redirect_failed++;
		return true;
	}
	if (uerr) {
		ob_mismatch(o, n, kind, dir, "lib/nat.c refused a packet the test meant as normal",
			    &p, &x, &u);
		return false;
	}
	if (x.verdict != XDP_REDIRECT || x.len != u.len || memcmp(x.data, u.data, u.len)) {
		ob_mismatch(o, n, kind, dir, "the two rewrites differ", &p, &x, &u);
		return false;
	}
	os->packets[dir]++;
	os->bytes[dir] += x.len;
	if (proto == IPPROTO_TCP) {
		/* Forward only, in serial-number order: a retransmission sets nothing back. */
		if (!os->tcp_seen[dir] || (int32_t)(p.seq_end - os->tcp_seq_end[dir]) > 0)
			os->tcp_seq_end[dir] = p.seq_end;
		if (!os->tcp_seen[dir] || (int32_t)(p.ack - os->tcp_ack[dir]) >= 0) {
			os->tcp_ack[dir] = p.ack;
			os->tcp_win[dir] = p.win;
		}
		os->tcp_seen[dir] = true;
	}
	o->offloaded++;
	fl->packets++;
	fl->bytes += x.len;
	fl->offloaded++;
	fl->offloaded_bytes += x.len;
	if (dir == FERRY_DIR_REPLY) {
		fl->reply++;
		fl->reply_bytes += x.len;
	}
	return true;
}

/* ---- counters ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check_session_stats(struct ob *o, uint64_t t0, uint64_t t1)
{
	struct ferry_sess_stats *st = calloc((size_t)o->ncpus, sizeof(*st));

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (uint32_t i = 0; i < OB_SESSIONS; i++) {
		struct ob_sess *os = &o->sess[i];

		for (int dir = 0; dir < 2; dir++) {
			__u32 key = os->val[dir].stats_slot;
			uint64_t packets = 0, bytes = 0, last = 0;
			struct ferry_sess_stats m;
			int latest = -1;

			CU_ASSERT_EQUAL_FATAL(bpf_map_lookup_elem(o->stats_fd, &key, st), 0);
			for (int c = 0; c < o->ncpus; c++) {
				packets += st[c].packets;
				bytes += st[c].bytes;
				if (st[c].last_seen_ns > last) {
					last = st[c].last_seen_ns;
					latest = c;
				}
			}
			CU_ASSERT_EQUAL(packets, os->packets[dir]);
			CU_ASSERT_EQUAL(bytes, os->bytes[dir]);
			if (!os->packets[dir]) {
				CU_ASSERT_EQUAL(last, 0);
				continue;
			}
			/* bpf_ktime_get_ns() is the workers' CLOCK_MONOTONIC. */
			CU_ASSERT(last >= t0 && last <= t1);
			/* What the workers read: the same sums, and the furthest the segments went. */
			offload__merge_stats(st, o->ncpus, &m);
			CU_ASSERT_EQUAL(m.packets, os->packets[dir]);
			CU_ASSERT_EQUAL(m.bytes, os->bytes[dir]);
			CU_ASSERT_EQUAL(m.last_seen_ns, last);
			if (!os->tcp_seen[dir] || latest < 0)
				continue;
			CU_ASSERT_EQUAL(m.tcp_valid, 1);
			CU_ASSERT_EQUAL(m.tcp_seq_end, os->tcp_seq_end[dir]);
			CU_ASSERT_EQUAL(m.tcp_ack, os->tcp_ack[dir]);
			CU_ASSERT_EQUAL(m.tcp_win, os->tcp_win[dir]);
		}
	}
	free(st);
}

static void percpu_sum(int fd, uint32_t key, void *out, size_t size, int ncpus)
{
	uint64_t *vals = calloc((size_t)ncpus, size), *sum = out;

	memset(out, 0, size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vals);
	CU_ASSERT_EQUAL(bpf_map_lookup_elem(fd, &key, vals), 0);
	for (int cpu = 0; cpu < ncpus; cpu++)
		for (size_t i = 0; i < size / 8; i++)
			sum[i] += vals[(size_t)cpu * size / 8 + i];
	free(vals);
}

static void check_flow_stats(struct ob *o)
{
	struct ferry_xdp_stats xs;

	for (uint32_t id = 1; id <= OB_FLOWS; id++) {
		const struct ob_flow *want = &o->flow[id];
		struct ferry_flow_stats fs;

		percpu_sum(bpf_map__fd(o->skel->maps.ferry_flow_stats), id, &fs, sizeof(fs),
			   o->ncpus);
		CU_ASSERT(want->offloaded > 0 && want->reply > 0);
		CU_ASSERT_EQUAL(fs.packets, want->packets);
		CU_ASSERT_EQUAL(fs.bytes, want->bytes);
		CU_ASSERT_EQUAL(fs.offloaded, want->offloaded);
		CU_ASSERT_EQUAL(fs.offloaded_bytes, want->offloaded_bytes);
		CU_ASSERT_EQUAL(fs.reply_packets, want->reply);
		CU_ASSERT_EQUAL(fs.offloaded_reply, want->reply);
		CU_ASSERT_EQUAL(fs.offloaded_reply_bytes, want->reply_bytes);
		CU_ASSERT_EQUAL(fs.offload_redirect_failed, want->redirect_failed);
		/* Nothing went the AF_XDP way: there is no rule. */
		CU_ASSERT_EQUAL(fs.redirected, 0);
	}
	percpu_sum(bpf_map__fd(o->skel->maps.ferry_xdp_stats), 0, &xs, sizeof(xs), o->ncpus);
	CU_ASSERT_EQUAL(xs.packets, o->packets);
	CU_ASSERT_EQUAL(xs.offloaded, o->offloaded);
	CU_ASSERT_EQUAL(xs.steered, o->offloaded);
}

/* ---- tests ---- */

static void test_same_bytes(void)
{
	uint32_t seen[K__MAX] = { 0 }, failed = 0;
	cpu_set_t was, one;
	uint64_t t0, t1;
	struct ob o;

	if (unit_require_root())
		return;
	/*
	 * One CPU for every packet: the model follows one sequence of them,
	 * while the fast path keeps each CPU's record apart (random sequence
	 * numbers have no single furthest one across CPUs).
	 */
	CU_ASSERT_FATAL(sched_getaffinity(0, sizeof(was), &was) == 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	CU_ASSERT_FATAL(sched_setaffinity(0, sizeof(one), &one) == 0);
	rng_state = OB_SEED;
	CU_ASSERT_FATAL(ob_load(&o));
	for (uint32_t i = 0; i < OB_SESSIONS; i++)
		if (!ob_session(&o, i))
			goto out_close;
	t0 = mono_ns();
	for (uint32_t n = 0; n < OB_CASES; n++)
		if (!ob_case(&o, n, seen))
			failed++;
	t1 = mono_ns();
	CU_ASSERT_EQUAL(failed, 0);
	if (failed)
		fprintf(stderr, "offload_bpf: %u of %u cases differ\n", failed, OB_CASES);
	/* The generator reached every kind, enough times to mean something. */
	for (int k = 0; k < K__MAX; k++)
		CU_ASSERT(seen[k] >= (k == K_NORMAL ? OB_CASES / 4 : 10));
	check_session_stats(&o, t0, t1);
	check_flow_stats(&o);
out_close:
	ob_close(&o);
	sched_setaffinity(0, sizeof(was), &was);
}

/*
 * A session taken out of the map (what a worker's uninstall does) is a miss
 * at once: its next packet goes to the rule scan untouched.
 */
static void test_removed_entry(void)
{
	static struct ob_pkt p;
	static struct ob_out x;
	struct ob o;

	if (unit_require_root())
		return;
	rng_state = OB_SEED ^ 1;
	CU_ASSERT_FATAL(ob_load(&o));
	/* Session 0 is UDP/IPv4 with an egress. */
	if (!ob_session(&o, 0))
		goto out_close;
	gen_packet(&o.sess[0], FERRY_DIR_CLIENT, K_NORMAL, &p);
	CU_ASSERT_EQUAL(ob_xdp(&o, &p, &x), 0);
	CU_ASSERT_EQUAL(x.verdict, XDP_REDIRECT);
	CU_ASSERT_EQUAL(bpf_map_delete_elem(o.sess_fd, &o.sess[0].key[FERRY_DIR_CLIENT]), 0);
	CU_ASSERT_EQUAL(ob_xdp(&o, &p, &x), 0);
	CU_ASSERT_EQUAL(x.verdict, XDP_PASS);
	CU_ASSERT(x.len == p.len && !memcmp(x.data, p.data, p.len));
out_close:
	ob_close(&o);
}

static CU_TestInfo offload_bpf_tests[] = {
	{ "XDP and lib/nat.c rewrite generated packets alike", test_same_bytes },
	{ "a removed entry is a miss", test_removed_entry },
	CU_TEST_INFO_NULL,
};

UNIT_SUITE(offload_bpf, "offload_bpf", offload_bpf_tests, NULL, NULL);
