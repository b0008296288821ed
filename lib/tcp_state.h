/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * TCP session tracking for full NAT, and MSS clamping.
 *
 * A NAT session of a TCP flow follows the connection through a small state
 * machine fed by the flags of the segments seen in both directions.  The
 * state chooses how long an idle session is kept (three timeouts: syn,
 * established, closing).  Each direction's sequence window is tracked as
 * Linux conntrack does, so that a RST or FIN outside it (a blind injection
 * by an off-path sender) is dropped instead of closing the session; every
 * other segment of a session that exists is forwarded.  See tcp_state.c for
 * the states, the window rules and what this leaves out compared with a
 * conntrack.
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

/* What one side of the connection sent and was allowed to send (conntrack's td_*). */
struct tcp_win {
	uint32_t end;	 /* highest seq + length this side sent (td_end) */
	uint32_t maxend; /* highest ack + window the peer advertised: how far this side may send */
	uint32_t maxwin; /* largest window this side advertised, scaled (td_maxwin) */
	uint32_t maxack; /* highest ack this side sent (td_maxack) */
	uint8_t scale;	 /* window scale this side announced in its SYN; 0 unless both did */
	uint8_t flags;	 /* TCP_WIN_* */
};

#define TCP_WIN_SEEN 0x01  /* end, maxend and maxwin are set */
#define TCP_WIN_SCALE 0x02 /* its SYN carried a window scale option */
#define TCP_WIN_MAXACK 0x04 /* maxack is set */

/* Per-session tracking state, embedded in struct nat_session. */
struct tcp_track {
	uint8_t state;	  /* enum tcp_conn_state */
	uint8_t fin_seen; /* bit (1 << enum tcp_dir): that side's FIN, acknowledged by its peer */
	uint8_t fin_sent; /* bit (1 << enum tcp_dir): that side sent a FIN not acknowledged yet */
	/*
	 * bit (1 << enum tcp_dir): that side, before its own SYN, sent an ACK
	 * (ack in challenge_ack): a host answering a SYN for a tuple its
	 * TIME_WAIT still holds (RFC 9293 3.10.7.4), whose peer then resets
	 * with exactly that sequence number.
	 */
	uint8_t challenged;
	struct tcp_win win[2]; /* by enum tcp_dir of the sender */
	uint32_t fin_end[2];   /* by enum tcp_dir: the sequence just past its FIN (fin_sent) */
	uint32_t challenge_ack[2]; /* by enum tcp_dir of the ACK's sender (challenged) */
};

/* The fields of one TCP segment the tracking reads (tcp_seg_parse()). */
struct tcp_seg {
	uint32_t seq, ack;
	uint32_t len;	/* payload bytes */
	uint16_t win;	/* the window field, unscaled */
	uint8_t flags;
	int8_t wscale;	/* a SYN's window scale option (0-14), or -1 */
};

/* What tcp_track_segment() makes of a segment. */
enum tcp_verdict {
	TCP_ACCEPT = 0,	      /* forward it; the state and windows have moved */
	TCP_OUT_OF_WINDOW,    /* a RST or FIN outside the window: drop it, change nothing */
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

/*
 * The state machine alone: feeds the flags of one segment seen in `dir`;
 * returns the new state.  No window check: tcp_track_segment() calls this
 * for the segments it accepts.  A FIN in `flags` stands for a FIN of `dir`
 * that its peer has acknowledged: tcp_track_segment() feeds it only then,
 * never with the FIN segment itself.
 */
enum tcp_conn_state tcp_track_update(struct tcp_track *t, enum tcp_dir dir, uint8_t flags);
/*
 * The fields of a parsed TCP packet's segment; 0, or -EBADMSG when its
 * option list is malformed (the window scale is then taken as absent).
 */
int tcp_seg_parse(const uint8_t *frame, const struct pkt_info *pi, struct tcp_seg *seg);
/*
 * One segment seen in `dir`: checked against the tracked windows, then (if
 * accepted) fed to the windows and the state machine.  Only a RST or a FIN
 * is ever refused; other segments outside the window are accepted without
 * moving the windows (the end hosts judge them), so a spoofed segment
 * cannot widen the window for a later RST.  Neither do a RST or a segment
 * without ACK (SYNs aside).  A FIN in the window is only recorded; the
 * state moves when the peer acknowledges it.
 */
enum tcp_verdict tcp_track_segment(struct tcp_track *t, enum tcp_dir dir,
				   const struct tcp_seg *seg);
/*
 * What the sender in `dir` last sent while its segments bypassed the
 * tracking (the XDP fast path forwards established connections without
 * a worker): the end of its last segment, its ack and its unscaled window.
 * Set, not merged: after gigabytes the tracked values are too old for
 * sequence comparisons.  The FINs and RSTs that come after are checked
 * against these.
 */
void tcp_track_resync(struct tcp_track *t, enum tcp_dir dir, uint32_t seq_end, uint32_t ack,
		      uint16_t win);
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
