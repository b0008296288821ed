/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The XDP fast path of ferry_steer: packets of an offloaded session are
 * rewritten in place and redirected to their egress here, without the
 * AF_XDP round trip through a worker (on a veth, or any NIC in copy mode,
 * that round trip is two copies and an skb per packet).
 *
 * ferryd's workers create every session and decide what is offloaded
 * (daemon/offload.c): they install each direction of an established session
 * in ferry_sessions with the rewrite they would apply themselves (lib/nat.c,
 * the same precomputed checksum deltas), so both paths write the same bytes
 * (tests/unit/test_offload_bpf.c compares them).  This file only applies
 * entries.  Anything a worker must see goes up as before, by returning
 * FERRY_FAST_MISS before the packet is touched: TCP SYN, FIN and RST (the
 * connection's state), IPv4 options, IPv6 extension headers, fragments, a
 * TTL or hop limit that would expire, a packet above the egress MTU,
 * malformed lengths, ICMP (errors are translated by the worker), an egress
 * with no device in ferry_tx_ports, and a miss.  A flow's ratelimit is
 * applied first (fast_ratelimit()): over the limit, XDP_DROP, counted.
 *
 * Included by ferry_steer.bpf.c only: the maps below are part of its object.
 */
#ifndef FERRY_FASTPATH_H
#define FERRY_FASTPATH_H

#define FERRY_FAST_MISS (-1)
#define FERRY_TCP_FLAG_FIN 0x01
#define FERRY_TCP_FLAG_SYN 0x02
#define FERRY_TCP_FLAG_RST 0x04
#define FERRY_ETH_MIN_LEN 60 /* Ethernet's shortest frame without FCS (lib/packet.h) */

/* Sizes are placeholders: ferryd sets them from nat.offload_max_sessions before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2);
	__type(key, struct ferry_sess_key);
	__type(value, struct ferry_sess);
} ferry_sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct ferry_sess_stats);
} ferry_sess_stats SEC(".maps");

/* ferry's interfaces, keyed by ifindex: where an offloaded packet may be redirected. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, FERRY_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} ferry_tx_ports SEC(".maps");

/*
 * A flow's ratelimit (struct ferry_rl_params), applied to an offloaded
 * packet before its rewrite.  Buckets are per CPU, never shared, so no
 * lock: per flow, each CPU has one bucket with 1/queues of the rate and
 * burst, as each worker has (ferryd computes `cost` with that divisor).
 * One RX queue is served by one CPU's NAPI, where this program runs, so a
 * CPU stands for a worker: the flow's packets spread over the queues, and
 * the CPUs, by the NIC's hash.  (On a veth the XDP program runs on the
 * sending task's CPU: a sender that moves between CPUs may get up to one
 * share per CPU, as a flow spread over more queues than workers would.)
 * Per source, each CPU has a bucket per source address with the full rate,
 * as each worker has a table: in an LRU map shared by every flow
 * (FERRY_RL_MAX_SOURCES), where the least recently used source goes and
 * comes back full, as an evicted one does in a worker's table.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct ferry_rl_params);
} ferry_rl_params SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct ferry_rl_bucket);
} ferry_rl_flow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, FERRY_RL_MAX_SOURCES);
	__type(key, struct ferry_rl_src_key);
	__type(value, struct ferry_rl_bucket);
} ferry_rl_sources SEC(".maps");

#define FERRY_RL_PASS 0
#define FERRY_RL_OVER_PACKETS 1
#define FERRY_RL_OVER_BYTES 2

/* As services/svc_ratelimit.c refill(): dt < fill_ns keeps rate * dt below cap + rate. */
static __always_inline void fast_rl_refill(const struct ferry_rl_bucket_params *p, __u64 *tokens,
					   __u64 dt)
{
	if (!p->rate)
		return;
	if (dt >= p->fill_ns)
		*tokens = p->cap;
	else if ((*tokens += p->rate * dt) > p->cap)
		*tokens = p->cap;
}

/*
 * FERRY_RL_PASS (the tokens taken), FERRY_RL_OVER_* (none taken), or
 * FERRY_FAST_MISS: no bucket could be had, the worker limits the packet.
 */
static __always_inline int fast_ratelimit(const struct ferry_sess *s,
					  const struct ferry_sess_key *k, __u32 len, __u64 now)
{
	struct ferry_rl_params *p;
	struct ferry_rl_bucket *b;
	__u64 dt, bytes_cost;

	p = bpf_map_lookup_elem(&ferry_rl_params, &s->flow_id);
	if (!p || !p->gen || !(p->dirs & (1u << s->dir)))
		return FERRY_RL_PASS;
	if (p->per_source) {
		struct ferry_rl_src_key sk = {};
		struct ferry_rl_bucket fresh = {};

		__builtin_memcpy(sk.addr, k->saddr, sizeof(sk.addr));
		sk.flow_id = s->flow_id;
		sk.family = k->family;
		b = bpf_map_lookup_elem(&ferry_rl_sources, &sk);
		if (!b) {
			/* Zero: full at the check below.  The other CPUs' copies start zero too. */
			bpf_map_update_elem(&ferry_rl_sources, &sk, &fresh, BPF_NOEXIST);
			b = bpf_map_lookup_elem(&ferry_rl_sources, &sk);
			if (!b)
				return FERRY_FAST_MISS;
		}
	} else {
		b = bpf_map_lookup_elem(&ferry_rl_flow, &s->flow_id);
		if (!b)
			return FERRY_FAST_MISS;
	}
	if (b->gen != p->gen) {
		b->pkt_tokens = p->pkt.cap;
		b->byte_tokens = p->byte.cap;
		b->last_ns = now;
		b->gen = p->gen;
	}
	dt = now > b->last_ns ? now - b->last_ns : 0;
	fast_rl_refill(&p->pkt, &b->pkt_tokens, dt);
	fast_rl_refill(&p->byte, &b->byte_tokens, dt);
	b->last_ns = now;
	bytes_cost = p->byte.cost * len;
	if (p->pkt.rate && b->pkt_tokens < p->pkt.cost)
		return FERRY_RL_OVER_PACKETS;
	if (p->byte.rate && b->byte_tokens < bytes_cost)
		return FERRY_RL_OVER_BYTES;
	if (p->pkt.rate)
		b->pkt_tokens -= p->pkt.cost;
	if (p->byte.rate)
		b->byte_tokens -= bytes_cost;
	return FERRY_RL_PASS;
}

/* As lib/nat.c csum_apply16(): a checksum after a change folded to 16 bits. */
static __always_inline void fast_csum_apply16(__u16 *field, __u16 d)
{
	__u32 s = (__u32)(__u16)~*field + d;

	s = (s & 0xffff) + (s >> 16);
	*field = (__u16)~s;
}

/* The parts of a packet the fast path reads, at fixed offsets (no options). */
struct fast_pkt {
	__u32 ip_len;    /* the IP packet: header and payload */
	__u32 l4_off;    /* from the frame's start */
	__u32 l4_len;
	__u8 tcp_flags;
};

static __always_inline int fast_key4(struct iphdr *iph, void *data_end, struct ferry_sess_key *k,
				     struct fast_pkt *fp)
{
	if ((void *)(iph + 1) > data_end)
		return FERRY_FAST_MISS;
	if (iph->version != 4 || iph->ihl != 5 || iph->ttl <= 1)
		return FERRY_FAST_MISS;
	if (iph->frag_off & bpf_htons(FERRY_IP_MF | FERRY_IP_OFFSET))
		return FERRY_FAST_MISS;
	if (iph->protocol != IPPROTO_UDP && iph->protocol != IPPROTO_TCP)
		return FERRY_FAST_MISS;
	fp->ip_len = bpf_ntohs(iph->tot_len);
	if (fp->ip_len < sizeof(*iph) || (void *)iph + fp->ip_len > data_end)
		return FERRY_FAST_MISS;
	k->family = 4;
	k->l4_proto = iph->protocol;
	k->saddr[0] = iph->saddr;
	k->daddr[0] = iph->daddr;
	fp->l4_off = sizeof(struct ethhdr) + sizeof(*iph);
	fp->l4_len = fp->ip_len - sizeof(*iph);
	return 0;
}

static __always_inline int fast_key6(struct ipv6hdr *ip6, void *data_end, struct ferry_sess_key *k,
				     struct fast_pkt *fp)
{
	if ((void *)(ip6 + 1) > data_end)
		return FERRY_FAST_MISS;
	if (ip6->version != 6 || ip6->hop_limit <= 1)
		return FERRY_FAST_MISS;
	if (ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_TCP)
		return FERRY_FAST_MISS;
	fp->l4_len = bpf_ntohs(ip6->payload_len);
	fp->ip_len = sizeof(*ip6) + fp->l4_len;
	if ((void *)ip6 + fp->ip_len > data_end)
		return FERRY_FAST_MISS;
	k->family = 6;
	k->l4_proto = ip6->nexthdr;
	__builtin_memcpy(k->saddr, &ip6->saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, &ip6->daddr, sizeof(k->daddr));
	fp->l4_off = sizeof(struct ethhdr) + sizeof(*ip6);
	return 0;
}

/* Ports, and the checks the workers' parser makes (lib/packet.c parse_l4()). */
static __always_inline int fast_ports(void *data, void *data_end, struct ferry_sess_key *k,
				      struct fast_pkt *fp)
{
	void *l4 = data + fp->l4_off;

	if (k->l4_proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || fp->l4_len < sizeof(*udp))
			return FERRY_FAST_MISS;
		if (bpf_ntohs(udp->len) != fp->l4_len)
			return FERRY_FAST_MISS;
		k->sport = udp->source;
		k->dport = udp->dest;
	} else {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || fp->l4_len < sizeof(*tcp))
			return FERRY_FAST_MISS;
		if (tcp->doff < 5 || (__u32)tcp->doff * 4 > fp->l4_len)
			return FERRY_FAST_MISS;
		fp->tcp_flags = ((__u8 *)tcp)[13];
		if (fp->tcp_flags & (FERRY_TCP_FLAG_SYN | FERRY_TCP_FLAG_FIN | FERRY_TCP_FLAG_RST))
			return FERRY_FAST_MISS;
		k->sport = tcp->source;
		k->dport = tcp->dest;
	}
	return 0;
}

