/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Internet checksums (RFC 1071) and their incremental update (RFC 1624:
 * HC' = ~(~HC + ~m + m')).  AF_XDP bypasses the kernel's checksum offloads,
 * so every rewrite fixes its checksums here, incrementally: a NAT rewrite
 * touches a few 16-bit words and must not cost a pass over the payload.
 */
#ifndef FERRY_CSUM_H
#define FERRY_CSUM_H

#include <stddef.h>
#include <stdint.h>

#include "packet.h"

/* One's-complement sum of `len` bytes added to `sum` (not folded, not inverted). */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
/*
 * Fold a 32-bit sum to 16 bits and invert it: the value stored in a header.
 * Inline: every rewrite ends in one or two of these, on the packet path.
 */
static inline uint16_t csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * Incremental updates of a stored checksum (network byte order, as it sits
 * in the header) when a 16-bit word, a 32-bit word or a 16-byte address
 * changes from `from` to `to` (both as they sit in the packet).
 */
void csum_replace2(uint16_t *csum, uint16_t from, uint16_t to);
void csum_replace4(uint16_t *csum, uint32_t from, uint32_t to);
void csum_replace16(uint16_t *csum, const uint32_t from[4], const uint32_t to[4]);

/* IPv4 header checksum computed from scratch (the field itself counted as 0). */
uint16_t csum_ipv4_header(const void *iphdr, unsigned int ihl_bytes);
/*
 * UDP/TCP checksum over pseudo-header and segment, computed from scratch for
 * the parsed packet, with the checksum field counted as 0.  Returns the value
 * to store (for UDP a result of 0 is returned as 0xffff, RFC 768).
 */
uint16_t csum_l4_compute(const uint8_t *frame, const struct pkt_info *pi);
/* 1 when the IPv4 header checksum and the L4 checksum are valid (UDP/IPv4 0 = none). */
int csum_verify(const uint8_t *frame, const struct pkt_info *pi);

#endif /* FERRY_CSUM_H */
