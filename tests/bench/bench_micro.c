// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench_micro: ferry's per-packet work without a network, stage by stage.
 *
 * Synthetic batches of 64-byte UDP/IPv4 frames from many clients (one NAT
 * session each) go through the same library calls a worker makes:
 *
 *   parse     pkt_parse()
 *   lookup    nat_tuple_from_pkt() + nat_table__lookup_client()
 *   rewrite   nat_rewrite_to_upstream() (MACs, addresses, ports, TTL and the
 *             incremental checksums it applies itself)
 *   csum      the csum_replace4/2 helpers alone, for the same fields
 *   tx        port__tx() into a fake TX ring (plain memory, no socket: its
 *             need_wakeup flag is never set, so it never makes a syscall)
 *   path      all of the above but csum, fused, as a worker runs them
 *   hostile   nat_table__lookup_reply() in a second table at 90% load
 *             whose sessions an attacker would choose: one client address,
 *             sequential source ports, all to one upstream, so the reply
 *             keys differ only in the NAT port (ns and instructions per
 *             lookup; a hash that ignores a port turns these into long
 *             probe runs)
 *
 * Each stage is its own noinline function over a whole batch, so it can be
 * timed (ns/packet, --iterations batches) and, under
 * `valgrind --tool=callgrind`, counted: callgrind's inclusive instruction
 * count of stage_X divided by the packets gives instructions/packet, a
 * figure that does not depend on the machine's load.  The frames are reset
 * from templates between batches, outside the stages.
 *
 * The NAT table seeds its hash from getrandom(); this program defines
 * getrandom() itself to return a fixed seed, so probe sequences, and with
 * them instruction counts, are the same in every run.
 */
#include <getopt.h>
#include <sys/random.h>
#include <linux/if_ether.h>
#include <netinet/in.h>

#include "bench_util.h"
#include "csum.h"
#include "nat.h"
#include "packet.h"
#include "xdp_port.h"

#define BATCH 64
#define FRAME_LEN 64
#define UMEM_FRAME 2048
#define RING_SIZE 2048
/* The hostile stage's table: capacity, and sessions at 90% of it. */
#define ADV_CAPACITY 16384
#define ADV_SESSIONS (ADV_CAPACITY * 9 / 10)

/* Deterministic hash seeds for nat.c (see above); nothing else here calls it. */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	memset(buf, 0x5a, len);
	return (ssize_t)len;
}

struct micro {
	uint32_t nr_sessions;
	uint8_t *templates;              /* nr_sessions frames of FRAME_LEN */
	uint8_t *umem;                   /* BATCH frames of UMEM_FRAME */
	uint8_t *frames[BATCH];
	struct pkt_info pi[BATCH];
	struct nat_session *sess[BATCH];
	struct frame_ref tx[BATCH];
	struct nat_table *nat;
	uint32_t next;                   /* first session of the next batch */
	/* the fake TX ring */
	struct umem fake_umem;
	struct port port;
	struct xdp_desc ring[RING_SIZE];
	uint32_t producer, consumer, flags;
	/* the hostile stage: its table and the reply keys of its sessions */
	struct nat_table *adv;
	struct nat_tuple *adv_reply;
	uint32_t adv_next;
	/* scratch header for the csum stage */
	uint8_t hdr[FRAME_LEN];
	uint64_t sink;                   /* keeps results alive */
};

static const union ferry_addr flow_addr = {.b = {198, 18, 1, 1}};
static const union ferry_addr egress_addr = {.b = {198, 18, 2, 1}};
static const union ferry_addr upstream_addr = {.b = {198, 18, 2, 2}};

/* Client i: 198.18.{1,128..}.x:port, distinct for every i below 2^24. */
static void client_of(uint32_t i, union ferry_addr *a, uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	a->b[0] = 198;
	a->b[1] = 18;
	a->b[2] = (uint8_t)(1 + (i >> 16));
	a->b[3] = (uint8_t)(2 + (i >> 8 & 0xff) % 250);
	*port = (uint16_t)(10000 + (i & 0xff) + ((i >> 8) / 250) * 256);
}