/* What the sender of a TCP segment told: for the worker's window tracking. */
static __always_inline void fast_tcp_note(struct tcphdr *tcp, void *data_end,
					  struct ferry_sess_stats *st, __u32 l4_len)
{
	__u32 end, ack;

	if ((void *)(tcp + 1) > data_end)
		return;
	end = bpf_ntohl(tcp->seq) + l4_len - (__u32)tcp->doff * 4;
	ack = bpf_ntohl(tcp->ack_seq);
	/*
	 * Forward only (serial-number order, as the workers' windows): a
	 * retransmission (an RTO resends the oldest unacked segment, after
	 * newer ones) must not set the sender's end back.  A RST that acks
	 * everything the receiver got would then fall outside the window the
	 * worker resyncs from this, and be dropped as tcp_out_of_window.
	 */
	if (!st->tcp_valid || (__s32)(end - st->tcp_seq_end) > 0)
		st->tcp_seq_end = end;
	if (!st->tcp_valid || (__s32)(ack - st->tcp_ack) >= 0) {
		st->tcp_ack = ack;
		st->tcp_win = bpf_ntohs(tcp->window);
	}
	st->tcp_valid = 1;
}

/*
 * The rewrite, as lib/nat.c rewrite_prepared() does it: MACs, addresses,
 * TTL - 1 with the header checksum's precomputed delta, ports with the L4
 * checksum's, a UDP/IPv4 packet without a checksum keeps none, and a UDP
 * checksum that comes out 0 is sent as 0xffff.
 */
