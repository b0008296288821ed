// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * ferry_steer: the XDP half of ferry.  Packets of configured flows go to the
 * AF_XDP socket bound to the queue they arrived on; everything else goes on
 * to the kernel stack, and so do the flows' own packets when no socket is
 * there yet.  The drops are that last case for a flow configured
 * `on_failure: drop`, whose rule asks for it, what such a flow cannot let
 * the kernel have either (first fragments, IPv6 extension headers), and a
 * flow's packets with an IPv4 source route: nothing that is not a flow's is
 * ever dropped, so a bug in a rule or a parser cannot cut the host off the
 * network.
 *
 * It runs as one program of libxdp's dispatcher (see the run config at the
 * end), so other XDP programs on the same interface keep working.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>

#include "ferry_match.h"
#include "ferry_shared.h"

/* From the kernel's net/ip.h, which is not a uapi header. */
#define FERRY_IP_MF 0x2000
#define FERRY_IP_OFFSET 0x1fff
/* IPv4 source-route options (RFC 791): loose and strict. */
#define FERRY_IPOPT_LSRR 131
#define FERRY_IPOPT_SSRR 137
#define FERRY_IPOPT_MAX 40    /* bytes of options an IPv4 header can hold */
#define FERRY_IPV6_EXT_MAX 6  /* extension headers walked before giving up */
#define FERRY_IPV6_FRAG_OFFSET 0xfff8

/*
 * What parse() learnt beyond the match key.  A packet ferry does not steer
 * (the worker neither reassembles nor parses extension headers) but still
 * matches a flow: an IPv4 fragment or an IPv6 packet with extension
 * headers.  FERRY_PF_NOSTEER_FIRST is one whose ports were read (or could
 * have been: a first fragment cut short), which a flow's on_failure: drop
 * drops; FERRY_PF_NOSTEER_LATER a later fragment, without ports, which
 * always goes to the kernel: it cannot be reassembled without its first.
 */
#define FERRY_PF_NOSTEER_FIRST 0x01
#define FERRY_PF_NOSTEER_LATER 0x02
#define FERRY_PF_SOURCE_ROUTE 0x04 /* IPv4 LSRR or SSRR option */
/*
 * The transport header could not be found (an IPv6 chain too long, or
 * through AH, ESP or another header ferry does not walk; IPv4 AH or ESP),
 * yet the kernel may still find it there and deliver it: the packet is
 * matched on its addresses alone, against UDP and TCP rules.
 */
#define FERRY_PF_UNKNOWN_L4 0x08

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_RULES);
	__type(key, __u32);
	__type(value, struct ferry_rule);
} ferry_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct ferry_flow_stats);
} ferry_flow_stats SEC(".maps");

/*
 * Written only by ferryd's workers.  It lives in this object so that it is
 * created, pinned and typed (bpftool prints its fields) with the others.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct ferry_fwd_stats);
} ferry_fwd_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct ferry_flow_info);
} ferry_flow_info SEC(".maps");

/*
 * Per-service counters of each flow's chain (key flow_id * FERRY_MAX_SERVICES
 * + position) and what each slot is.  Like ferry_fwd_stats, written only by
 * ferryd and kept here to be created, pinned and typed with the others.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS * FERRY_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct ferry_svc_stats);
} ferry_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS * FERRY_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct ferry_svc_info);
} ferry_svc_info SEC(".maps");

/* The flows' app slots, for ferryctl apps: written by ferryd's main thread only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_APP_SLOTS);
	__type(key, __u32);
	__type(value, struct ferry_app_slot_stats);
} ferry_app_slots SEC(".maps");

/* lb's upstreams by address, for ferryctl stats: written by ferryd's main thread only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_FLOWS * FERRY_LB_MAX_UPSTREAMS);
	__type(key, __u32);
	__type(value, struct ferry_lb_upstream_stats);
} ferry_lb_upstreams SEC(".maps");

/* Per AF_XDP socket counters, written by ferryd's main thread only (see ferry_shared.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_MAX_IFACES * FERRY_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct ferry_queue_stats);
} ferry_queue_stats SEC(".maps");

/* ferryd's liveness record, for ferryctl health: written by ferryd's main thread only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_health);
} ferry_health SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_xdp_stats);
} ferry_xdp_stats SEC(".maps");

/* One per interface: queue ids of different interfaces collide. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, FERRY_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} ferry_xsks SEC(".maps");

#include "ferry_fastpath.h"

enum ferry_parse {
	FERRY_PARSE_OK,
	FERRY_PARSE_OTHER, /* well formed but not something ferry steers */
	FERRY_PARSE_MALFORMED,
};

