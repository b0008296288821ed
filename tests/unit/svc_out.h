/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What a service sent, read back for tests: a frame the harness captured,
 * parsed again from its bytes, its IP and L4 checksums verified from
 * scratch (csum_verify(), never the incremental code under test), and its
 * addresses, ports, MACs, TTL and payload laid out for comparison.
 */
#ifndef FERRY_SVC_OUT_H
#define FERRY_SVC_OUT_H

#include <stdbool.h>
#include <stdint.h>

#include "svc_harness.h"

struct svc_out {
	char src[64], dst[64]; /* inet_ntop() text */
	uint16_t sport, dport;
	uint8_t ttl;
	uint8_t proto;
	uint8_t dst_mac[6], src_mac[6];
	const uint8_t *payload; /* into the harness_out */
	uint32_t payload_len;
	uint16_t port; /* ferry port it left on */
	bool csum_ok;  /* both checksums valid, computed from scratch */
};

/* 0 when the frame parses (see csum_ok for its checksums), -1 when it does not. */
int svc_out_read(const struct harness_out *o, struct svc_out *out);
/* True when `mac` is harness__neigh_mac(addr). */
bool svc_out_mac_of(const uint8_t mac[6], const char *addr);

#endif /* FERRY_SVC_OUT_H */
