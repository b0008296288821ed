// SPDX-License-Identifier: BSD-2-Clause
/*
 * Sums are kept in host order of the packet's own bytes: summing 16-bit words
 * loaded natively gives, stored back natively, the right bytes on either
 * endianness (RFC 1071 section 2(B)), so no byte swapping is ever needed.
 * Wider words work because 2^16 - 1 divides 2^32 - 1 and 2^64 - 1: an
 * end-around-carry sum of 64-bit words is congruent to the 16-bit one.
 */
#include <string.h>
#include <netinet/in.h>

#include "csum.h"

#define UDP_CSUM_OFF 6
#define TCP_CSUM_OFF 16

static inline uint64_t add64(uint64_t a, uint64_t b)
{
	uint64_t s = a + b;

	return s + (s < b);
}

static inline uint32_t fold64(uint64_t s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return (uint32_t)s;
}

/*
 * 32-bit words are added into a 64-bit accumulator, which needs no carry
 * handling in the loop; a block of CSUM_BLOCK bytes adds less than 2^50, and
 * the accumulator is folded into the total between blocks.
 */
#define CSUM_BLOCK (1u << 20)

uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t s = sum;
	uint32_t w32;
	uint16_t w16;

	while (len >= 32) {
		size_t n = len < CSUM_BLOCK ? len & ~(size_t)31 : CSUM_BLOCK;
		uint64_t acc = 0;

		len -= n;
		for (; n; n -= 32, p += 32) {
			uint32_t w[8];

			memcpy(w, p, sizeof(w));
			acc += (uint64_t)w[0] + w[1] + w[2] + w[3];
			acc += (uint64_t)w[4] + w[5] + w[6] + w[7];
		}
		s = add64(s, acc);
	}
	for (; len >= 4; len -= 4, p += 4) {
		memcpy(&w32, p, 4);
		s = add64(s, w32);
	}
	if (len >= 2) {
		memcpy(&w16, p, 2);
		s = add64(s, w16);
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd byte is the high-order byte of a zero-padded word (RFC 1071). */
		uint8_t tail[2] = {p[0], 0};

		memcpy(&w16, tail, 2);
		s = add64(s, w16);
	}
	return fold64(s);
}

/*
 * RFC 1624 eqn. 3 rather than eqn. 2: with end-around carry the sum is never
 * +0 for a non-zero header, so the result matches a full recomputation.
 */
void csum_replace2(uint16_t *csum, uint16_t from, uint16_t to)
{
	uint32_t s = (uint16_t) ~*csum;

	s += (uint16_t)~from;
	s += to;
	*csum = csum_fold(s);
}

void csum_replace4(uint16_t *csum, uint32_t from, uint32_t to)
{
	uint64_t s = (uint16_t) ~*csum;

	s += (uint32_t)~from;
	s += to;
	*csum = csum_fold(fold64(s));
}

void csum_replace16(uint16_t *csum, const uint32_t from[4], const uint32_t to[4])
{
	uint64_t s = (uint16_t) ~*csum;

	for (int i = 0; i < 4; i++) {
		s += (uint32_t)~from[i];
		s += to[i];
	}
	*csum = csum_fold(fold64(s));
}

uint16_t csum_ipv4_header(const void *iphdr, unsigned int ihl_bytes)
{
	const uint8_t *h = iphdr;
	uint32_t s;

	s = csum_partial(h, 10, 0);
	s = csum_partial(h + 12, ihl_bytes - 12, s);
	return csum_fold(s);
}

/*
 * Pseudo-header (RFC 768, RFC 8200 section 8.1) and segment, checksum field
 * included.  Addresses are read from the frame, not from *pi, so that a frame
 * rewritten after parsing is checked as it now is.
 */
static uint32_t l4_sum(const uint8_t *frame, const struct pkt_info *pi)
{
	uint32_t l4_len = (uint32_t)pi->pkt_len - pi->l4_off;
	const uint8_t *ip = frame + pi->l3_off;
	uint32_t s;

	/* Source and destination are adjacent in both headers. */
	if (pi->family == 4)
		s = csum_partial(ip + 12, 8, 0);
	else
		s = csum_partial(ip + 8, 32, 0);
	/* Both fields fit 16 bits, so the v6 32-bit length's upper word is zero. */
	s = fold64((uint64_t)s + htons(pi->l4_proto) + htons((uint16_t)l4_len));
	return csum_partial(frame + pi->l4_off, l4_len, s);
}

static unsigned int l4_csum_off(const struct pkt_info *pi)
{
	return pi->l4_off + (pi->l4_proto == IPPROTO_UDP ? UDP_CSUM_OFF : TCP_CSUM_OFF);
}

uint16_t csum_l4_compute(const uint8_t *frame, const struct pkt_info *pi)
{
	uint16_t stored, c;
	uint32_t s;

	memcpy(&stored, frame + l4_csum_off(pi), 2);
	/* Taking the stored field back out is cheaper than summing around it. */
	s = fold64((uint64_t)l4_sum(frame, pi) + (uint16_t)~stored);
	c = csum_fold(s);
	if (c == 0 && pi->l4_proto == IPPROTO_UDP)
		c = 0xffff;
	return c;
}

int csum_verify(const uint8_t *frame, const struct pkt_info *pi)
{
	uint16_t stored;

	if (pi->family == 4 &&
	    csum_fold(csum_partial(frame + pi->l3_off, pi->l4_off - pi->l3_off, 0)) != 0)
		return 0;
	memcpy(&stored, frame + l4_csum_off(pi), 2);
	if (stored == 0 && pi->l4_proto == IPPROTO_UDP)
		return pi->family == 4;
	return csum_fold(l4_sum(frame, pi)) == 0;
}