static __always_inline int parse_ports(struct ferry_match_key *k, void *l4, void *data_end,
				       __u32 l4_len)
{
	if (k->l4_proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || l4_len < sizeof(*udp))
			return FERRY_PARSE_MALFORMED;
		k->sport = bpf_ntohs(udp->source);
		k->dport = bpf_ntohs(udp->dest);
	} else {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || l4_len < sizeof(*tcp) || tcp->doff < 5)
			return FERRY_PARSE_MALFORMED;
		k->sport = bpf_ntohs(tcp->source);
		k->dport = bpf_ntohs(tcp->dest);
	}
	k->ports_valid = 1;
	return FERRY_PARSE_OK;
}

/* ICMP and ICMPv6 share this layout (linux/icmp.h drags in libc headers). */
struct ferry_icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* unused, pointer, MTU: never read here */
};

/*
 * The source and destination ports of a quoted UDP or TCP header.  RFC 792
 * promises 8 bytes of the offending packet's payload, so a TCP header may be
 * cut short after its sequence number: only the first 8 bytes are required.
 */
struct ferry_quoted_l4 {
	__be16 source;
	__be16 dest;
	__be32 more; /* UDP length and checksum, or the TCP sequence number */
};

static __always_inline int parse_quoted_ports(struct ferry_match_key *q, void *l4, void *data_end,
					      __u32 l4_len)
{
	struct ferry_quoted_l4 *h = l4;

	if ((void *)(h + 1) > data_end || l4_len < sizeof(*h))
		return FERRY_PARSE_MALFORMED;
	q->sport = bpf_ntohs(h->source);
	q->dport = bpf_ntohs(h->dest);
	q->ports_valid = 1;
	return FERRY_PARSE_OK;
}

/*
 * The packet an ICMP error quotes, `len` bytes at `iph`, into `q`.  A quoted
 * fragment or another protocol is not something ferry sent: FERRY_PARSE_OTHER.
 */
static __always_inline int parse_quote4(struct ferry_match_key *q, struct iphdr *iph,
					void *data_end, __u32 len)
{
	__u32 hlen;

	if ((void *)(iph + 1) > data_end || len < sizeof(*iph))
		return FERRY_PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return FERRY_PARSE_MALFORMED;
	hlen = iph->ihl * 4;
	if (len < hlen)
		return FERRY_PARSE_MALFORMED;
	if (iph->protocol != IPPROTO_UDP && iph->protocol != IPPROTO_TCP)
		return FERRY_PARSE_OTHER;
	if (bpf_ntohs(iph->frag_off) & (FERRY_IP_MF | FERRY_IP_OFFSET))
		return FERRY_PARSE_OTHER;
	q->family = 4;
	q->l4_proto = iph->protocol;
	q->saddr[0] = iph->saddr;
	q->daddr[0] = iph->daddr;
	return parse_quoted_ports(q, (void *)iph + hlen, data_end, len - hlen);
}

static __always_inline int parse_quote6(struct ferry_match_key *q, struct ipv6hdr *ip6,
					void *data_end, __u32 len)
{
	if ((void *)(ip6 + 1) > data_end || len < sizeof(*ip6))
		return FERRY_PARSE_MALFORMED;
	if (ip6->version != 6)
		return FERRY_PARSE_MALFORMED;
	/* Extension headers, a fragment header among them: never ferry's. */
	if (ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_TCP)
		return FERRY_PARSE_OTHER;
	q->family = 6;
	q->l4_proto = ip6->nexthdr;
	__builtin_memcpy(q->saddr, &ip6->saddr, sizeof(q->saddr));
	__builtin_memcpy(q->daddr, &ip6->daddr, sizeof(q->daddr));
	return parse_quoted_ports(q, ip6 + 1, data_end, len - sizeof(*ip6));
}

/*
 * An ICMP or ICMPv6 message of `len` bytes at `icmp`; `k` already holds the
 * outer family and addresses.  Errors are classified by the packet they quote
 * (ferry_icmp_error_key(), shared with the workers); echo and everything else
 * is the kernel's.  Both ICMP headers are 8 bytes with the type first.
 */
