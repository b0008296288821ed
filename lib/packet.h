/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Parsing of Ethernet / IPv4 / IPv6 / UDP / TCP frames into offsets.
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

/* A v4 address is stored in the first 4 bytes, the rest zero. */
union ferry_addr {
	uint8_t b[16];
	uint32_t w[4];
};

enum pkt_parse_result {
	PKT_OK = 0,
	PKT_ERR_TRUNCATED,     /* a header runs past the end of the frame */
	PKT_ERR_BAD_LENGTH,    /* IP or UDP length field inconsistent */
	PKT_ERR_BAD_HEADER,    /* bad IP version / IHL / TCP data offset */
	PKT_ERR_FRAGMENT,      /* IPv4 fragment or IPv6 fragment header */
	PKT_ERR_UNSUPPORTED,   /* other ethertype, L4 protocol or IPv6 extension */
	PKT_ERR__MAX
};

struct pkt_info {
	uint16_t l3_off;      /* start of the IP header */
	uint16_t l4_off;      /* start of the UDP/TCP header */
	uint16_t payload_off; /* start of the L4 payload */
	uint16_t pkt_len;     /* Ethernet header + IP total length (padding trimmed) */
	uint8_t family;       /* 4 or 6 */
	uint8_t l4_proto;     /* IPPROTO_UDP or IPPROTO_TCP */
	uint8_t ttl;          /* TTL or hop limit */
	uint8_t has_ip_options; /* IPv4 IHL > 5 (parsed, forwarded unchanged) */
	uint16_t sport, dport; /* host byte order */
	union ferry_addr saddr, daddr;
};

/* Parse `len` bytes at `data`.  On PKT_OK every field of *pi is set. */
enum pkt_parse_result pkt_parse(const uint8_t *data, uint32_t len, struct pkt_info *pi);
const char *pkt_parse_result_str(enum pkt_parse_result r);

#endif /* FERRY_PACKET_H */
