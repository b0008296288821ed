// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * bench_gen: the XDP half of the traffic generator.  It is never attached:
 * bench_gen.c runs it with BPF_PROG_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES), so each run turns a page-pool frame into a
 * real packet that XDP_TX sends out of the client's veth into the proxy.
 *
 * The kernel copies the loader's frame into a page only when the page is
 * first allocated; a recycled page comes back as the receiver left it, and a
 * forwarder that rewrites in place (ferry, the XDP NAT) leaves its MACs,
 * addresses and checksums behind.  So every run writes the whole
 * Ethernet/IPv4/UDP header again and recomputes both checksums.  The payload
 * is never rewritten by anyone, so its sum comes precomputed from the loader
 * and a 1400-byte frame costs no more here than a 64-byte one.
 *
 * Pacing happens here too, with a token bucket: a run that finds no token
 * returns XDP_DROP, which only recycles the page.  The loader therefore makes
 * one long call at any rate; calls cost about a millisecond each (a page pool
 * is set up and torn down per call), so pacing by calls from user space
 * cannot reach even 0.1 Mpps.  The spinning costs the generator's CPU, which
 * the sink's real-time NAPI thread preempts whenever it has work.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bench.h"

const volatile struct bench_gen_cfg cfg;

/* Frames generated so far; only the generator's own thread runs this program. */
__u64 sent;
/* Runs that found no token (spins of the pacing loop). */
__u64 idle_runs;
/* The token bucket: tokens (frames << 32) as of last_ns. */
__u64 tokens_fp;
__u64 last_ns;

/* A frame may go now: take a token, refilled at cfg.rate_fp since last_ns. */
static __always_inline bool take_token(void)
{
	__u64 now, delta, cap = (__u64)cfg.burst << 32;

	if (!cfg.rate_fp)
		return true;
	now = bpf_ktime_get_ns();
	if (!last_ns)
		last_ns = now;
	delta = now - last_ns;
	/* A long gap only fills the bucket; capping first keeps the product in range. */
	if (delta > 1000000000ull)
		delta = 1000000000ull;
	tokens_fp += delta * cfg.rate_fp;
	if (tokens_fp > cap)
		tokens_fp = cap;
	last_ns = now;
	if (tokens_fp < (1ull << 32))
		return false;
	tokens_fp -= 1ull << 32;
	return true;
}

static __always_inline __u32 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 flow, sport, dport, nsp = cfg.nr_sports ?: 1;
	__u16 ip_len = cfg.frame_len - sizeof(*eth);
	__u16 udp_len = ip_len - sizeof(*ip);
	__u16 *w = (__u16 *)ip;
	__u64 s;

	if ((void *)(udp + 1) > data_end)
		return XDP_ABORTED;
	if (sent >= cfg.max_frames || !take_token()) {
		idle_runs++;
		return XDP_DROP;
	}

	flow = (__u32)(sent % (cfg.nr_flows ?: 1));
	sport = cfg.sport + flow % nsp;
	dport = cfg.dport + flow / nsp;

	bench_copy_mac(eth->h_dest, cfg.dst_mac);
	bench_copy_mac(eth->h_source, cfg.src_mac);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(ip_len);
	ip->id = bpf_htons((__u16)sent);
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = cfg.ttl;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = cfg.saddr;
	ip->daddr = cfg.daddr;
	s = 0;
	for (int i = 0; i < 10; i++)
		s += w[i];
	ip->check = (__u16)~fold(s);

	udp->source = bpf_htons((__u16)sport);
	udp->dest = bpf_htons((__u16)dport);
	udp->len = bpf_htons(udp_len);
	udp->check = 0;
	/* Pseudo-header, UDP header and the payload's precomputed sum, all in packet order. */
	s = (__u64)cfg.saddr + cfg.daddr + bpf_htons(IPPROTO_UDP) + bpf_htons(udp_len);
	s += (__u64)udp->source + udp->dest + udp->len + cfg.payload_sum;
	udp->check = (__u16)~fold(s) ?: 0xffff;

	sent++;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