static __always_inline int parse_icmp(struct ferry_match_key *k, struct ferry_icmp_hdr *icmp,
				      void *data_end, __u32 len)
{
	struct ferry_match_key q = {};
	int ret;

	if ((void *)(icmp + 1) > data_end || len < sizeof(*icmp))
		return FERRY_PARSE_MALFORMED;
	if (!ferry_icmp_is_error(k->family, icmp->type))
		return FERRY_PARSE_OTHER;
	if (k->family == 4)
		ret = parse_quote4(&q, (void *)(icmp + 1), data_end, len - sizeof(*icmp));
	else
		ret = parse_quote6(&q, (void *)(icmp + 1), data_end, len - sizeof(*icmp));
	if (ret != FERRY_PARSE_OK)
		return ret;
	return ferry_icmp_error_key(k, &q) ? FERRY_PARSE_OK : FERRY_PARSE_OTHER;
}

/*
 * Does the IPv4 header carry a source-route option?  Forwarded as it is, it
 * would ask the upstream to route the packet where its sender chose.  A
 * malformed option list ends the walk: the receiving kernel drops it.
 */
static __always_inline bool ipv4_source_routed(struct iphdr *iph, void *data_end, __u32 hlen)
{
	__u8 *opt = (__u8 *)(iph + 1);
	__u32 optlen = hlen - sizeof(*iph), off = 0;

	for (int i = 0; i < FERRY_IPOPT_MAX; i++) {
		__u8 *p, type, len;

		if (off >= optlen)
			break;
		/* Bounded where the verifier sees it, and checked before each read. */
		barrier_var(off);
		off &= 0x3f;
		p = opt + off;
		if ((void *)(p + 1) > data_end)
			break;
		type = p[0];
		if (type == 0) /* end of list */
			break;
		if (type == 1) { /* no-op */
			off++;
			continue;
		}
		if (type == FERRY_IPOPT_LSRR || type == FERRY_IPOPT_SSRR)
			return true;
		if ((void *)(p + 2) > data_end)
			break;
		len = p[1];
		if (len < 2)
			break;
		off += len;
	}
	return false;
}

static __always_inline int parse_ipv4(struct ferry_match_key *k, __u8 *pf, struct iphdr *iph,
				      void *data_end)
{
	__u32 hlen, tot_len;
	int ret;

	if ((void *)(iph + 1) > data_end)
		return FERRY_PARSE_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return FERRY_PARSE_MALFORMED;
	hlen = iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	/* Trailing bytes are fine (Ethernet padding); missing ones are not. */
	if (tot_len < hlen || (void *)iph + tot_len > data_end)
		return FERRY_PARSE_MALFORMED;
	if (iph->protocol == IPPROTO_ICMP) {
		/* A fragmented error is left to the kernel's reassembly. */
		if (bpf_ntohs(iph->frag_off) & (FERRY_IP_MF | FERRY_IP_OFFSET))
			return FERRY_PARSE_OTHER;
		k->family = 4;
		k->saddr[0] = iph->saddr;
		k->daddr[0] = iph->daddr;
		return parse_icmp(k, (void *)iph + hlen, data_end, tot_len - hlen);
	}
	if (iph->protocol == IPPROTO_AH || iph->protocol == IPPROTO_ESP) {
		/* IPsec may carry the flow's UDP or TCP to the kernel's sockets. */
		k->family = 4;
		k->saddr[0] = iph->saddr;
		k->daddr[0] = iph->daddr;
		*pf |= FERRY_PF_UNKNOWN_L4;
		*pf |= bpf_ntohs(iph->frag_off) & FERRY_IP_OFFSET ? FERRY_PF_NOSTEER_LATER :
								     FERRY_PF_NOSTEER_FIRST;
		return FERRY_PARSE_OK;
	}
	if (iph->protocol != IPPROTO_UDP && iph->protocol != IPPROTO_TCP)
		return FERRY_PARSE_OTHER;

	k->family = 4;
	k->l4_proto = iph->protocol;
	k->saddr[0] = iph->saddr;
	k->daddr[0] = iph->daddr;
	if (hlen > sizeof(*iph) && ipv4_source_routed(iph, data_end, hlen))
		*pf |= FERRY_PF_SOURCE_ROUTE;
	/*
	 * Only the first fragment has ports, and the user-space data path does
	 * not reassemble: fragments are never steered.  A later one is matched
	 * on addresses and protocol alone (ports_valid stays 0).
	 */
	if (bpf_ntohs(iph->frag_off) & FERRY_IP_OFFSET) {
		*pf |= FERRY_PF_NOSTEER_LATER;
		return FERRY_PARSE_OK;
	}
	if (bpf_ntohs(iph->frag_off) & FERRY_IP_MF) {
		*pf |= FERRY_PF_NOSTEER_FIRST;
		/* A first fragment too short for its ports still matches on the rest. */
		ret = parse_ports(k, (void *)iph + hlen, data_end, tot_len - hlen);
		return ret == FERRY_PARSE_MALFORMED ? FERRY_PARSE_OK : ret;
	}
	return parse_ports(k, (void *)iph + hlen, data_end, tot_len - hlen);
}

