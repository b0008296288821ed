// SPDX-License-Identifier: BSD-2-Clause
/*
 * The frame parser (see packet.h): Ethernet, IPv4/IPv6, UDP/TCP and the
 * ICMP/ICMPv6 errors that quote them, into the offsets and fields of struct
 * pkt_info, with a fast path for the common IPv4 UDP/TCP frame.  It only
 * reads a frame, never writes one (rewrites are nat.c's, icmp.c's and
 * packet_edit.c's), and trusts no length field.
 */
#include <stdbool.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "ferry_match.h"
#include "packet.h"

#define ETH_HLEN 14
#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40
#define UDP_HLEN 8
#define TCP_MIN_HLEN 20
#define IPV4_FRAG_MF 0x2000
#define IPV4_FRAG_OFFSET 0x1fff
#define ICMP_HLEN 8    /* ICMP and ICMPv6 alike */
#define QUOTE_L4_MIN 8 /* of a quoted UDP/TCP header, all RFC 792 promises */

/* Frames come straight from a UMEM at any offset: no aligned loads. */
static inline uint16_t get_be16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return ntohs(v);
}

/*
 * The packet an ICMP error quotes, from payload_off to `end`.  Its length
 * fields describe the packet as it was sent, not the quote, so they are not
 * checked; what is read must lie inside the quote.
 */
static enum pkt_parse_result parse_quote(const uint8_t *data, uint32_t end, struct pkt_info *pi)
{
	struct pkt_quote *qt = &pi->quote;
	uint32_t q = pi->payload_off, hlen;
	const uint8_t *ip = data + q;
	uint8_t proto;

	if (pi->family == 4) {
		if (end - q < IPV4_MIN_HLEN)
			return PKT_ERR_TRUNCATED;
		if (ip[0] >> 4 != 4)
			return PKT_ERR_BAD_HEADER;
		hlen = (uint32_t)(ip[0] & 0x0f) * 4;
		if (hlen < IPV4_MIN_HLEN)
			return PKT_ERR_BAD_HEADER;
		if (end - q < hlen)
			return PKT_ERR_TRUNCATED;
		/* ferry never sends fragments, so an error about one is not about ferry. */
		if (get_be16(ip + 6) & (IPV4_FRAG_MF | IPV4_FRAG_OFFSET))
			return PKT_ERR_FRAGMENT;
		proto = ip[9];
		memcpy(qt->saddr.b, ip + 12, 4);
		memcpy(qt->daddr.b, ip + 16, 4);
	} else {
		if (end - q < IPV6_HLEN)
			return PKT_ERR_TRUNCATED;
		if (ip[0] >> 4 != 6)
			return PKT_ERR_BAD_HEADER;
		hlen = IPV6_HLEN;
		proto = ip[6];
		if (proto == IPPROTO_FRAGMENT)
			return PKT_ERR_FRAGMENT;
		memcpy(qt->saddr.b, ip + 8, 16);
		memcpy(qt->daddr.b, ip + 24, 16);
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return PKT_ERR_UNSUPPORTED;
	if (end - q - hlen < QUOTE_L4_MIN)
		return PKT_ERR_TRUNCATED;
	qt->l3_off = (uint16_t)q;
	qt->l4_off = (uint16_t)(q + hlen);
	qt->l4_proto = proto;
	qt->sport = get_be16(data + qt->l4_off);
	qt->dport = get_be16(data + qt->l4_off + 2);
	return PKT_OK;
}

/* Only errors: the rest of ICMP (echo to the proxy, say) is the kernel's. */
static enum pkt_parse_result parse_icmp(const uint8_t *data, uint32_t end, struct pkt_info *pi)
{
	const uint8_t *h = data + pi->l4_off;

	if (end - pi->l4_off < ICMP_HLEN)
		return PKT_ERR_TRUNCATED;
	if (!ferry_icmp_is_error(pi->family, h[0]))
		return PKT_ERR_UNSUPPORTED;
	pi->icmp_type = h[0];
	pi->icmp_code = h[1];
	pi->sport = 0;
	pi->dport = 0;
	pi->payload_off = (uint16_t)(pi->l4_off + ICMP_HLEN);
	return parse_quote(data, end, pi);
}

/*
 * `end` is where the IP packet ends (Ethernet padding excluded), so an L4
 * header that lies in the padding counts as truncated.
 */
static enum pkt_parse_result parse_l4(const uint8_t *data, uint32_t end, struct pkt_info *pi)
{
	uint32_t l4 = pi->l4_off;
	const uint8_t *h = data + l4;
	uint32_t hlen;

