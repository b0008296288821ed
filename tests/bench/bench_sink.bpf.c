// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * bench_sink: the XDP program on the server's veth that counts what a
 * forwarder delivered.  Counting in XDP, not in a socket, keeps the sink far
 * cheaper than anything it measures.
 *
 * A frame carrying the generator's mark is checked and dropped: its
 * destination must be this interface's MAC and the address:port the
 * forwarder should have rewritten it to, its IPv4 header checksum must hold,
 * and its UDP checksum must hold over the whole datagram (an incremental
 * update that went wrong shows up here, where a kernel receiver would drop
 * the frame silently).  Each failure has its own counter; a frame is counted
 * as good only when every check passes.  Anything unmarked (ARP, a latency
 * probe) goes on to the kernel.
 *
 * With an XOR key set, a payload XORed byte for byte with it (the app rows'
 * transform) carries the mark XORed too: such a frame is checked the same
 * way and counted in xored as well as in packets, so a forwarder that let
 * untransformed packets through shows as packets - xored.
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

const volatile struct bench_sink_cfg cfg;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_sink_stats);
} sink_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct bench_mac);
} sink_macs SEC(".maps");

static __always_inline bool mac_differs(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a != *(const __u32 *)b ||
	       *(const __u16 *)(a + 4) != *(const __u16 *)(b + 4);
}

static __always_inline __u32 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/*
 * One's-complement sum of [p, data_end) in packet order: bpf_csum_diff() over
 * 256-byte blocks, then 4-byte words, then the last bytes.  The block size
 * keeps each helper call's length a verifier constant.
 */
static __always_inline __u64 sum_to_end(__u8 *p, void *data_end)
{
	__u64 s = 0;
	int i;

	for (i = 0; i < BENCH_MAX_FRAME / 256 + 1; i++) {
		if ((void *)(p + 256) > data_end)
			break;
		s += (__u32)bpf_csum_diff(NULL, 0, (__be32 *)p, 256, 0);
		p += 256;
	}
	for (i = 0; i < 256 / 4; i++) {
		if ((void *)(p + 4) > data_end)
			break;
		s += *(__u32 *)p;
		p += 4;
	}
	if ((void *)(p + 2) <= data_end) {
		s += *(__u16 *)p;
		p += 2;
	}
	/* An odd last byte is the first byte of a zero-padded word (RFC 1071). */
	if ((void *)(p + 1) <= data_end)
		s += *p;
	return s;
}

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 *magic = (__u32 *)(udp + 1);
	struct bench_sink_stats *st;
	struct bench_mac *mac;
	__u32 key = 0, ulen, ifindex = ctx->ingress_ifindex;
	__u16 *w = (__u16 *)ip;
	__u32 x = cfg.xor_key * 0x01010101u;
	bool bad = false, xored = false;
	__u64 s;

	st = bpf_map_lookup_elem(&sink_stats, &key);
	if (!st)
		return XDP_PASS;
	if ((void *)(magic + 2) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP) {
		st->other++;
		return XDP_PASS;
	}
	if (x && magic[0] == (BENCH_MAGIC_0 ^ x) && magic[1] == (BENCH_MAGIC_1 ^ x)) {
		xored = true;
	} else if (magic[0] != BENCH_MAGIC_0 || magic[1] != BENCH_MAGIC_1) {
		st->other++;
		return XDP_PASS;
	}
	mac = bpf_map_lookup_elem(&sink_macs, &ifindex);
	if (!mac || mac_differs(eth->h_dest, mac->addr) || ip->daddr != cfg.daddr ||
	    udp->dest != cfg.dport) {
		st->bad_dst++;
		bad = true;
	}
	s = 0;
	for (int i = 0; i < 10; i++)
		s += w[i];
	if (fold(s) != 0xffff) {
		st->bad_ip_csum++;
		bad = true;
	}
	/* The frame must end where the UDP length says: padding would be summed too. */
	ulen = bpf_ntohs(udp->len);
	if (udp->check == 0 || (void *)udp + ulen != data_end) {
		st->bad_udp_csum++;
		bad = true;
	} else {
		s = (__u64)ip->saddr + ip->daddr + bpf_htons(IPPROTO_UDP) + udp->len;
		s += sum_to_end((__u8 *)udp, data_end);
		if (fold(s) != 0xffff) {
			st->bad_udp_csum++;
			bad = true;
		}
	}
	if (!bad) {
		st->packets++;
		st->bytes += data_end - data;
		if (xored)
			st->xored++;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