/* The generic layout of hop-by-hop, routing and destination options headers. */
struct ferry_ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 bytes */
};

struct ferry_ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/*
 * Extension headers (RFC 8200 and IANA's list) the walk does not follow:
 * what comes after them is unknown, and may be the flow's UDP or TCP.
 * Any other next header is a transport the kernel hands to its own
 * protocol, never to a UDP or TCP socket.
 */
static __always_inline bool ipv6_ext_unwalked(__u8 nexthdr)
{
	return nexthdr == IPPROTO_AH || nexthdr == IPPROTO_ESP || nexthdr == 135 /* MH */ ||
	       nexthdr == 139 /* HIP */ || nexthdr == 140 /* Shim6 */ || nexthdr == 253 ||
	       nexthdr == 254;
}

/* The walk stopped short of the transport header: match on the addresses alone. */
static __always_inline int ipv6_give_up(struct ferry_match_key *k, __u8 *pf)
{
	k->l4_proto = 0;
	k->ports_valid = 0;
	*pf |= FERRY_PF_UNKNOWN_L4;
	return FERRY_PARSE_OK;
}

static __always_inline bool ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT ||
	       ipv6_ext_unwalked(nexthdr);
}

/*
 * Walks the extension headers of an IPv6 packet to the UDP or TCP header
 * they lead to, so a flow's policy can see what the kernel would get.
 * Returns FERRY_PARSE_OK with the key filled (ports when they are there, or
 * FERRY_PF_UNKNOWN_L4 when the walk gave up: a chain too long, a header it
 * does not walk), FERRY_PARSE_OTHER for another transport or a chain cut
 * short (which the kernel drops as well).
 */
static __always_inline int parse_ipv6_ext(struct ferry_match_key *k, __u8 *pf,
					  struct ipv6hdr *ip6, void *data_end, __u32 payload_len)
{
	__u8 nexthdr = ip6->nexthdr;
	__u32 off = 0; /* of the next header, from the end of the fixed one */
	int ret;

	*pf |= FERRY_PF_NOSTEER_FIRST;
	for (int i = 0; i < FERRY_IPV6_EXT_MAX; i++) {
		void *p = (void *)(ip6 + 1) + off;

		if (nexthdr == IPPROTO_UDP || nexthdr == IPPROTO_TCP)
			break;
		if (nexthdr == IPPROTO_FRAGMENT) {
			struct ferry_ipv6_frag_hdr *fh = p;

			/* Cut short: the kernel drops it too. */
			if ((void *)(fh + 1) > data_end || off + sizeof(*fh) > payload_len)
				return FERRY_PARSE_OTHER;
			nexthdr = fh->nexthdr;
			off += sizeof(*fh);
			if (bpf_ntohs(fh->frag_off) & FERRY_IPV6_FRAG_OFFSET) {
				*pf = (*pf & ~FERRY_PF_NOSTEER_FIRST) | FERRY_PF_NOSTEER_LATER;
				if (ipv6_is_ext(nexthdr))
					return ipv6_give_up(k, pf);
				if (nexthdr != IPPROTO_UDP && nexthdr != IPPROTO_TCP)
					return FERRY_PARSE_OTHER;
				k->l4_proto = nexthdr;
				return FERRY_PARSE_OK; /* ports_valid stays 0 */
			}
		} else if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
			   nexthdr == IPPROTO_DSTOPTS) {
			struct ferry_ipv6_opt_hdr *oh = p;

			if ((void *)(oh + 1) > data_end || off + sizeof(*oh) > payload_len)
				return FERRY_PARSE_OTHER;
			nexthdr = oh->nexthdr;
			off += (oh->hdrlen + 1) * 8;
		} else if (ipv6_ext_unwalked(nexthdr)) {
			return ipv6_give_up(k, pf);
		} else {
			return FERRY_PARSE_OTHER;
		}
		/* Keeps the offset bounded for the verifier; no real chain is this long. */
		if (off > 2048)
			return ipv6_give_up(k, pf);
	}
	if (ipv6_is_ext(nexthdr))
		return ipv6_give_up(k, pf); /* more than FERRY_IPV6_EXT_MAX headers */
	if (nexthdr != IPPROTO_UDP && nexthdr != IPPROTO_TCP)
		return FERRY_PARSE_OTHER;
	if (off > payload_len)
		return FERRY_PARSE_OTHER;
	if (off > 2048)
		return ipv6_give_up(k, pf);
	k->l4_proto = nexthdr;
	ret = parse_ports(k, (void *)(ip6 + 1) + off, data_end, payload_len - off);
	/* Cut short before its ports: matched on addresses and protocol. */
	return ret == FERRY_PARSE_MALFORMED ? FERRY_PARSE_OK : ret;
}

