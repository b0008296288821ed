/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The flow-rule match, shared by the XDP program and the user-space workers.
 * The XDP program decides which packets reach a socket; the worker must then
 * know which flow (and direction) a packet belongs to.  AF_XDP copy mode
 * carries no metadata reliably, so the worker classifies again with the very
 * same function over the same rules: the two sides cannot disagree.
 */
#ifndef FERRY_MATCH_H
#define FERRY_MATCH_H

#include "ferry_shared.h"

#ifndef FERRY_INLINE
#ifdef __bpf__
#define FERRY_INLINE static __always_inline
#else
#define FERRY_INLINE static inline __attribute__((always_inline))
#endif
#endif

/* Does `a` lie in the prefix `p`/`plen`?  Words in network byte order. */
FERRY_INLINE int ferry_prefix_match(const __u32 *a, const __u32 *p, __u8 plen)
{
	for (int i = 0; i < 4; i++) {
		__u32 bits, mask;

		if (plen == 0)
			return 1;
		bits = plen > 32 ? 32 : plen;
		/* Build the mask in host order, then compare in network order. */
		mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
		mask = __builtin_bswap32(mask);
		if ((a[i] ^ p[i]) & mask)
			return 0;
		plen -= bits;
	}
	return 1;
}

/* The packet fields a rule looks at; addresses as 4 network-order words. */
struct ferry_match_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport, dport; /* host order */
	__u8 family;
	__u8 l4_proto;
	__u8 ports_valid;   /* 0 for fragments: only addresses and protocol are known */
	__u8 reply_only;    /* an ICMP error's key (ferry_icmp_error_key): reply rules only */
	__u32 ifindex;
};

FERRY_INLINE int ferry_rule_match(const struct ferry_rule *r, const struct ferry_match_key *k)
{
	if (r->family != k->family || r->l4_proto != k->l4_proto)
		return 0;
	if (k->reply_only && r->dir != FERRY_DIR_REPLY)
		return 0;
	if (r->ifindex && r->ifindex != k->ifindex)
		return 0;
	if (!ferry_prefix_match(k->daddr, r->dst, r->dst_plen))
		return 0;
	if (!ferry_prefix_match(k->saddr, r->src, r->src_plen))
		return 0;
	if (!k->ports_valid)
		return 1;
	if ((r->dport_lo || r->dport_hi) && (k->dport < r->dport_lo || k->dport > r->dport_hi))
		return 0;
	if ((r->sport_lo || r->sport_hi) && (k->sport < r->sport_lo || k->sport > r->sport_hi))
		return 0;
	return 1;
}

/*
 * ICMP (family 4) and ICMPv6 (family 6) error types that quote the packet
 * they are about: destination unreachable, time exceeded and parameter
 * problem, and ICMPv6 packet too big.  Only these can concern a NAT session.
 */
FERRY_INLINE int ferry_icmp_is_error(__u8 family, __u8 type)
{
	if (family == 4)
		return type == 3 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

/*
 * Turns `k`, holding an ICMP error's own (outer) family and addresses, into
 * the key the error is classified by: the packet it quotes (`q`, as quoted),
 * read in the reply direction.  An error about a packet ferry sent upstream
 * (E:n -> U:u) quotes exactly that packet, so reversed it is U:u -> E:n, what
 * the flow's reply rule matches; reply_only keeps client rules from taking an
 * error about one of ferry's replies, or the host's own traffic.  The error
 * must be addressed to the quoted packet's sender, as RFC 792 and RFC 4443
 * have it.  Returns 1 when `k` is ready to match, 0 when the error cannot be
 * about anything ferry sent.
 */
FERRY_INLINE int ferry_icmp_error_key(struct ferry_match_key *k, const struct ferry_match_key *q)
{
	if (q->family != k->family || !q->ports_valid)
		return 0;
	for (int i = 0; i < 4; i++)
		if (k->daddr[i] != q->saddr[i])
			return 0;
	for (int i = 0; i < 4; i++) {
		k->saddr[i] = q->daddr[i];
		k->daddr[i] = q->saddr[i];
	}
	k->sport = q->dport;
	k->dport = q->sport;
	k->l4_proto = q->l4_proto;
	k->ports_valid = 1;
	k->reply_only = 1;
	return 1;
}

#endif /* FERRY_MATCH_H */
