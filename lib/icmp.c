// SPDX-License-Identifier: BSD-2-Clause
/*
 * Relaying ICMP and ICMPv6 errors about NAT sessions to their clients (see
 * icmp.h for where the errors come from).  With client C:c, flow address
 * F:f, egress E:n and upstream U:u, an error from some router R
 *
 *   R -> E   ICMP error quoting  E:n -> U:u
 *
 * leaves towards the client as
 *
 *   F -> C   ICMP error quoting  C:c -> F:f
 *
 * Checksums are kept in the packet's own byte order, as in nat.c: 16-bit
 * words loaded natively and summed with end-around carry.  Every field the
 * rewrite changes lies at an even offset from the start of the ICMP header,
 * so a change in the quote enters the ICMP checksum word for word.
 */
#include <errno.h>
#include <string.h>

#include "icmp.h"

#define ETH_ALEN 6
#define IPV4_CSUM_OFF 10
#define ICMP_CSUM_OFF 2
#define UDP_CSUM_OFF 6
#define TCP_CSUM_OFF 16

int icmp_error_match_key(struct ferry_match_key *k, const struct pkt_info *pi)
{
	const struct pkt_quote *qt = &pi->quote;
	struct ferry_match_key q = {
	    .sport = qt->sport,
	    .dport = qt->dport,
	    .family = pi->family,
	    .l4_proto = qt->l4_proto,
	    .ports_valid = 1,
	};

	if (!icmp_is_error(pi))
		return -ENOENT;
	memcpy(q.saddr, qt->saddr.w, sizeof(q.saddr));
	memcpy(q.daddr, qt->daddr.w, sizeof(q.daddr));
	/* The very function the XDP program classifies with. */
	return ferry_icmp_error_key(k, &q) ? 0 : -ENOENT;
}

void icmp_quote_reply_tuple(struct nat_tuple *t, const struct pkt_info *pi)
{
	t->saddr = pi->quote.daddr;
	t->daddr = pi->quote.saddr;
	t->sport = pi->quote.dport;
	t->dport = pi->quote.sport;
	t->family = pi->family;
	t->proto = pi->quote.l4_proto;
	t->pad = 0;
}

/* RFC 1624 eqn. 3 terms (~m + m') for `len` bytes (even) going from `from` to `to`. */
static uint64_t delta(uint64_t d, const uint8_t *from, const uint8_t *to, size_t len)
{
	for (size_t i = 0; i < len; i += 2) {
		uint16_t a, b;

		memcpy(&a, from + i, 2);
		memcpy(&b, to + i, 2);
		d += (uint16_t)~a;
		d += b;
	}
	return d;
}

static uint16_t fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Apply `d` to the checksum at `field`; returns the terms of the field's own change. */
static uint64_t csum_apply(uint8_t *field, uint64_t d)
{
	uint8_t old[2];
	uint16_t c;

	memcpy(old, field, 2);
	memcpy(&c, field, 2);
	c = (uint16_t)~fold((uint64_t)(uint16_t)~c + d);
	memcpy(field, &c, 2);
	return delta(0, old, field, 2);
}

/*
 * The quote back into what the client sent: source C:c, destination F:f.
 * Returns the terms of every change it made, for the ICMP checksum.  The
 * quoted IPv4 header checksum and L4 checksum are updated like any NAT
 * rewrite, so the client sees its own packet's values again; the L4 one
 * only if the quote reaches it.  The quoted TTL stays as it was quoted.
 */