static __always_inline int parse_ipv6(struct ferry_match_key *k, __u8 *pf, struct ipv6hdr *ip6,
				      void *data_end)
{
	__u32 payload_len;

	if ((void *)(ip6 + 1) > data_end)
		return FERRY_PARSE_MALFORMED;
	if (ip6->version != 6)
		return FERRY_PARSE_MALFORMED;
	payload_len = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + payload_len > data_end)
		return FERRY_PARSE_MALFORMED;
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		k->family = 6;
		__builtin_memcpy(k->saddr, &ip6->saddr, sizeof(k->saddr));
		__builtin_memcpy(k->daddr, &ip6->daddr, sizeof(k->daddr));
		return parse_icmp(k, (void *)(ip6 + 1), data_end, payload_len);
	}
	k->family = 6;
	__builtin_memcpy(k->saddr, &ip6->saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, &ip6->daddr, sizeof(k->daddr));
	/* Extension headers (fragments included) are never steered, but may be a flow's. */
	if (ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_TCP)
		return parse_ipv6_ext(k, pf, ip6, data_end, payload_len);
	k->l4_proto = ip6->nexthdr;
	return parse_ports(k, ip6 + 1, data_end, payload_len);
}

static __always_inline int parse(struct xdp_md *ctx, struct ferry_match_key *k, __u8 *pf)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return FERRY_PARSE_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(k, pf, (void *)(eth + 1), data_end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(k, pf, (void *)(eth + 1), data_end);
	return FERRY_PARSE_OTHER;
}

struct ferry_lookup {
	struct ferry_match_key key;
	bool found;
	bool any_drop;	/* ports unknown: a drop flow among the matches wins */
	__u8 dir;
	__u8 flags;
	__u32 flow_id;
};

/*
 * bpf_loop() callback, one rule slot per call: the verifier checks it once
 * instead of once per slot, so the table size does not bound the program.
 */
static long match_slot(__u64 slot, void *data)
{
	struct ferry_lookup *l = data;
	const struct ferry_rule *r;
	__u32 key = slot;

	r = bpf_map_lookup_elem(&ferry_rules, &key);
	if (!r || !r->enabled)
		return 1;
	/* The workers classify with the same function: both sides agree. */
	if (!ferry_rule_match(r, &l->key))
		return 0;
	/*
	 * Without ports, the packet may be any of the flows on its addresses:
	 * if one of them fails closed, the kernel must not get it.
	 */
	if (l->any_drop && l->found && !(r->flags & FERRY_RULE_F_DROP_NO_SOCKET))
		return 0;
	l->found = true;
	l->dir = r->dir;
	l->flags = r->flags;
	l->flow_id = r->flow_id;
	return !l->any_drop || (r->flags & FERRY_RULE_F_DROP_NO_SOCKET);
}

