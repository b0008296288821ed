/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Parsing of Ethernet / IPv4 / IPv6 / UDP / TCP frames into offsets, and of
 * ICMP / ICMPv6 errors that quote a UDP or TCP packet (lib/icmp.h).
 *
 * The parser never trusts a length field: every header must lie inside the
 * frame, the IP total length must fit the frame (trailing Ethernet padding is
 * allowed and trimmed), and anything it cannot forward correctly is refused
 * with a reason rather than half-parsed.  It reads only; rewriting is in
 * nat.c and the checksum helpers in csum.h.
 */
#ifndef FERRY_PACKET_H
#define FERRY_PACKET_H

#include <stdint.h>

/*
 * union ferry_addr, struct pkt_quote and struct pkt_info are defined in the
 * service ABI's header (services see them in struct ferry_pkt): a change to
 * them is a change of FERRY_SERVICE_ABI_VERSION.
 */
#include "ferry_service.h"

enum pkt_parse_result {
	PKT_OK = 0,
	PKT_ERR_TRUNCATED,     /* a header runs past the end of the frame */
	PKT_ERR_BAD_LENGTH,    /* IP or UDP length field inconsistent */
	PKT_ERR_BAD_HEADER,    /* bad IP version / IHL / TCP data offset */
	PKT_ERR_FRAGMENT,      /* IPv4 fragment or IPv6 fragment header */
	PKT_ERR_UNSUPPORTED,   /* other ethertype, L4 protocol or IPv6 extension */
	PKT_ERR__MAX
};

/* Parse `len` bytes at `data`.  On PKT_OK every field of *pi is set. */
enum pkt_parse_result pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *pi);
/*
 * The same without pkt_parse()'s shortcut for plain IPv4 UDP/TCP frames:
 * every frame, one way.  pkt_parse() must agree with it on every frame
 * (tests/unit/test_packet.c holds it to that); use pkt_parse().
 */
enum pkt_parse_result pkt_parse_general(const uint8_t *data, uint32_t len, struct pkt_info *pi);
const char *pkt_parse_result_str(enum pkt_parse_result r);

/* Ethernet's shortest frame without the FCS: senders pad shorter ones to it. */
#define PKT_ETH_MIN_LEN 60

/*
 * The length a parsed frame of `len` bytes is forwarded with: the Ethernet
 * header and the IP packet (pi->pkt_len), without what trails it, since the
 * MTU checks and every rewrite go by the IP length and a trailer would leave
 * with the frame.  A frame its sender padded to the Ethernet minimum keeps
 * that padding (up to PKT_ETH_MIN_LEN); nothing is padded that was not.
 */
static inline uint32_t pkt_frame_len(const struct pkt_info *pi, uint32_t len)
{
	if (pi->pkt_len >= PKT_ETH_MIN_LEN)
		return pi->pkt_len < len ? pi->pkt_len : len;
	return len < PKT_ETH_MIN_LEN ? len : PKT_ETH_MIN_LEN;
}

#endif /* FERRY_PACKET_H */
