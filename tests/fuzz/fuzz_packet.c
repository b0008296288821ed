// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness: the packet path without the daemon around it.
 *
 * Any byte string goes to pkt_parse(), which must agree with
 * pkt_parse_general() on the result and on every field.  When it parses,
 * the offsets must lie inside the frame, the checksum helpers must agree
 * with each other, and a full NAT round trip must behave: the client
 * packet is rewritten towards the upstream, turned around as the
 * upstream's reply would be (swapping addresses and ports keeps every
 * checksum valid, the one's-complement sum being commutative), and
 * rewritten back to the client.  Along the way the
 * length never changes, each re-parse yields exactly the tuple the session
 * says, nothing outside MACs, addresses, ports, TTL and checksums changes,
 * and checksums that were valid stay valid.
 *
 * An ICMP or ICMPv6 error that parses gets the same treatment through
 * lib/icmp.c: a session whose upstream packet is exactly the quoted one,
 * found by the reversed quote, and the error rewritten for the client must
 * quote the client's packet, keep its layout and keep valid checksums valid.
 *
 * The NAT table is a big one, already holding BACKGROUND sessions (about
 * a quarter of its index's buckets), so the fuzzed session's lookups walk
 * probe runs among other keys, and the input's own neighbours (more
 * sessions from the same client address, removed again in an order the
 * input picks) make backward-shift deletes move entries around it.  After
 * every input the table holds exactly the background sessions again, and a
 * sample of them is still found by both indexes.
 *
 * Both rewrites go through the XDP fast path too (bpf/ferry_fastpath.h in
 * ferry_steer, run with BPF_PROG_TEST_RUN, the session's entries made by
 * offload__entry() as ferryd's workers make them): where lib/nat.c
 * rewrites and the fast path may take the packet, it must redirect it with
 * exactly lib/nat.c's bytes (trimmed as the workers trim); anything else it
 * must hand on untouched, frames lib/packet.c refuses included.  The input
 * picks the session's MTUs (none, 1500, exactly the packet, one byte short)
 * and MACs.  Without root or BPF the comparison is skipped, said once.
 *
 * The frame is copied into a heap buffer of exactly its size, so ASan
 * catches any read or write past its end.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "csum.h"
#include "ferry_shared.h"
#include "ferry_steer.skel.h"
#include "fuzz.h"
#include "icmp.h"
#include "log.h"
#include "nat.h"
#include "offload.h"
#include "packet.h"

#define ETH_HLEN 14
#define NAT_PORT_LO 40000
#define NAT_PORT_HI 40015
#define UPSTREAM_PORT 6000
#define UPSTREAM_MTU 1500
/* An index of 8192 buckets (twice the capacity, rounded up), a quarter in use. */
#define NAT_CAPACITY 4096
#define BACKGROUND 2048
#define MAX_NEIGHBOURS 8
#define SAMPLE 32

static struct nat_table *nat;
static struct nat_session *background[BACKGROUND];
static struct nat_tuple background_client[BACKGROUND];
static uint32_t sample_pos;

static const uint8_t up_dst_mac[6] = { 0x02, 0, 0, 0, 0x02, 0x02 };
static const uint8_t up_src_mac[6] = { 0x02, 0, 0, 0, 0x02, 0x01 };
static const uint8_t cli_dst_mac[6] = { 0x02, 0, 0, 0, 0x01, 0x02 };
static const uint8_t cli_src_mac[6] = { 0x02, 0, 0, 0, 0x01, 0x01 };

/* ---- the XDP fast path (bpf/ferry_fastpath.h), held to lib/nat.c ---- */

#define FAST_IFINDEX 1	  /* ingress and egress: the loopback */
#define FAST_MAX_FRAME 3072 /* test_run takes one page's worth without xdp.frags */
#define FAST_TCP_SYN_FIN_RST 0x07

static struct ferry_steer_bpf *fast; /* NULL: the comparison is skipped */
static int fast_prog, fast_sess, fast_stats, fast_ncpus;
static struct ferry_sess_stats *fast_percpu;

/* Root and BPF (make check runs the fuzzers as root): otherwise say so, once. */
static void fast_init(void)
{
	struct bpf_devmap_val dev = { .ifindex = FAST_IFINDEX };
	__u32 ifindex = FAST_IFINDEX;
	const char *why = "open";
	int err = 0;

	fast_ncpus = libbpf_num_possible_cpus();
	fast = ferry_steer_bpf__open();
	if (!fast || fast_ncpus <= 0)
		goto err_destroy;
	why = "load";
	if (bpf_map__set_max_entries(fast->maps.ferry_sessions, 4) ||
	    bpf_map__set_max_entries(fast->maps.ferry_sess_stats, 4) ||
	    (err = ferry_steer_bpf__load(fast)))
		goto err_destroy;
	why = "ferry_tx_ports";
	if (bpf_map_update_elem(bpf_map__fd(fast->maps.ferry_tx_ports), &ifindex, &dev, BPF_ANY))
		goto err_destroy;
	fast_prog = bpf_program__fd(fast->progs.ferry_steer);
	fast_sess = bpf_map__fd(fast->maps.ferry_sessions);
	fast_stats = bpf_map__fd(fast->maps.ferry_sess_stats);
	fast_percpu = calloc((size_t)fast_ncpus, sizeof(*fast_percpu));
	FUZZ_CHECK(fast_percpu, "out of memory");
	return;

err_destroy:
	fprintf(stderr, "fuzz_packet: SKIPPED: the XDP fast path comparison: cannot %s ferry_steer "
		"(%s): it needs root and BPF\n", why, strerror(err < 0 ? -err : errno));
	ferry_steer_bpf__destroy(fast);
	fast = NULL;
}

/*
 * `in` (`size` bytes) through ferry_steer with `entry` under `key`: with
 * `want` (lib/nat.c's rewrite, `want_len` bytes) it must be redirected as
 * exactly that and counted for the entry; without, handed on untouched.
 */
static void fast_run(const struct ferry_sess_key *key, const struct ferry_sess *entry,
		     const uint8_t *in, size_t size, const uint8_t *want, uint32_t want_len,
		     const char *what)
{
	static uint8_t out[FAST_MAX_FRAME];
	struct xdp_md ctx = { .data_end = (__u32)size, .ingress_ifindex = FAST_IFINDEX };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (__u32)size,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	uint64_t packets = 0, bytes = 0;
	__u32 slot = entry->stats_slot;
	int err;

	memset(fast_percpu, 0, (size_t)fast_ncpus * sizeof(*fast_percpu));
	FUZZ_CHECK(!bpf_map_update_elem(fast_stats, &slot, fast_percpu, BPF_ANY) &&
			   !bpf_map_update_elem(fast_sess, key, entry, BPF_ANY),
		   "%s: install the entry: %s", what, strerror(errno));
	err = bpf_prog_test_run_opts(fast_prog, &opts);
	FUZZ_CHECK(!err, "%s: BPF_PROG_TEST_RUN: %s", what, strerror(-err));
	FUZZ_CHECK(!bpf_map_delete_elem(fast_sess, key), "%s: remove the entry", what);
	if (!want) {
		FUZZ_CHECK(opts.retval != XDP_REDIRECT && opts.data_size_out == size &&
				   !memcmp(out, in, size),
			   "%s: the fast path took a packet lib/nat.c would not forward "
			   "(verdict %u, %u bytes of %zu)",
			   what, opts.retval, opts.data_size_out, size);
		return;
	}
	FUZZ_CHECK(opts.retval == XDP_REDIRECT, "%s: the fast path left it (verdict %u)", what,
		   opts.retval);
	FUZZ_CHECK(opts.data_size_out == want_len, "%s: the fast path sends %u bytes, lib/nat.c %u",
		   what, opts.data_size_out, want_len);
	for (uint32_t i = 0; i < want_len; i++)
		FUZZ_CHECK(out[i] == want[i], "%s: byte %u: the fast path wrote %02x, lib/nat.c %02x",
			   what, i, out[i], want[i]);
	FUZZ_CHECK(!bpf_map_lookup_elem(fast_stats, &slot, fast_percpu), "%s: session stats", what);
	for (int c = 0; c < fast_ncpus; c++) {
		packets += fast_percpu[c].packets;
		bytes += fast_percpu[c].bytes;
	}
	FUZZ_CHECK(packets == 1 && bytes == want_len, "%s: session counted %llu packets %llu bytes",
		   what, (unsigned long long)packets, (unsigned long long)bytes);
}

/*
 * Direction `dir` of `s` on the packet `in` (parsed as `pi`), which
 * lib/nat.c rewrote into `rewritten` (0) or refused (`err`).  The fast path
 * leaves to the workers what they must see even when they rewrite it: IPv4
 * options and TCP SYN, FIN or RST.
 */
static void fast_compare(const struct nat_session *s, enum ferry_dir dir, const uint8_t *in,
			 size_t size, const struct pkt_info *pi, const uint8_t *rewritten, int err)
{
	const char *what = dir == FERRY_DIR_CLIENT ? "fast path, to upstream" :
						     "fast path, to client";
	struct ferry_sess_key key;
	struct ferry_sess entry;
	bool takes = !err && !pi->has_ip_options &&
		     !(pi->l4_proto == IPPROTO_TCP && (in[pi->l4_off + 13] & FAST_TCP_SYN_FIN_RST));

	if (!fast || size > FAST_MAX_FRAME)
		return;
	offload__entry(s, dir, FAST_IFINDEX, FAST_IFINDEX, 0, 0, &key, &entry);
	fast_run(&key, &entry, in, size, takes ? rewritten : NULL, pkt_frame_len(pi, (uint32_t)size),
		 what);
}

/*
 * A frame lib/packet.c refuses, under an entry keyed as the fast path would
 * key it: the fast path must refuse it too.
 */
static void fast_refused(const uint8_t *in, size_t size)
{
	struct ferry_sess_key key = { .ifindex = FAST_IFINDEX };
	struct ferry_sess entry = { .egress_ifindex = FAST_IFINDEX, .dir = FERRY_DIR_CLIENT };
	uint32_t l3 = ETH_HLEN, l4;
	uint16_t ethertype;

	if (!fast || size > FAST_MAX_FRAME || size < ETH_HLEN)
		return;
	ethertype = (uint16_t)(in[12] << 8 | in[13]);
	if (ethertype == 0x0800 && size >= l3 + 20) {
		key.family = 4;
		key.l4_proto = in[l3 + 9];
		memcpy(key.saddr, in + l3 + 12, 4);
		memcpy(key.daddr, in + l3 + 16, 4);
		l4 = l3 + 20;
	} else if (ethertype == 0x86dd && size >= l3 + 40) {
		key.family = 6;
		key.l4_proto = in[l3 + 6];
		memcpy(key.saddr, in + l3 + 8, 16);
		memcpy(key.daddr, in + l3 + 24, 16);
		l4 = l3 + 40;
	} else {
		return;
	}
	if ((key.l4_proto != IPPROTO_UDP && key.l4_proto != IPPROTO_TCP) || size < l4 + 4)
		return;
	memcpy(&key.sport, in + l4, 2);
	memcpy(&key.dport, in + l4 + 2, 2);
	fast_run(&key, &entry, in, size, NULL, 0, "fast path, a frame lib/packet.c refuses");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log__init("fuzz_packet");
	log__set_level(FERRY_LOG_ERR);
	nat = nat_table__create(NAT_CAPACITY, NAT_PORT_LO, NAT_PORT_HI);
	if (!nat)
		abort();
	/*
	 * Sessions of other clients to other upstreams (198.18.3.0/24, each its
	 * own port), so none takes a NAT port the fuzzed session's upstream needs.
	 */
	for (uint32_t i = 0; i < BACKGROUND; i++) {
		static const union ferry_addr egress = { .b = { 198, 18, 3, 1 } };
		union ferry_addr up = { .b = { 198, 18, 3, (uint8_t)(2 + i % 200) } };
		struct nat_tuple *c = &background_client[i];
		int err;

		memset(c, 0, sizeof(*c));
		c->saddr.b[0] = 198;
		c->saddr.b[1] = 19;
		c->saddr.b[2] = (uint8_t)(i >> 8);
		c->saddr.b[3] = (uint8_t)i;
		c->daddr.b[0] = 198;
		c->daddr.b[1] = 18;
		c->daddr.b[2] = 1;
		c->daddr.b[3] = 1;
		c->sport = (uint16_t)(1024 + i);
		c->dport = 5000;
		c->family = 4;
		c->proto = i & 1 ? IPPROTO_TCP : IPPROTO_UDP;
		err = nat_table__insert(nat, c, &egress, &up, (uint16_t)(7000 + i / 200), 0, 1,
					&background[i]);
		FUZZ_CHECK(err == 0, "background session %u: %d", i, err);
	}
	fast_init();
	return 0;
}

/*
 * A rotating sample of the background sessions, found by both indexes:
 * inserts and backward-shift deletes of the fuzzed sessions must not lose
 * or misplace an entry of another run.
 */
static void check_background(void)
{
	FUZZ_CHECK(nat_table__count(nat) == BACKGROUND, "%u sessions, want %u",
		   nat_table__count(nat), BACKGROUND);
	for (uint32_t k = 0; k < SAMPLE; k++) {
		uint32_t i = sample_pos++ % BACKGROUND;
		const struct nat_session *s = background[i];
		struct nat_tuple reply;

		FUZZ_CHECK(nat_table__lookup_client(nat, &background_client[i]) == s,
			   "background session %u: client lookup", i);
		reply = s->upstream;
		reply.saddr = s->upstream.daddr;
		reply.daddr = s->upstream.saddr;
		reply.sport = s->upstream.dport;
		reply.dport = s->upstream.sport;
		FUZZ_CHECK(nat_table__lookup_reply(nat, &reply) == s,
			   "background session %u: reply lookup", i);
	}
}

static unsigned int addr_len(const struct pkt_info *pi)
{
	return pi->family == 4 ? 4 : 16;
}

/* Where the source address sits; the destination follows it in both families. */
static unsigned int saddr_off(const struct pkt_info *pi)
{
	return pi->l3_off + (pi->family == 4 ? 12 : 8);
}

static unsigned int ttl_off(const struct pkt_info *pi)
{
	return pi->l3_off + (pi->family == 4 ? 8 : 7);
}

static unsigned int l4_csum_off(const struct pkt_info *pi)
{
	return pi->l4_off + (pi->l4_proto == IPPROTO_UDP ? 6 : 16);
}

static void check_offsets(const struct pkt_info *pi, size_t size)
{
	FUZZ_CHECK(pi->family == 4 || pi->family == 6, "family %u", pi->family);
	FUZZ_CHECK(pi->l4_proto == IPPROTO_UDP || pi->l4_proto == IPPROTO_TCP, "proto %u",
		   pi->l4_proto);
	FUZZ_CHECK(pi->l3_off == ETH_HLEN, "l3_off %u", pi->l3_off);
	if (pi->family == 4) {
		FUZZ_CHECK(pi->l4_off >= pi->l3_off + 20 && pi->l4_off <= pi->l3_off + 60,
			   "l4_off %u", pi->l4_off);
		FUZZ_CHECK(pi->has_ip_options == (pi->l4_off > pi->l3_off + 20),
			   "has_ip_options %u with l4_off %u", pi->has_ip_options, pi->l4_off);
	} else {
		FUZZ_CHECK(pi->l4_off == pi->l3_off + 40, "l4_off %u", pi->l4_off);
	}
	FUZZ_CHECK(pi->payload_off >= pi->l4_off + (pi->l4_proto == IPPROTO_UDP ? 8 : 20),
		   "payload_off %u l4_off %u", pi->payload_off, pi->l4_off);
	FUZZ_CHECK(pi->payload_off <= pi->pkt_len, "payload_off %u pkt_len %u", pi->payload_off,
		   pi->pkt_len);
	FUZZ_CHECK(pi->pkt_len <= size, "pkt_len %u size %zu", pi->pkt_len, size);
}

/* Same layout, and the tuple given. */
static void check_reparse(const uint8_t *frame, size_t size, const struct pkt_info *orig,
			  const struct nat_tuple *want, uint8_t ttl, const char *what)
{
	struct pkt_info pi;
	enum pkt_parse_result r;

	r = pkt_parse(frame, (uint32_t)size, &pi);
	FUZZ_CHECK(r == PKT_OK, "%s: re-parse: %s", what, pkt_parse_result_str(r));
	check_offsets(&pi, size);
	FUZZ_CHECK(pi.l4_off == orig->l4_off && pi.payload_off == orig->payload_off &&
			   pi.pkt_len == orig->pkt_len && pi.family == orig->family &&
			   pi.l4_proto == orig->l4_proto,
		   "%s: layout changed", what);
	FUZZ_CHECK(!memcmp(pi.saddr.b, want->saddr.b, addr_len(&pi)), "%s: source address",
		   what);
	FUZZ_CHECK(!memcmp(pi.daddr.b, want->daddr.b, addr_len(&pi)), "%s: destination address",
		   what);
	FUZZ_CHECK(pi.sport == want->sport && pi.dport == want->dport,
		   "%s: ports %u -> %u, want %u -> %u", what, pi.sport, pi.dport, want->sport,
		   want->dport);
	FUZZ_CHECK(pi.ttl == ttl, "%s: ttl %u, want %u", what, pi.ttl, ttl);
}

/*
 * Bytes a NAT rewrite may change: MACs, TTL, addresses, ports, checksums.
 * Everything else (IP header fields, options, TCP flags, payload, padding)
 * must come through untouched.
 */
static void check_unchanged(const uint8_t *a, const uint8_t *b, size_t size,
			    const struct pkt_info *pi, const char *what)
{
	for (size_t i = ETH_HLEN; i < size; i++) {
		if (i == ttl_off(pi))
			continue;
		if (i >= saddr_off(pi) && i < saddr_off(pi) + 2 * addr_len(pi))
			continue;
		if (pi->family == 4 && (i == pi->l3_off + 10u || i == pi->l3_off + 11u))
			continue;
		if (i >= pi->l4_off && i < pi->l4_off + 4u)
			continue;
		if (i == l4_csum_off(pi) || i == l4_csum_off(pi) + 1)
			continue;
		FUZZ_CHECK(a[i] == b[i], "%s: byte %zu changed from %02x to %02x", what, i, a[i],
			   b[i]);
	}
}

/* The upstream's answer to a packet: addresses, ports and MACs swapped. */
static void turn_around(uint8_t *frame, const struct pkt_info *pi)
{
	uint8_t tmp[16];
	unsigned int a = saddr_off(pi), n = addr_len(pi);

	memcpy(tmp, frame, 6);
	memcpy(frame, frame + 6, 6);
	memcpy(frame + 6, tmp, 6);
	memcpy(tmp, frame + a, n);
	memcpy(frame + a, frame + a + n, n);
	memcpy(frame + a + n, tmp, n);
	memcpy(tmp, frame + pi->l4_off, 2);
	memcpy(frame + pi->l4_off, frame + pi->l4_off + 2, 2);
	memcpy(frame + pi->l4_off + 2, tmp, 2);
}

static void reverse(struct nat_tuple *dst, const struct nat_tuple *src)
{
	*dst = *src;
	dst->saddr = src->daddr;
	dst->daddr = src->saddr;
	dst->sport = src->dport;
	dst->dport = src->sport;
}

/* Fixing both checksums from scratch must make csum_verify() agree. */
static void check_csum_helpers(const uint8_t *frame, size_t size, const struct pkt_info *pi)
{
	uint8_t *fixed = malloc(size);
	uint16_t c;

	FUZZ_CHECK(fixed, "out of memory");
	memcpy(fixed, frame, size);
	if (pi->family == 4) {
		c = csum_ipv4_header(fixed + pi->l3_off, pi->l4_off - pi->l3_off);
		memcpy(fixed + pi->l3_off + 10, &c, 2);
	}
	c = csum_l4_compute(fixed, pi);
	FUZZ_CHECK(!(c == 0 && pi->l4_proto == IPPROTO_UDP), "UDP checksum computed as 0");
	memcpy(fixed + l4_csum_off(pi), &c, 2);
	FUZZ_CHECK(csum_verify(fixed, pi) == 1, "checksums computed from scratch do not verify");
	free(fixed);
}

/*
 * The session's next hops, chosen by the input's last byte: MACs, and MTUs
 * at the edges the rewrites check (none, exactly the packet, a byte short)
 * or well above it.
 */
static void session_l2(struct nat_session *s, const uint8_t *orig, size_t size,
		       const struct pkt_info *pi)
{
	uint8_t pick = orig[size - 1];
	uint32_t ip_len = (uint32_t)pi->pkt_len - pi->l3_off;
	static const uint16_t up_mtu[8] = { UPSTREAM_MTU, UPSTREAM_MTU, UPSTREAM_MTU, 0, 1, 1, 2,
					    UPSTREAM_MTU };
	static const uint16_t cli_mtu[4] = { 0xffff, 0, 1, 2 };
	uint16_t m;

	memcpy(s->to_upstream.dst_mac, up_dst_mac, 6);
	memcpy(s->to_upstream.src_mac, up_src_mac, 6);
	memcpy(s->to_client.dst_mac, cli_dst_mac, 6);
	memcpy(s->to_client.src_mac, cli_src_mac, 6);
	s->to_upstream.dst_mac[5] ^= pick;
	s->to_upstream.src_mac[4] ^= (uint8_t)size;
	s->to_client.dst_mac[5] ^= (uint8_t)(size >> 8);
	s->to_client.src_mac[4] ^= pick;
	s->to_upstream.port = 1;
	s->to_client.port = 0;
	/* 1: exactly the packet; 2: one byte short of it (a packet is at least 20 bytes). */
	m = up_mtu[pick & 7];
	s->to_upstream.mtu = m == 1 ? (uint16_t)ip_len : m == 2 ? (uint16_t)(ip_len - 1) : m;
	m = cli_mtu[(pick >> 3) & 3];
	s->to_client.mtu = m == 1 ? (uint16_t)ip_len : m == 2 ? (uint16_t)(ip_len - 1) : m;
}

static void nat_round_trip(const uint8_t *orig, size_t size, const struct pkt_info *pi,
			   bool valid)
{
	static const union ferry_addr egress4 = { .b = { 198, 18, 2, 1 } };
	static const union ferry_addr upstream4 = { .b = { 198, 18, 2, 2 } };
	static const union ferry_addr egress6 = { .b = { 0xfd, 0, 0, 2, [15] = 1 } };
	static const union ferry_addr upstream6 = { .b = { 0xfd, 0, 0, 2, [15] = 2 } };
	const union ferry_addr *egress = pi->family == 4 ? &egress4 : &egress6;
	const union ferry_addr *upstream = pi->family == 4 ? &upstream4 : &upstream6;
	struct nat_session *s = NULL, *nb[MAX_NEIGHBOURS];
	struct nat_tuple client, want, got, nbc[MAX_NEIGHBOURS];
	/* The input decides how many neighbours there are and who goes first. */
	uint32_t nr_nb = pi->sport % (MAX_NEIGHBOURS + 1), order = pi->dport;
	uint32_t ip_len = (uint32_t)pi->pkt_len - pi->l3_off;
	struct pkt_info rpi;
	uint8_t *frame, *reply;
	uint16_t stored;
	int err;

	nat_tuple_from_pkt(&client, pi);
	/* A background session's own tuple (a crafted input): nothing new to check. */
	for (uint32_t i = 0; i <= nr_nb; i++) {
		struct nat_tuple c = client;

		if (i)
			c.sport ^= (uint16_t)i;
		if (nat_table__lookup_client(nat, &c))
			return;
	}
	/* Neighbours before the session: its index entries land behind theirs. */
	for (uint32_t i = 0; i < nr_nb; i++) {
		nbc[i] = client;
		nbc[i].sport ^= (uint16_t)(i + 1);
		err = nat_table__insert(nat, &nbc[i], egress, upstream, UPSTREAM_PORT, 0, 1, &nb[i]);
		FUZZ_CHECK(err == 0, "neighbour %u: insert: %d", i, err);
	}
	err = nat_table__insert(nat, &client, egress, upstream, UPSTREAM_PORT, 0, 1, &s);
	FUZZ_CHECK(err == 0 && s, "insert with free NAT ports: %d", err);
	/* Then they leave, in the input's order, shifting entries back over the gaps. */
	for (uint32_t k = 0; k < nr_nb; k++) {
		uint32_t i = (k + order) % nr_nb;

		FUZZ_CHECK(nat_table__lookup_client(nat, &nbc[i]) == nb[i], "neighbour %u lookup",
			   i);
		nat_table__remove(nat, nb[i]);
		FUZZ_CHECK(nat_table__lookup_client(nat, &nbc[i]) == NULL,
			   "neighbour %u found after its removal", i);
		FUZZ_CHECK(nat_table__lookup_client(nat, &client) == s,
			   "client lookup after a neighbour left");
	}
	FUZZ_CHECK(nat_table__lookup_client(nat, &client) == s, "client lookup");
	FUZZ_CHECK(s->upstream.sport >= NAT_PORT_LO && s->upstream.sport <= NAT_PORT_HI,
		   "NAT port %u", s->upstream.sport);
	session_l2(s, orig, size, pi);

	frame = malloc(size);
	FUZZ_CHECK(frame, "out of memory");
	memcpy(frame, orig, size);

	err = nat_rewrite_to_upstream(frame, pi, s);
	fast_compare(s, FERRY_DIR_CLIENT, orig, size, pi, frame, err);
	if (pi->ttl <= 1) {
		FUZZ_CHECK(err == -ETIMEDOUT, "ttl %u: rewrite returned %d", pi->ttl, err);
		goto out;
	}
	if (s->to_upstream.mtu && ip_len > s->to_upstream.mtu) {
		FUZZ_CHECK(err == -EMSGSIZE, "IP length %u over MTU %u: rewrite returned %d", ip_len,
			   s->to_upstream.mtu, err);
		goto out;
	}
	FUZZ_CHECK(err == 0, "rewrite to upstream: %d", err);
	FUZZ_CHECK(!memcmp(frame, s->to_upstream.dst_mac, 6) &&
			   !memcmp(frame + 6, s->to_upstream.src_mac, 6),
		   "upstream MACs");
	check_reparse(frame, size, pi, &s->upstream, pi->ttl - 1, "to upstream");
	check_unchanged(orig, frame, size, pi, "to upstream");
	if (valid)
		FUZZ_CHECK(csum_verify(frame, pi), "valid checksums broken towards the upstream");
	memcpy(&stored, orig + l4_csum_off(pi), 2);
	if (pi->family == 4 && pi->l4_proto == IPPROTO_UDP && !stored) {
		memcpy(&stored, frame + l4_csum_off(pi), 2);
		FUZZ_CHECK(!stored, "UDP/IPv4 without checksum got one");
	}

	/* The upstream answers. */
	turn_around(frame, pi);
	FUZZ_CHECK(pkt_parse(frame, (uint32_t)size, &rpi) == PKT_OK, "reply does not parse");
	if (valid)
		FUZZ_CHECK(csum_verify(frame, &rpi), "turning around broke the checksums");
	reverse(&want, &s->upstream);
	check_reparse(frame, size, pi, &want, pi->ttl - 1, "reply");
	nat_tuple_from_pkt(&got, &rpi);
	FUZZ_CHECK(nat_table__lookup_reply(nat, &got) == s, "reply lookup");

	reply = malloc(size);
	FUZZ_CHECK(reply, "out of memory");
	memcpy(reply, frame, size);
	err = nat_rewrite_to_client(frame, &rpi, s);
	fast_compare(s, FERRY_DIR_REPLY, reply, size, &rpi, frame, err);
	free(reply);
	if (rpi.ttl <= 1) {
		FUZZ_CHECK(err == -ETIMEDOUT, "reply ttl %u: rewrite returned %d", rpi.ttl, err);
		goto out;
	}
	if (s->to_client.mtu && ip_len > s->to_client.mtu) {
		FUZZ_CHECK(err == -EMSGSIZE, "reply IP length %u over MTU %u: rewrite returned %d",
			   ip_len, s->to_client.mtu, err);
		goto out;
	}
	FUZZ_CHECK(err == 0, "rewrite to client: %d", err);
	FUZZ_CHECK(!memcmp(frame, s->to_client.dst_mac, 6) &&
			   !memcmp(frame + 6, s->to_client.src_mac, 6),
		   "client MACs");
	reverse(&want, &client);
	check_reparse(frame, size, pi, &want, pi->ttl - 2, "to client");
	if (valid)
		FUZZ_CHECK(csum_verify(frame, &rpi), "valid checksums broken towards the client");

	/* Back where it started, but for the swap: the rest is the original. */
	turn_around(frame, pi);
	check_unchanged(orig, frame, size, pi, "round trip");
	FUZZ_CHECK(!memcmp(frame + saddr_off(pi), orig + saddr_off(pi), 2 * addr_len(pi)) &&
			   !memcmp(frame + pi->l4_off, orig + pi->l4_off, 4),
		   "round trip: addresses or ports differ");
out:
	free(frame);
	nat_table__remove(nat, s);
	FUZZ_CHECK(nat_table__lookup_client(nat, &client) == NULL, "session found after remove");
	check_background();
}

/* ---- ICMP errors ---- */

static void check_icmp_offsets(const struct pkt_info *pi, size_t size)
{
	const struct pkt_quote *qt = &pi->quote;

	FUZZ_CHECK(pi->l3_off == ETH_HLEN && pi->pkt_len <= size, "l3_off %u pkt_len %u",
		   pi->l3_off, pi->pkt_len);
	if (pi->family == 4)
		FUZZ_CHECK(pi->l4_off >= pi->l3_off + 20 && pi->l4_off <= pi->l3_off + 60,
			   "l4_off %u", pi->l4_off);
	else
		FUZZ_CHECK(pi->family == 6 && pi->l4_off == pi->l3_off + 40, "family %u l4_off %u",
			   pi->family, pi->l4_off);
	FUZZ_CHECK(pi->payload_off == pi->l4_off + 8 && qt->l3_off == pi->payload_off,
		   "ICMP payload_off %u, quote at %u", pi->payload_off, qt->l3_off);
	if (pi->family == 4)
		FUZZ_CHECK(qt->l4_off >= qt->l3_off + 20 && qt->l4_off <= qt->l3_off + 60,
			   "quote l4_off %u", qt->l4_off);
	else
		FUZZ_CHECK(qt->l4_off == qt->l3_off + 40, "quote l4_off %u", qt->l4_off);
	FUZZ_CHECK(qt->l4_off + 8u <= pi->pkt_len, "quote l4_off %u pkt_len %u", qt->l4_off,
		   pi->pkt_len);
	FUZZ_CHECK(qt->l4_proto == IPPROTO_UDP || qt->l4_proto == IPPROTO_TCP, "quote proto %u",
		   qt->l4_proto);
}

/* The ICMP (v4) or ICMPv6 checksum, summed over the message as it is: 0 when valid. */
static uint16_t icmp_sum(const uint8_t *frame, const struct pkt_info *pi)
{
	uint32_t len = (uint32_t)pi->pkt_len - pi->l4_off;
	uint64_t sum = csum_partial(frame + pi->l4_off, len, 0);

	/* ICMPv6 also sums a pseudo-header (RFC 4443 2.3); ICMP does not. */
	if (pi->family == 6)
		sum += csum_partial(frame + saddr_off(pi), 32, 0) + htons((uint16_t)len) +
		       htons(IPPROTO_ICMPV6);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static bool ipv4_header_ok(const uint8_t *ip)
{
	return csum_fold(csum_partial(ip, (ip[0] & 0xf) * 4u, 0)) == 0;
}

static void icmp_round_trip(const uint8_t *orig, size_t size, const struct pkt_info *pi)
{
	static const union ferry_addr client4 = { .b = { 198, 18, 1, 2 } };
	static const union ferry_addr flow4 = { .b = { 198, 18, 1, 1 } };
	static const union ferry_addr client6 = { .b = { 0xfd, 0, 0, 1, [15] = 2 } };
	static const union ferry_addr flow6 = { .b = { 0xfd, 0, 0, 1, [15] = 1 } };
	const struct pkt_quote *qt = &pi->quote;
	unsigned int alen = addr_len(pi), qa = qt->l3_off + (pi->family == 4 ? 12 : 8);
	bool outer_ok, quote_ok, icmp_ok;
	struct nat_tuple client, reply;
	struct nat_session *s = NULL;
	struct nat_table *t;
	struct pkt_info out;
	uint8_t *frame;
	int err;

	/* Port 0 is no NAT port: such an error cannot be about a session. */
	if (!qt->sport)
		return;
	memset(&client, 0, sizeof(client));
	client.saddr = pi->family == 4 ? client4 : client6;
	client.daddr = pi->family == 4 ? flow4 : flow6;
	client.sport = 1234;
	client.dport = 5000;
	client.family = pi->family;
	client.proto = qt->l4_proto;
	/* A table whose only NAT port is the quoted one: the session sent exactly that packet. */
	t = nat_table__create(1, qt->sport, qt->sport);
	FUZZ_CHECK(t, "nat table");
	err = nat_table__insert(t, &client, &qt->saddr, &qt->daddr, qt->dport, 0, 1, &s);
	FUZZ_CHECK(err == 0, "insert: %d", err);
	icmp_quote_reply_tuple(&reply, pi);
	FUZZ_CHECK(nat_table__lookup_reply(t, &reply) == s, "the reversed quote finds no session");
	memcpy(s->to_client.dst_mac, cli_dst_mac, 6);
	memcpy(s->to_client.src_mac, cli_src_mac, 6);
	s->to_client.mtu = 0xffff;

	/* IPv4 header checksums that were valid (IPv6 has none). */
	outer_ok = pi->family == 4 && ipv4_header_ok(orig + pi->l3_off);
	quote_ok = pi->family == 4 && ipv4_header_ok(orig + qt->l3_off);
	icmp_ok = icmp_sum(orig, pi) == 0;
	frame = malloc(size);
	FUZZ_CHECK(frame, "out of memory");
	memcpy(frame, orig, size);
	err = icmp_rewrite_to_client(frame, pi, s);
	if (pi->ttl <= 1) {
		FUZZ_CHECK(err == -ETIMEDOUT, "ttl %u: ICMP rewrite returned %d", pi->ttl, err);
		goto out;
	}
	FUZZ_CHECK(err == 0, "ICMP rewrite: %d", err);

	FUZZ_CHECK(pkt_parse(frame, (uint32_t)size, &out) == PKT_OK && icmp_is_error(&out),
		   "the rewritten error does not parse");
	FUZZ_CHECK(out.l4_off == pi->l4_off && out.pkt_len == pi->pkt_len &&
			   out.quote.l3_off == qt->l3_off && out.quote.l4_off == qt->l4_off &&
			   out.icmp_type == pi->icmp_type && out.icmp_code == pi->icmp_code,
		   "the rewritten error changed its layout or type");
	FUZZ_CHECK(!memcmp(out.saddr.b, client.daddr.b, alen) &&
			   !memcmp(out.daddr.b, client.saddr.b, alen) && out.ttl == pi->ttl - 1,
		   "the error is not from the flow address to the client");
	FUZZ_CHECK(!memcmp(out.quote.saddr.b, client.saddr.b, alen) &&
			   !memcmp(out.quote.daddr.b, client.daddr.b, alen) &&
			   out.quote.sport == client.sport && out.quote.dport == client.dport &&
			   out.quote.l4_proto == qt->l4_proto,
		   "the error does not quote the client's packet");
	FUZZ_CHECK(!memcmp(frame, cli_dst_mac, 6) && !memcmp(frame + 6, cli_src_mac, 6),
		   "client MACs");
	if (outer_ok)
		FUZZ_CHECK(ipv4_header_ok(frame + pi->l3_off), "outer IPv4 checksum broken");
	if (quote_ok)
		FUZZ_CHECK(ipv4_header_ok(frame + qt->l3_off), "quoted IPv4 checksum broken");
	if (icmp_ok)
		FUZZ_CHECK(icmp_sum(frame, &out) == 0, "ICMP checksum broken");

	/* Nothing else moved: outer and quoted headers alike. */
	for (size_t i = ETH_HLEN; i < size; i++) {
		bool may = i == ttl_off(pi) ||
			   (i >= saddr_off(pi) && i < saddr_off(pi) + 2 * alen) ||
			   (pi->family == 4 && (i == pi->l3_off + 10u || i == pi->l3_off + 11u)) ||
			   i == pi->l4_off + 2u || i == pi->l4_off + 3u ||
			   (i >= qa && i < qa + 2 * alen) ||
			   (pi->family == 4 && (i == qt->l3_off + 10u || i == qt->l3_off + 11u)) ||
			   (i >= qt->l4_off && i < qt->l4_off + 4u) ||
			   i == qt->l4_off + (qt->l4_proto == IPPROTO_UDP ? 6u : 16u) ||
			   i == qt->l4_off + (qt->l4_proto == IPPROTO_UDP ? 7u : 17u);

		FUZZ_CHECK(may || frame[i] == orig[i], "ICMP rewrite changed byte %zu", i);
	}
out:
	free(frame);
	nat_table__destroy(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt_info pi, general;
	enum pkt_parse_result r;
	uint8_t *frame;
	bool valid;

	/* A UMEM frame is at most 4096 bytes; the parser's fields are 16-bit. */
	if (size > 65535)
		return 0;
	/* Exactly `size` bytes, so ASan sees a read past the end. */
	frame = malloc(size ? size : 1);
	FUZZ_CHECK(frame, "out of memory");
	memcpy(frame, data, size);

	memset(&pi, 0xa5, sizeof(pi));
	r = pkt_parse(frame, (uint32_t)size, &pi);
	FUZZ_CHECK(r < PKT_ERR__MAX, "result %d", r);
	/* pkt_parse()'s IPv4 shortcut must agree with the general parser, byte for byte. */
	memset(&general, 0xa5, sizeof(general));
	FUZZ_CHECK(pkt_parse_general(frame, (uint32_t)size, &general) == r,
		   "pkt_parse() and pkt_parse_general() disagree");
	FUZZ_CHECK(r != PKT_OK || !memcmp(&pi, &general, sizeof(pi)),
		   "pkt_parse() and pkt_parse_general() set different fields");
	FUZZ_CHECK(pkt_parse_result_str(r) != NULL, "no name for result %d", r);
	if (r == PKT_OK && icmp_is_error(&pi)) {
		check_icmp_offsets(&pi, size);
		icmp_round_trip(frame, size, &pi);
		FUZZ_CHECK(!memcmp(frame, data, size), "a check wrote to the input");
	} else if (r == PKT_OK) {
		check_offsets(&pi, size);
		valid = csum_verify(frame, &pi) == 1;
		check_csum_helpers(frame, size, &pi);
		nat_round_trip(frame, size, &pi, valid);
		FUZZ_CHECK(!memcmp(frame, data, size), "a check wrote to the input");
	} else if (r != PKT_OK) {
		fast_refused(frame, size);
	}
	free(frame);
	return 0;
}