static void build_frame(uint8_t *f, uint32_t i)
{
	struct pkt_info pi;
	union ferry_addr src;
	uint16_t sport, v;

	memset(f, 0, FRAME_LEN);
	memcpy(f, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	f[12] = 0x08;
	f[14] = 0x45;
	v = htons(FRAME_LEN - ETH_HLEN);
	memcpy(f + 16, &v, 2);
	f[22] = 64;
	f[23] = IPPROTO_UDP;
	client_of(i, &src, &sport);
	memcpy(f + 26, src.b, 4);
	memcpy(f + 30, flow_addr.b, 4);
	v = htons(sport);
	memcpy(f + 34, &v, 2);
	v = htons(5000);
	memcpy(f + 36, &v, 2);
	v = htons(FRAME_LEN - ETH_HLEN - 20);
	memcpy(f + 38, &v, 2);
	for (int b = 42; b < FRAME_LEN; b++)
		f[b] = (uint8_t)b;
	if (pkt_parse(f, FRAME_LEN, &pi) != PKT_OK)
		abort();
	v = csum_ipv4_header(f + ETH_HLEN, 20);
	memcpy(f + 24, &v, 2);
	v = csum_l4_compute(f, &pi);
	memcpy(f + 40, &v, 2);
}

/*
 * ADV_SESSIONS sessions from one client, source ports 1024 up, to one
 * upstream port: the keys a flood from one host makes.  The replies of
 * these sessions differ in their NAT port only.
 */
static int setup_adversarial(struct micro *m)
{
	m->adv = nat_table__create(ADV_CAPACITY, 1024, 65535);
	m->adv_reply = calloc(ADV_SESSIONS, sizeof(*m->adv_reply));
	if (!m->adv || !m->adv_reply)
		return -ENOMEM;
	for (uint32_t i = 0; i < ADV_SESSIONS; i++) {
		struct nat_tuple c = {.family = 4, .proto = IPPROTO_UDP, .dport = 5000};
		struct nat_tuple *r = &m->adv_reply[i];
		struct nat_session *s;
		int err;

		memcpy(c.saddr.b, "\xc6\x12\x03\x01", 4);
		c.daddr = flow_addr;
		c.sport = (uint16_t)(1024 + i);
		err = nat_table__insert(m->adv, &c, &egress_addr, &upstream_addr, 6000, 0, 0, &s);
		if (err)
			return err;
		r->saddr = s->upstream.daddr;
		r->daddr = s->upstream.saddr;
		r->sport = s->upstream.dport;
		r->dport = s->upstream.sport;
		r->family = 4;
		r->proto = IPPROTO_UDP;
	}
	return 0;
}

static int setup(struct micro *m)
{
	int err;

	m->templates = malloc((size_t)m->nr_sessions * FRAME_LEN);
	m->umem = aligned_alloc(4096, BATCH * UMEM_FRAME);
	m->nat = nat_table__create(m->nr_sessions, 1024, 65535);
	if (!m->templates || !m->umem || !m->nat)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nr_sessions; i++) {
		struct nat_session *s;
		struct nat_tuple t;
		struct pkt_info pi;
		uint8_t *f = m->templates + (size_t)i * FRAME_LEN;

		build_frame(f, i);
		pkt_parse(f, FRAME_LEN, &pi);
		nat_tuple_from_pkt(&t, &pi);
		err = nat_table__insert(m->nat, &t, &egress_addr, &upstream_addr, 6000, 0, 0, &s);
		if (err)
			return err;
		memcpy(s->to_upstream.dst_mac, "\x02\x00\x00\x00\x00\x03", 6);
		memcpy(s->to_upstream.src_mac, "\x02\x00\x00\x00\x00\x04", 6);
		s->to_upstream.port = 1;
		s->to_upstream.mtu = 1500;
	}
	for (int i = 0; i < BATCH; i++)
		m->frames[i] = m->umem + (size_t)i * UMEM_FRAME;
	err = setup_adversarial(m);
	if (err)
		return err;

	m->fake_umem.area = m->umem;
	m->fake_umem.held = BATCH;
	m->port.umem = &m->fake_umem;
	m->port.ring_size = RING_SIZE;
	m->port.tx.mask = RING_SIZE - 1;
	m->port.tx.size = RING_SIZE;
	m->port.tx.cached_cons = RING_SIZE;
	m->port.tx.producer = &m->producer;
	m->port.tx.consumer = &m->consumer;
	m->port.tx.flags = &m->flags;
	m->port.tx.ring = m->ring;
	memcpy(m->hdr, m->templates, FRAME_LEN);
	return 0;
}