static __always_inline int fast_rewrite(void *data, void *data_end, const struct ferry_sess *s,
					__u8 family, __u8 proto, __u32 l4_off)
{
	struct ethhdr *eth = data;
	__u16 *ports, *csum;

	if ((void *)(eth + 1) > data_end)
		return FERRY_FAST_MISS;
	__builtin_memcpy(eth->h_dest, s->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, s->src_mac, ETH_ALEN);
	if (family == 4) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end)
			return FERRY_FAST_MISS;
		iph->saddr = s->saddr[0];
		iph->daddr = s->daddr[0];
		iph->ttl--;
		fast_csum_apply16(&iph->check, s->ip_delta);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return FERRY_FAST_MISS;
		__builtin_memcpy(&ip6->saddr, s->saddr, 16);
		__builtin_memcpy(&ip6->daddr, s->daddr, 16);
		ip6->hop_limit--;
	}
	ports = data + l4_off;
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp = data + l4_off;

		if ((void *)(udp + 1) > data_end)
			return FERRY_FAST_MISS;
		ports[0] = s->sport;
		ports[1] = s->dport;
		csum = &udp->check;
		if (family == 4 && !*csum)
			return 0;
		fast_csum_apply16(csum, s->l4_delta);
		if (!*csum)
			*csum = 0xffff;
	} else {
		struct tcphdr *tcp = data + l4_off;

		if ((void *)(tcp + 1) > data_end)
			return FERRY_FAST_MISS;
		ports[0] = s->sport;
		ports[1] = s->dport;
		fast_csum_apply16(&tcp->check, s->l4_delta);
	}
	return 0;
}

