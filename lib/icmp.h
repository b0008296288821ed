/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ICMP and ICMPv6 errors about NAT sessions.
 *
 * ferry sends a client's packet upstream as E:n -> U:u.  When a router on
 * the way, or the upstream itself, answers it with an error (destination or
 * port unreachable, time exceeded, parameter problem, packet too big), the
 * error goes to E and quotes E:n -> U:u.  The XDP program steers it when the
 * quote, reversed, matches a reply rule (ferry_icmp_error_key() in
 * bpf/ferry_match.h, which the worker's classification shares); forward then
 * finds the session by that reversed quote and rewrites the error into the
 * one the client would have got without ferry in the path: about C:c -> F:f,
 * addressed to C.  All other ICMP (ping to the proxy, errors about the
 * host's own traffic) never leaves the kernel.
 *
 * The rewrite touches a few words only; every checksum it affects is updated
 * incrementally (RFC 1624), since the quote is truncated and its L4
 * checksum could not be recomputed anyway.
 */
#ifndef FERRY_ICMP_H
#define FERRY_ICMP_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "ferry_match.h"
#include "nat.h"
#include "packet.h"

/* A parsed ICMP/ICMPv6 error: pkt_parse() accepts no other ICMP. */
static inline bool icmp_is_error(const struct pkt_info *pi)
{
	return pi->l4_proto == (pi->family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
}

/*
 * Turn `k`, filled from the error's outer header, into its classification
 * key (reply rules only).  0, or -ENOENT when the error cannot be about a
 * packet ferry sent: the XDP program would have passed it.
 */
int icmp_error_match_key(struct ferry_match_key *k, const struct pkt_info *pi);

/* The quote reversed: the tuple a reply on that session arrives with (nat_table__lookup_reply). */
void icmp_quote_reply_tuple(struct nat_tuple *t, const struct pkt_info *pi);

/*
 * Rewrite a parsed error about session `s`'s upstream packet in place into
 * the error for its client (see lib/icmp.c).  0, -EINVAL when the quote is
 * not `s`'s upstream tuple, -ETIMEDOUT when the hop limit would reach 0,
 * -EMSGSIZE when it exceeds the MTU towards the client.
 */
int icmp_rewrite_to_client(uint8_t *frame, const struct pkt_info *pi, const struct nat_session *s);

#endif /* FERRY_ICMP_H */
