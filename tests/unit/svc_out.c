// SPDX-License-Identifier: BSD-2-Clause
/* Reading back what services sent (see svc_out.h). */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "csum.h"
#include "packet.h"
#include "svc_out.h"

int svc_out_read(const struct harness_out *o, struct svc_out *out)
{
	struct pkt_info pi;
	int af;

	memset(out, 0, sizeof(*out));
	if (pkt_parse(o->data, o->len, &pi) != PKT_OK)
		return -1;
	af = pi.family == 4 ? AF_INET : AF_INET6;
	inet_ntop(af, pi.saddr.b, out->src, sizeof(out->src));
	inet_ntop(af, pi.daddr.b, out->dst, sizeof(out->dst));
	out->sport = pi.sport;
	out->dport = pi.dport;
	out->ttl = pi.ttl;
	out->proto = pi.l4_proto;
	memcpy(out->dst_mac, o->data, 6);
	memcpy(out->src_mac, o->data + 6, 6);
	out->payload = o->data + pi.payload_off;
	out->payload_len = pi.pkt_len - pi.payload_off;
	out->port = o->port;
	out->csum_ok = csum_verify(o->data, &pi) == 1;
	return 0;
}

bool svc_out_mac_of(const uint8_t mac[6], const char *addr)
{
	uint8_t want[6];

	harness__neigh_mac(addr, want);
	return !memcmp(mac, want, 6);
}
