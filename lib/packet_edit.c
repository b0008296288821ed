// SPDX-License-Identifier: BSD-2-Clause
/*
 * Length and checksum fixes after a service edited a packet's payload
 * (packet_edit.h).  Works on one parsed frame in place; never allocates,
 * never touches NAT state or the frame pool.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "csum.h"
#include "packet_edit.h"

static void put16(uint8_t *p, uint16_t host)
{
	p[0] = host >> 8;
	p[1] = host & 0xff;
}

static unsigned int l4_csum_off(const struct pkt_info *pi)
{
	return pi->l4_off + (pi->l4_proto == IPPROTO_UDP ? 6 : 16);
}

void pkt_fix_checksums(uint8_t *frame, const struct pkt_info *pi)
{
	uint16_t c;

	if (pi->family == 4) {
		memset(frame + pi->l3_off + 10, 0, 2);
		c = csum_ipv4_header(frame + pi->l3_off, pi->l4_off - pi->l3_off);
		memcpy(frame + pi->l3_off + 10, &c, 2);
	}
	if (pi->l4_proto != IPPROTO_UDP && pi->l4_proto != IPPROTO_TCP)
		return;
	c = csum_l4_compute(frame, pi);
	memcpy(frame + l4_csum_off(pi), &c, 2);
}

int pkt_set_udp_payload_len(uint8_t *frame, struct pkt_info *pi, uint32_t room, uint32_t len)
{
	uint32_t l4_len = 8 + len;
	uint32_t total = pi->payload_off + len;

	if (pi->l4_proto != IPPROTO_UDP)
		return -EINVAL;
	if (total > room || total - pi->l3_off > 65535)
		return -EMSGSIZE;
	if (pi->family == 4)
		put16(frame + pi->l3_off + 2, (uint16_t)(total - pi->l3_off));
	else
		put16(frame + pi->l3_off + 4, (uint16_t)l4_len);
	put16(frame + pi->l4_off + 4, (uint16_t)l4_len);
	pi->pkt_len = (uint16_t)total;
	pkt_fix_checksums(frame, pi);
	return (int)total;
}