/* FERRY_PF_UNKNOWN_L4: the rules of both transports, a drop flow first. */
static __always_inline void match_unknown_l4(struct ferry_lookup *l)
{
	l->any_drop = true;
	l->key.l4_proto = IPPROTO_UDP;
	bpf_loop(FERRY_MAX_RULES, match_slot, l, 0);
	if (l->found && (l->flags & FERRY_RULE_F_DROP_NO_SOCKET))
		return;
	l->key.l4_proto = IPPROTO_TCP;
	bpf_loop(FERRY_MAX_RULES, match_slot, l, 0);
}

/*
 * Counters keep two sums exact: xdp packets = steered + passed +
 * passed_malformed + passed_fragment + dropped_policy, and per flow packets
 * = redirected + passed_no_socket + dropped_no_socket + offloaded.  A packet of a flow
 * that is never offered to a socket is counted in one of the flow's
 * passed_fragment, dropped_fragment or dropped_source_route only.
 */
SEC("xdp")
int ferry_steer(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ferry_lookup l = {};
	struct ferry_flow_stats *fs;
	struct ferry_xdp_stats *xs;
	__u32 zero = 0;
	__u8 pf = 0;
	int ret;

	xs = bpf_map_lookup_elem(&ferry_xdp_stats, &zero);
	if (!xs)
		return XDP_PASS;
	xs->packets++;

	/* An offloaded session's packet never reaches the rule scan. */
	ret = fast_path(ctx, xs);
	if (ret != FERRY_FAST_MISS)
		return ret;

	ret = parse(ctx, &l.key, &pf);
	if (ret == FERRY_PARSE_MALFORMED) {
		xs->passed_malformed++;
		return XDP_PASS;
	}
	if (ret != FERRY_PARSE_OK) {
		xs->passed++;
		return XDP_PASS;
	}
	l.key.ifindex = ctx->ingress_ifindex;
	if (pf & FERRY_PF_UNKNOWN_L4)
		match_unknown_l4(&l);
	else
		bpf_loop(FERRY_MAX_RULES, match_slot, &l, 0);
	if (!l.found) {
		xs->passed++;
		return XDP_PASS;
	}
	fs = bpf_map_lookup_elem(&ferry_flow_stats, &l.flow_id);

	/* The sender would choose the upstream's route: never forwarded, never the kernel's. */
	if (pf & FERRY_PF_SOURCE_ROUTE) {
		xs->dropped_policy++;
		if (fs)
			fs->dropped_source_route++;
		return XDP_DROP;
	}
	/*
	 * What ferry cannot steer goes to the kernel, unless the flow fails
	 * closed: then the kernel must not get it either (it would reassemble
	 * or parse it and hand it to whatever listens there).  Dropping the
	 * first fragment is enough to keep the kernel from reassembling.
	 */
	if ((pf & FERRY_PF_NOSTEER_FIRST) && (l.flags & FERRY_RULE_F_DROP_NO_SOCKET)) {
		xs->dropped_policy++;
		if (fs)
			fs->dropped_fragment++;
		return XDP_DROP;
	}
	if (pf & (FERRY_PF_NOSTEER_FIRST | FERRY_PF_NOSTEER_LATER) || !l.key.ports_valid) {
		xs->passed_fragment++;
		if (fs)
			fs->passed_fragment++;
		return XDP_PASS;
	}

	xs->steered++;
	if (fs) {
		fs->packets++;
		fs->bytes += data_end - data;
		if (l.dir == FERRY_DIR_REPLY)
			fs->reply_packets++;
		if (l.key.reply_only)
			fs->icmp_errors++;
	}
	/*
	 * An empty queue slot yields the flow's on_failure action: XDP_PASS by
	 * default, so a dead ferryd leaves the host as if ferry were not there.
	 */
	ret = bpf_redirect_map(&ferry_xsks, ctx->rx_queue_index,
			       l.flags & FERRY_RULE_F_DROP_NO_SOCKET ? XDP_DROP : XDP_PASS);
	if (fs) {
		if (ret == XDP_PASS)
			fs->passed_no_socket++;
		else if (ret == XDP_DROP)
			fs->dropped_no_socket++;
		else
			fs->redirected++;
	}
	return ret;
}

/*
 * libxdp's dispatcher reads this: default priority, so programs an operator
 * gives a lower number (a filter, say) still run first, and on XDP_PASS the
 * next program gets the packet too.
 */
struct {
	__uint(priority, XDP_DEFAULT_RUN_PRIO);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(ferry_steer);

char LICENSE[] SEC("license") = "Dual BSD/GPL";
