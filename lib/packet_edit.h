/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helpers for services that change a packet beyond a NAT rewrite: a new
 * UDP payload length (compress, decompress) or edited bytes.  Lengths are
 * fixed in every header that carries one and checksums are recomputed from
 * scratch, since the payload itself changed.
 */
#ifndef FERRY_PACKET_EDIT_H
#define FERRY_PACKET_EDIT_H

#include <stdint.h>

#include "packet.h"

/*
 * Sets a parsed UDP packet's payload length to `len`: IPv4 total length or
 * IPv6 payload length, UDP length, pi->pkt_len, then both checksums.  `room`
 * is how many bytes the frame holds from its start.  Returns the new frame
 * length, or -EMSGSIZE (no room, or over 65535), -EINVAL (not UDP).
 */
int pkt_set_udp_payload_len(uint8_t *frame, struct pkt_info *pi, uint32_t room, uint32_t len);
/* Recomputes the IPv4 header checksum (v4) and the UDP/TCP checksum. */
void pkt_fix_checksums(uint8_t *frame, const struct pkt_info *pi);

#endif /* FERRY_PACKET_EDIT_H */