/*
 * XDP_REDIRECT for a packet of an offloaded session, counted for its flow and
 * session; FERRY_FAST_MISS, the packet untouched, for everything else.
 */
static __always_inline int fast_path(struct xdp_md *ctx, struct ferry_xdp_stats *xs)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct ferry_sess_key k = {};
	struct fast_pkt fp = {};
	struct ferry_sess_stats *st;
	struct ferry_flow_stats *fs;
	struct ferry_sess *s;
	__u32 len, keep;
	__u64 now;
	int ret;

	if ((void *)(eth + 1) > data_end)
		return FERRY_FAST_MISS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		ret = fast_key4((void *)(eth + 1), data_end, &k, &fp);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		ret = fast_key6((void *)(eth + 1), data_end, &k, &fp);
	else
		return FERRY_FAST_MISS;
	if (ret || fast_ports(data, data_end, &k, &fp))
		return FERRY_FAST_MISS;
	k.ifindex = ctx->ingress_ifindex;
	s = bpf_map_lookup_elem(&ferry_sessions, &k);
	if (!s)
		return FERRY_FAST_MISS;
	if (s->mtu && fp.ip_len > s->mtu)
		return FERRY_FAST_MISS;
	fs = bpf_map_lookup_elem(&ferry_flow_stats, &s->flow_id);
	/* A device gone from the map (a reload took the interface): the worker decides. */
	if (!bpf_map_lookup_elem(&ferry_tx_ports, &s->egress_ifindex)) {
		if (fs)
			fs->offload_redirect_failed++;
		return FERRY_FAST_MISS;
	}

	/* As the workers do (lib/packet.h pkt_frame_len()): no trailer leaves with it. */
	len = data_end - data;
	keep = sizeof(struct ethhdr) + fp.ip_len;
	if (keep < FERRY_ETH_MIN_LEN)
		keep = FERRY_ETH_MIN_LEN;

	/* The chain's ratelimit, on the frame's length as a worker sees it. */
	now = bpf_ktime_get_ns();
	ret = fast_ratelimit(s, &k, len > keep ? keep : len, now);
	if (ret == FERRY_FAST_MISS)
		return FERRY_FAST_MISS;
	if (ret != FERRY_RL_PASS) {
		len = len > keep ? keep : len;
		xs->steered++;
		if (fs) {
			fs->packets++;
			fs->bytes += len;
			fs->offload_rate_limited++;
			fs->offload_rate_limited_bytes += len;
			if (ret == FERRY_RL_OVER_BYTES)
				fs->offload_rate_limited_over_bytes++;
			if (s->dir == FERRY_DIR_REPLY) {
				fs->reply_packets++;
				fs->offload_rate_limited_reply++;
				fs->offload_rate_limited_reply_bytes += len;
			}
		}
		return XDP_DROP;
	}

	if (len > keep) {
		if (bpf_xdp_adjust_tail(ctx, (int)keep - (int)len))
			return FERRY_FAST_MISS;
		data_end = (void *)(long)ctx->data_end;
		data = (void *)(long)ctx->data;
		len = keep;
	}
	if (fast_rewrite(data, data_end, s, k.family, k.l4_proto, fp.l4_off))
		return XDP_DROP; /* cannot happen: the headers were read above */

	st = bpf_map_lookup_elem(&ferry_sess_stats, &s->stats_slot);
	if (st) {
		st->packets++;
		st->bytes += len;
		st->last_seen_ns = now;
		if (k.l4_proto == IPPROTO_TCP)
			fast_tcp_note(data + fp.l4_off, data_end, st, fp.l4_len);
	}
	xs->steered++;
	xs->offloaded++;
	if (fs) {
		fs->packets++;
		fs->bytes += len;
		fs->offloaded++;
		fs->offloaded_bytes += len;
		if (s->dir == FERRY_DIR_REPLY) {
			fs->reply_packets++;
			fs->offloaded_reply++;
			fs->offloaded_reply_bytes += len;
		}
	}
	return bpf_redirect_map(&ferry_tx_ports, s->egress_ifindex, 0);
}

#endif /* FERRY_FASTPATH_H */
