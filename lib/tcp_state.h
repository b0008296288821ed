/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * TCP session tracking for full NAT, and MSS clamping.
 *
 * A NAT session of a TCP flow follows the connection through a small state
 * machine fed by the flags of the segments seen in both directions.  The
 * state only chooses how long an idle session is kept (three timeouts: syn,
 * established, closing); it never makes ferry drop or alter a segment of a
 * session that exists.  See tcp_state.c for the states and for what this
 * deliberately leaves out compared with a conntrack.
 */
#ifndef FERRY_TCP_STATE_H
#define FERRY_TCP_STATE_H

#include <stdint.h>

#include "packet.h"

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

enum tcp_conn_state {
	TCP_ST_NONE = 0,    /* not a TCP session, or nothing seen yet */
	TCP_ST_SYN_SENT,    /* client SYN seen */
	TCP_ST_SYN_RECV,    /* upstream SYN(-ACK) seen */
	TCP_ST_ESTABLISHED, /* client ACK after the upstream SYN */
	TCP_ST_FIN_WAIT,    /* FIN seen in one direction (half close) */
	TCP_ST_TIME_WAIT,   /* FIN seen in both directions */
	TCP_ST_CLOSED,	    /* RST seen in either direction */
	TCP_ST__MAX
};

enum tcp_dir {
	TCP_DIR_CLIENT = 0, /* client -> upstream */
	TCP_DIR_UPSTREAM,   /* upstream -> client */
};

/* Per-session tracking state, embedded in struct nat_session. */
struct tcp_track {
	uint8_t state;	  /* enum tcp_conn_state */
	uint8_t fin_seen; /* bit (1 << enum tcp_dir): that side sent a FIN */
};

/* Idle timeouts per state class, in nanoseconds. */
struct tcp_timeouts {
	uint64_t syn_ns;
	uint64_t established_ns;
	uint64_t closing_ns;
};

/* TCP flags of a parsed TCP packet (the parser guarantees the header is there). */
static inline uint8_t tcp_flags(const uint8_t *frame, const struct pkt_info *pi)
{
	return frame[pi->l4_off + 13];
}

/* A connection opener: SYN without ACK (and without RST). */
static inline int tcp_flags_open(uint8_t flags)
{
	return (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN;
}

/* Feeds the flags of one segment seen in `dir`; returns the new state. */
enum tcp_conn_state tcp_track_update(struct tcp_track *t, enum tcp_dir dir, uint8_t flags);
/* The idle timeout that applies in `state`. */
uint64_t tcp_state_timeout(enum tcp_conn_state state, const struct tcp_timeouts *to);
const char *tcp_state_str(enum tcp_conn_state state);

/*
 * On a segment with SYN set, lower every MSS option above what an egress
 * MTU of `mtu` carries (mtu - fixed IP header - 20) to that value and fix the
 * TCP checksum incrementally.  Returns the number of options lowered (0 also
 * for a segment without SYN, without MSS option, or when mtu is 0), or
 * -EBADMSG for a malformed option list, which is then left unchanged.
 */
int tcp_mss_clamp(uint8_t *frame, const struct pkt_info *pi, uint16_t mtu);

#endif /* FERRY_TCP_STATE_H */