static uint64_t rewrite_quote(uint8_t *frame, const struct pkt_info *pi,
			      const struct nat_session *s)
{
	const struct pkt_quote *qt = &pi->quote;
	size_t alen = pi->family == 4 ? 4 : 16;
	uint8_t *qip = frame + qt->l3_off, *ql4 = frame + qt->l4_off;
	uint8_t *qaddrs = qip + (pi->family == 4 ? 12 : 8);
	uint16_t ports[2] = {htons(s->client.sport), htons(s->client.dport)};
	uint32_t csum_off = qt->l4_proto == IPPROTO_UDP ? UDP_CSUM_OFF : TCP_CSUM_OFF;
	uint64_t d_addr, d_l4, d_icmp;

	d_addr = delta(0, qaddrs, s->client.saddr.b, alen);
	d_addr = delta(d_addr, qaddrs + alen, s->client.daddr.b, alen);
	d_l4 = delta(d_addr, ql4, (const uint8_t *)ports, 4);
	d_icmp = d_l4;

	if (pi->family == 4)
		d_icmp += csum_apply(qip + IPV4_CSUM_OFF, d_addr);
	if ((uint32_t)qt->l4_off + csum_off + 2 <= pi->pkt_len) {
		uint8_t *c = ql4 + csum_off;

		/* UDP/IPv4 checksum 0 means none, in the quote as on the wire. */
		if (qt->l4_proto == IPPROTO_TCP || pi->family == 6 || c[0] || c[1]) {
			uint8_t old[2] = {c[0], c[1]};

			csum_apply(c, d_l4);
			if (qt->l4_proto == IPPROTO_UDP && !c[0] && !c[1])
				c[0] = c[1] = 0xff;
			d_icmp = delta(d_icmp, old, c, 2);
		}
	}
	memcpy(qaddrs, s->client.saddr.b, alen);
	memcpy(qaddrs + alen, s->client.daddr.b, alen);
	memcpy(ql4, ports, 4);
	return d_icmp;
}

/*
 * A packet-too-big error (and ICMPv4's fragmentation needed) keeps the MTU it
 * reports: ferry rewrites packets in place and never changes their size, so
 * the path MTU found beyond ferry holds for the client's packets as they are.
 * No other field of the ICMP header changes either.
 */
int icmp_rewrite_to_client(uint8_t *frame, const struct pkt_info *pi, const struct nat_session *s)
{
	const struct pkt_quote *qt = &pi->quote;
	size_t alen = pi->family == 4 ? 4 : 16;
	uint8_t *ip = frame + pi->l3_off;
	uint8_t *addrs = ip + (pi->family == 4 ? 12 : 8);
	uint8_t *ttl = ip + (pi->family == 4 ? 8 : 7);
	uint64_t d_icmp, d_outer;

	/* Lookups key on the reversed quote; anything else would be misrouted. */
	if (!icmp_is_error(pi) || pi->family != s->upstream.family ||
	    qt->l4_proto != s->upstream.proto || qt->sport != s->upstream.sport ||
	    qt->dport != s->upstream.dport || memcmp(qt->saddr.b, s->upstream.saddr.b, alen) ||
	    memcmp(qt->daddr.b, s->upstream.daddr.b, alen))
		return -EINVAL;
	if (*ttl <= 1)
		return -ETIMEDOUT;
	if (s->to_client.mtu && (uint32_t)pi->pkt_len - pi->l3_off > s->to_client.mtu)
		return -EMSGSIZE;

	d_icmp = rewrite_quote(frame, pi, s);

	/*
	 * From the flow address, not from the router that sent the error: the
	 * client may have no route to the upstream side's addresses (it only
	 * ever talks to F), reverse-path filters would drop them, and they are
	 * ferry's topology, not the client's.  The kernel matches an error to a
	 * socket by its quote alone, so nothing is lost.
	 */
	d_outer = delta(0, addrs, s->client.daddr.b, alen);
	d_outer = delta(d_outer, addrs + alen, s->client.saddr.b, alen);
	memcpy(addrs, s->client.daddr.b, alen);
	memcpy(addrs + alen, s->client.saddr.b, alen);
	if (pi->family == 4) {
		uint8_t old[2] = {ttl[0], ttl[1]}; /* TTL and protocol: one word */

		(*ttl)--;
		csum_apply(ip + IPV4_CSUM_OFF, delta(d_outer, old, ttl, 2));
	} else {
		(*ttl)--;
		/* ICMPv6 sums a pseudo-header with both addresses (RFC 4443 2.3). */
		d_icmp += d_outer;
	}
	csum_apply(frame + pi->l4_off + ICMP_CSUM_OFF, d_icmp);

	memcpy(frame, s->to_client.dst_mac, ETH_ALEN);
	memcpy(frame + ETH_ALEN, s->to_client.src_mac, ETH_ALEN);
	return 0;
}