	pi->icmp_type = 0;
	pi->icmp_code = 0;
	memset(&pi->quote, 0, sizeof(pi->quote));
	if ((pi->family == 4 && pi->l4_proto == IPPROTO_ICMP) ||
	    (pi->family == 6 && pi->l4_proto == IPPROTO_ICMPV6))
		return parse_icmp(data, end, pi);
	if (pi->l4_proto == IPPROTO_UDP) {
		if (end - l4 < UDP_HLEN)
			return PKT_ERR_TRUNCATED;
		if (get_be16(h + 4) != end - l4)
			return PKT_ERR_BAD_LENGTH;
		hlen = UDP_HLEN;
	} else if (pi->l4_proto == IPPROTO_TCP) {
		if (end - l4 < TCP_MIN_HLEN)
			return PKT_ERR_TRUNCATED;
		hlen = (uint32_t)(h[12] >> 4) * 4;
		if (hlen < TCP_MIN_HLEN)
			return PKT_ERR_BAD_HEADER;
		if (end - l4 < hlen)
			return PKT_ERR_TRUNCATED;
	} else {
		return PKT_ERR_UNSUPPORTED;
	}
	pi->sport = get_be16(h);
	pi->dport = get_be16(h + 2);
	pi->payload_off = (uint16_t)(l4 + hlen);
	return PKT_OK;
}

static enum pkt_parse_result parse_ipv4(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	const uint8_t *ip = data + ETH_HLEN;
	uint32_t ihl, tot_len;
	uint16_t frag;

	if (len - ETH_HLEN < IPV4_MIN_HLEN)
		return PKT_ERR_TRUNCATED;
	if (ip[0] >> 4 != 4)
		return PKT_ERR_BAD_HEADER;
	ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	if (ihl < IPV4_MIN_HLEN)
		return PKT_ERR_BAD_HEADER;
	if (len - ETH_HLEN < ihl)
		return PKT_ERR_TRUNCATED;
	tot_len = get_be16(ip + 2);
	if (tot_len < ihl || tot_len > len - ETH_HLEN)
		return PKT_ERR_BAD_LENGTH;
	/* A non-first fragment has no L4 header and a first one not all of its payload. */
	frag = get_be16(ip + 6);
	if (frag & (IPV4_FRAG_MF | IPV4_FRAG_OFFSET))
		return PKT_ERR_FRAGMENT;
	/* pkt_len and the offsets are 16-bit; such a frame never fits a UMEM frame anyway. */
	if (ETH_HLEN + tot_len > UINT16_MAX)
		return PKT_ERR_UNSUPPORTED;

	pi->family = 4;
	pi->l4_proto = ip[9];
	pi->ttl = ip[8];
	pi->has_ip_options = ihl > IPV4_MIN_HLEN;
	pi->l4_off = (uint16_t)(ETH_HLEN + ihl);
	pi->pkt_len = (uint16_t)(ETH_HLEN + tot_len);
	memset(&pi->saddr, 0, sizeof(pi->saddr));
	memset(&pi->daddr, 0, sizeof(pi->daddr));
	memcpy(pi->saddr.b, ip + 12, 4);
	memcpy(pi->daddr.b, ip + 16, 4);
	return parse_l4(data, pi->pkt_len, pi);
}

static enum pkt_parse_result parse_ipv6(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	const uint8_t *ip = data + ETH_HLEN;
	uint32_t plen;
	uint8_t nexthdr;

	if (len - ETH_HLEN < IPV6_HLEN)
		return PKT_ERR_TRUNCATED;
	if (ip[0] >> 4 != 6)
		return PKT_ERR_BAD_HEADER;
	plen = get_be16(ip + 4);
	if (plen > len - ETH_HLEN - IPV6_HLEN)
		return PKT_ERR_BAD_LENGTH;
	nexthdr = ip[6];
	if (nexthdr == IPPROTO_FRAGMENT)
		return PKT_ERR_FRAGMENT;
	/* Extension headers other than a fragment header are not walked (yet). */
	if (nexthdr != IPPROTO_UDP && nexthdr != IPPROTO_TCP && nexthdr != IPPROTO_ICMPV6)
		return PKT_ERR_UNSUPPORTED;
	if (ETH_HLEN + IPV6_HLEN + plen > UINT16_MAX)
		return PKT_ERR_UNSUPPORTED;

	pi->family = 6;
	pi->l4_proto = nexthdr;
	pi->ttl = ip[7];
	pi->has_ip_options = 0;
	pi->l4_off = ETH_HLEN + IPV6_HLEN;
	pi->pkt_len = (uint16_t)(ETH_HLEN + IPV6_HLEN + plen);
	memcpy(pi->saddr.b, ip + 8, 16);
	memcpy(pi->daddr.b, ip + 24, 16);
	return parse_l4(data, pi->pkt_len, pi);
}

/*
 * The common case in one pass: IPv4 without options and not a fragment,
 * carrying UDP or TCP.  It sets exactly what the general parser sets for
 * such a frame (tests/unit/test_packet.c compares the two on every frame
 * it parses).  Anything else, valid or not, is left to the general parser,
 * which also names the reason for a refusal.
 */
static inline bool parse_ipv4_fast(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	const uint8_t *ip = data + ETH_HLEN, *l4 = ip + IPV4_MIN_HLEN;
	uint32_t tot_len, l4_len, hlen;
	uint8_t proto;

	if (len < ETH_HLEN + IPV4_MIN_HLEN || get_be16(data + 12) != ETH_P_IPV4 || ip[0] != 0x45 ||
	    (get_be16(ip + 6) & (IPV4_FRAG_MF | IPV4_FRAG_OFFSET)))
		return false;
	tot_len = get_be16(ip + 2);
	if (tot_len < IPV4_MIN_HLEN || tot_len > len - ETH_HLEN)
		return false;
	l4_len = tot_len - IPV4_MIN_HLEN;
	proto = ip[9];
	if (proto == IPPROTO_UDP) {
		if (l4_len < UDP_HLEN || get_be16(l4 + 4) != l4_len)
			return false;
		hlen = UDP_HLEN;
	} else if (proto == IPPROTO_TCP) {
		if (l4_len < TCP_MIN_HLEN)
			return false;
		hlen = (uint32_t)(l4[12] >> 4) * 4;
		if (hlen < TCP_MIN_HLEN || l4_len < hlen)
			return false;
	} else {
		return false;
	}
	/* tot_len is 16 bits, so ETH_HLEN + tot_len may not be: left to the general parser. */
	if (ETH_HLEN + tot_len > UINT16_MAX)
		return false;
	pi->l3_off = ETH_HLEN;
	pi->l4_off = ETH_HLEN + IPV4_MIN_HLEN;
	pi->payload_off = (uint16_t)(ETH_HLEN + IPV4_MIN_HLEN + hlen);
	pi->pkt_len = (uint16_t)(ETH_HLEN + tot_len);
	pi->family = 4;
	pi->l4_proto = proto;
	pi->ttl = ip[8];
	pi->has_ip_options = 0;
	pi->sport = get_be16(l4);
	pi->dport = get_be16(l4 + 2);
	memset(&pi->saddr, 0, sizeof(pi->saddr));
	memset(&pi->daddr, 0, sizeof(pi->daddr));
	memcpy(pi->saddr.b, ip + 12, 4);
	memcpy(pi->daddr.b, ip + 16, 4);
	pi->icmp_type = 0;
	pi->icmp_code = 0;
	memset(&pi->quote, 0, sizeof(pi->quote));
	return true;
}

enum pkt_parse_result pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	if (parse_ipv4_fast(data, len, pi))
		return PKT_OK;
	return pkt_parse_general(data, len, pi);
}

enum pkt_parse_result pkt_parse_general(const uint8_t *data, uint32_t len, struct pkt_info *pi)
{
	uint16_t proto;

	if (len < ETH_HLEN)
		return PKT_ERR_TRUNCATED;
	pi->l3_off = ETH_HLEN;
	proto = get_be16(data + 12);
	if (proto == ETH_P_IPV4)
		return parse_ipv4(data, len, pi);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(data, len, pi);
	/* 802.1Q/802.1ad tagged frames too: refused until VLANs are supported. */
	return PKT_ERR_UNSUPPORTED;
}

const char *pkt_parse_result_str(enum pkt_parse_result r)
{
	static const char *const names[PKT_ERR__MAX] = {
	    [PKT_OK] = "ok",
	    [PKT_ERR_TRUNCATED] = "truncated",
	    [PKT_ERR_BAD_LENGTH] = "bad_length",
	    [PKT_ERR_BAD_HEADER] = "bad_header",
	    [PKT_ERR_FRAGMENT] = "fragment",
	    [PKT_ERR_UNSUPPORTED] = "unsupported",
	};

	if ((unsigned int)r >= PKT_ERR__MAX)
		return "unknown";
	return names[r];
}