/* Untimed: fresh frames for the next batch, and the "kernel" empties the TX ring. */
static void reset_batch(struct micro *m)
{
	for (int i = 0; i < BATCH; i++) {
		uint32_t s = (m->next + (uint32_t)i * 7919u) % m->nr_sessions;

		memcpy(m->frames[i], m->templates + (size_t)s * FRAME_LEN, FRAME_LEN);
	}
	m->next = (m->next + BATCH) % m->nr_sessions;
	m->consumer = m->producer;
	m->fake_umem.held = BATCH;
}

__attribute__((noinline)) static void stage_parse(struct micro *m)
{
	for (int i = 0; i < BATCH; i++)
		m->sink += pkt_parse(m->frames[i], FRAME_LEN, &m->pi[i]);
}

__attribute__((noinline)) static void stage_lookup(struct micro *m)
{
	for (int i = 0; i < BATCH; i++) {
		struct nat_tuple t;

		nat_tuple_from_pkt(&t, &m->pi[i]);
		m->sess[i] = nat_table__lookup_client(m->nat, &t);
	}
}

__attribute__((noinline)) static void stage_rewrite(struct micro *m)
{
	for (int i = 0; i < BATCH; i++)
		m->sink += (uint64_t)nat_rewrite_to_upstream(m->frames[i], &m->pi[i], m->sess[i]);
}

/* The checksum work of one NAT rewrite, through the standalone helpers. */
__attribute__((noinline)) static void stage_csum(struct micro *m)
{
	uint16_t *ip_csum = (uint16_t *)(m->hdr + 24), *udp_csum = (uint16_t *)(m->hdr + 40);
	uint32_t *saddr = (uint32_t *)(m->hdr + 26), *daddr = (uint32_t *)(m->hdr + 30);
	uint16_t *ports = (uint16_t *)(m->hdr + 34), *ttl = (uint16_t *)(m->hdr + 22);

	for (int i = 0; i < BATCH; i++) {
		uint32_t ns = *saddr ^ (uint32_t)i, nd = *daddr + 1;
		uint16_t np = (uint16_t)(ports[0] + 1), nt = (uint16_t)(*ttl - 1);

		csum_replace2(ip_csum, *ttl, nt);
		csum_replace4(ip_csum, *saddr, ns);
		csum_replace4(ip_csum, *daddr, nd);
		csum_replace4(udp_csum, *saddr, ns);
		csum_replace4(udp_csum, *daddr, nd);
		csum_replace2(udp_csum, ports[0], np);
		csum_replace2(udp_csum, ports[1], ports[1]);
		*saddr = ns;
		*daddr = nd;
		ports[0] = np;
		/* keep the TTL from running out over many batches */
		*ttl = nt == 0 ? *ttl : (uint16_t)(nt + 1);
	}
}

__attribute__((noinline)) static void stage_tx(struct micro *m)
{
	for (int i = 0; i < BATCH; i++) {
		m->tx[i].addr = (uint64_t)(m->frames[i] - m->umem);
		m->tx[i].len = FRAME_LEN;
	}
	m->sink += port__tx(&m->port, m->tx, BATCH);
}

