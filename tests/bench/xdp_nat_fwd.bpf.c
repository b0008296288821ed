// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * xdp_nat_fwd: the benchmark's in-kernel baseline.  It does what ferry's
 * `forward` does, full NAT of one UDP/IPv4 flow to one upstream, entirely in
 * XDP, redirecting frames between the proxy's two veths:
 *
 *   client -> proxy   C:c -> F:f   becomes   E:n -> U:u   proxy -> upstream
 *   upstream -> proxy U:u -> E:n   becomes   F:f -> C:c   proxy -> client
 *
 * with the same per-packet work as ferry's data path: a session lookup keyed
 * by the client tuple (or by the NAT port for replies), new MACs, addresses
 * and ports, TTL - 1, and RFC 1624 incremental IPv4 and UDP checksums.  That
 * makes it the upper bound of what the same NAT can do on this machine
 * without leaving the kernel.
 *
 * Sessions are created on the first packet: the NAT port comes from a
 * rotating counter over the configured range, claimed with BPF_NOEXIST in
 * the reply map so two sessions never share one.  Next hops are fixed at
 * load time (the loader passes the upstream's MAC; the client's is learned
 * from its frame, as ferry does), since bpf_fib_lookup() would demand IP
 * forwarding on, and the benchmark keeps it off for every system but the
 * kernel's own.
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
#include "xdp_nat_fwd.h"

const volatile struct nat_fwd_cfg cfg;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NAT_FWD_MAX_SESSIONS);
	__type(key, struct nat_fwd_key);
	__type(value, struct nat_fwd_session);
} nat_sessions SEC(".maps");

/* NAT port (host order) -> client tuple. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NAT_FWD_MAX_SESSIONS);
	__type(key, __u32);
	__type(value, struct nat_fwd_key);
} nat_replies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat_fwd_stats);
} nat_fwd_stats SEC(".maps");

__u32 next_port;

static __always_inline __u16 csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/*
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for a 32-bit field; a 16-bit one
 * is the same with the upper half zero.  ~m of a 32-bit word is congruent to
 * -m modulo 0xffff, so whole words can be added without splitting them.
 */
static __always_inline void csum_replace4(__u16 *sum, __u32 from, __u32 to)
{
	__u64 s = (__u16)~*sum;

	s += (__u32)~from;
	s += to;
	*sum = (__u16)~csum_fold(s);
}

static __always_inline void csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	__u64 s = (__u16)~*sum;

	s += (__u16)~from;
	s += to;
	*sum = (__u16)~csum_fold(s);
}

/* Rewrite addresses and ports of a parsed frame, checksums included. */
static __always_inline void rewrite(struct iphdr *ip, struct udphdr *udp, __u32 saddr,
				    __u32 daddr, __u16 sport, __u16 dport)
{
	__u16 old_ttl = *(__u16 *)&ip->ttl, new_ttl;

	ip->ttl--;
	new_ttl = *(__u16 *)&ip->ttl;
	csum_replace2(&ip->check, old_ttl, new_ttl);
	csum_replace4(&ip->check, ip->saddr, saddr);
	csum_replace4(&ip->check, ip->daddr, daddr);
	/* UDP over IPv4 may carry no checksum (0), which must stay 0. */
	if (udp->check) {
		csum_replace4(&udp->check, ip->saddr, saddr);
		csum_replace4(&udp->check, ip->daddr, daddr);
		csum_replace2(&udp->check, udp->source, sport);
		csum_replace2(&udp->check, udp->dest, dport);
		if (!udp->check)
			udp->check = 0xffff;
	}
	ip->saddr = saddr;
	ip->daddr = daddr;
	udp->source = sport;
	udp->dest = dport;
}

static __always_inline struct nat_fwd_session *create(const struct nat_fwd_key *k,
						      const struct ethhdr *eth, __u32 ifindex,
						      struct nat_fwd_stats *st)
{
	__u32 range = cfg.port_hi - cfg.port_lo + 1;
	struct nat_fwd_session s = {};

	__builtin_memcpy(s.client_mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(s.proxy_client_mac, eth->h_dest, ETH_ALEN);
	s.client_ifindex = ifindex;
	for (int i = 0; i < 16; i++) {
		/* A racy counter is enough: the NOEXIST insert below is what claims a port. */
		__u32 port = cfg.port_lo + next_port++ % range;

		if (bpf_map_update_elem(&nat_replies, &port, k, BPF_NOEXIST))
			continue;
		s.nat_port = bpf_htons((__u16)port);
		if (bpf_map_update_elem(&nat_sessions, k, &s, BPF_NOEXIST)) {
			bpf_map_delete_elem(&nat_replies, &port);
			break;
		}
		st->sessions++;
		return bpf_map_lookup_elem(&nat_sessions, k);
	}
	st->no_port++;
	return NULL;
}

SEC("xdp")
int xdp_nat_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	struct nat_fwd_session *s;
	struct nat_fwd_stats *st;
	struct nat_fwd_key k = {};
	__u32 zero = 0, port;

	st = bpf_map_lookup_elem(&nat_fwd_stats, &zero);
	if (!st)
		return XDP_PASS;
	/* Only plain UDP/IPv4 (no options, no fragments) is ours; the kernel takes the rest. */
	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		goto pass;
	if (ip->ttl <= 1)
		goto pass;

	if (ip->daddr == cfg.flow_addr && udp->dest == cfg.flow_port) {
		k.addr = ip->saddr;
		k.port = udp->source;
		s = bpf_map_lookup_elem(&nat_sessions, &k);
		if (!s) {
			s = create(&k, eth, ctx->ingress_ifindex, st);
			if (!s)
				return XDP_DROP;
		}
		rewrite(ip, udp, cfg.egress_addr, cfg.upstream_addr, s->nat_port,
			cfg.upstream_port);
		bench_copy_mac(eth->h_dest, cfg.upstream_mac);
		bench_copy_mac(eth->h_source, cfg.egress_mac);
		st->to_upstream++;
		return bpf_redirect(cfg.upstream_ifindex, 0);
	}
	if (ip->saddr == cfg.upstream_addr && udp->source == cfg.upstream_port &&
	    ip->daddr == cfg.egress_addr) {
		struct nat_fwd_key *ck;

		port = bpf_ntohs(udp->dest);
		if (port < cfg.port_lo || port > cfg.port_hi)
			goto pass;
		ck = bpf_map_lookup_elem(&nat_replies, &port);
		s = ck ? bpf_map_lookup_elem(&nat_sessions, ck) : NULL;
		if (!ck || !s) {
			st->no_session++;
			return XDP_DROP;
		}
		rewrite(ip, udp, cfg.flow_addr, ck->addr, cfg.flow_port, ck->port);
		__builtin_memcpy(eth->h_dest, s->client_mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, s->proxy_client_mac, ETH_ALEN);
		st->to_client++;
		return bpf_redirect(s->client_ifindex, 0);
	}
pass:
	st->passed++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