/* Reply lookups of the adversarial sessions, in NAT port order. */
__attribute__((noinline)) static void stage_hostile(struct micro *m)
{
	for (int i = 0; i < BATCH; i++) {
		m->sink += (uintptr_t)nat_table__lookup_reply(m->adv, &m->adv_reply[m->adv_next]);
		if (++m->adv_next == ADV_SESSIONS)
			m->adv_next = 0;
	}
}

/* What a worker does per packet of a forwarded burst, fused. */
__attribute__((noinline)) static void stage_path(struct micro *m)
{
	uint32_t n = 0;

	for (int i = 0; i < BATCH; i++) {
		struct pkt_info *pi = &m->pi[i];
		struct nat_session *s;
		struct nat_tuple t;

		if (pkt_parse(m->frames[i], FRAME_LEN, pi) != PKT_OK)
			continue;
		nat_tuple_from_pkt(&t, pi);
		s = nat_table__lookup_client(m->nat, &t);
		if (!s || nat_rewrite_to_upstream(m->frames[i], pi, s))
			continue;
		m->tx[n].addr = (uint64_t)(m->frames[i] - m->umem);
		m->tx[n].len = FRAME_LEN;
		n++;
	}
	m->sink += port__tx(&m->port, m->tx, n);
}

static const struct {
	const char *name;
	void (*fn)(struct micro *m);
} stages[] = {
	{"parse", stage_parse},     {"lookup", stage_lookup}, {"rewrite", stage_rewrite},
	{"csum", stage_csum},       {"tx", stage_tx},         {"path", stage_path},
	{"hostile", stage_hostile},
};
#define NR_STAGES (sizeof(stages) / sizeof(stages[0]))

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"iterations", required_argument, NULL, 'i'},
		{"sessions", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	uint64_t iterations = 200000, v, ns[NR_STAGES] = {0};
	struct micro *m;
	int c, err;

	m = calloc(1, sizeof(*m));
	if (!m)
		return 1;
	m->nr_sessions = 4096;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (bench_parse_u64(optarg, 1, 1ull << 32, &iterations))
				goto usage;
			break;
		case 's':
			if (bench_parse_u64(optarg, BATCH, 1u << 22, &v))
				goto usage;
			m->nr_sessions = (uint32_t)v;
			break;
		case 'h':
		default:
			goto usage;
		}
	}
	err = setup(m);
	if (err) {
		fprintf(stderr, "bench_micro: setup failed: %s\n", strerror(-err));
		return 1;
	}
	for (uint64_t it = 0; it < iterations; it++) {
		reset_batch(m);
		/* The stages run in packet order, each on what the one before left. */
		for (size_t s = 0; s < NR_STAGES; s++) {
			uint64_t t0;

			/* path starts again from raw frames */
			if (stages[s].fn == stage_path)
				reset_batch(m);
			t0 = bench_now_ns();
			stages[s].fn(m);
			ns[s] += bench_now_ns() - t0;
		}
	}
	printf("bench_micro: %" PRIu64 " batches of %d packets, %u sessions (64-byte UDP/IPv4)\n",
	       iterations, BATCH, m->nr_sessions);
	for (size_t s = 0; s < NR_STAGES; s++)
		printf("  %-8s %8.1f ns/%s\n", stages[s].name,
		       (double)ns[s] / (double)(iterations * BATCH),
		       stages[s].fn == stage_hostile ? "lookup" : "packet");
	printf("  (hostile: reply lookups in a table of %u sessions at %.0f%% load, one client,\n"
	       "   sequential ports, one upstream)\n",
	       ADV_CAPACITY, ADV_SESSIONS * 100.0 / ADV_CAPACITY);
	/* Printed so the compiler cannot drop the stages' results. */
	printf("  (result digest %" PRIu64 ")\n", m->sink & 0xff);
	return 0;
usage:
	fprintf(stderr, "usage: bench_micro [--iterations BATCHES] [--sessions N]\n");
	return 2;
}
