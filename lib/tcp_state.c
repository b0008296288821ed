// SPDX-License-Identifier: BSD-2-Clause
/*
 * TCP session states for full NAT.
 *
 *   NONE --client SYN--> SYN_SENT --upstream SYN(-ACK)--> SYN_RECV
 *        --client ACK--> ESTABLISHED --FIN one way, acked--> FIN_WAIT
 *        --FIN the other way, acked--> TIME_WAIT
 *   any state --RST either way, in the window and exact--> CLOSED
 *   TIME_WAIT or CLOSED --client SYN--> SYN_SENT (the tuple is reused)
 *
 * SYN_SENT and SYN_RECV use the syn timeout, ESTABLISHED the established
 * one, FIN_WAIT, TIME_WAIT and CLOSED the closing one.  A session is removed
 * only when it has been idle for its state's timeout, so retransmissions and
 * late segments after a FIN or RST still translate until then.
 *
 * Sequence windows, per direction, as Linux conntrack tracks them
 * (nf_conntrack_proto_tcp.c, after Rooij's "Real stateful TCP packet
 * filtering in IP Filter"): for each side, the highest seq + length it sent
 * (end), the highest ack + window its peer advertised (maxend: how far it
 * may send), its largest window (maxwin, scaled by the window scale both
 * SYNs announced, RFC 7323) and the highest ack it sent (maxack).  A
 * segment is in the window when
 *   I   seq <= sender.maxend              (within what the receiver allows)
 *   II  end >= sender.end - receiver.maxwin  (not older than a window)
 *   III ack <= receiver.end + 1           (acks nothing not yet sent)
 *   IV  ack >= receiver.end - max(sender.maxwin, 66000)
 * and only segments in the window move the windows, so spoofed segments
 * cannot widen them.  The checks gate RST and FIN only:
 * - A RST outside the window is dropped (tcp_out_of_window) and changes
 *   nothing: a blind sender who knows the tuple but not the sequence
 *   numbers can no longer cut a session to the closing timeout.
 * - A FIN outside the window is forwarded for the end host to judge and
 *   changes nothing either (it is not recorded, so no ack can make it
 *   count).  Dropping it would gain nothing, as a FIN never moves the state
 *   by itself (below), and would cost much when ferry's view of the window
 *   is behind the hosts' (a window ferry did not see grow): the last data
 *   segment often carries the FIN, and a dropped one is retransmitted into
 *   the same drop until the connection times out.
 * - A RST in the window closes the session when its seq is exactly what the
 *   receiver expects as far as ferry saw (the sender's end, or the highest
 *   ack the receiver sent), or while the handshake is still open.  A RST
 *   in the window but not exact is forwarded without closing: the receiver
 *   answers it with a challenge ACK (RFC 5961 3.2) and a real peer then
 *   resets exactly.  This is what conntrack does since Linux 5.x; a guess
 *   must hit one of two values out of 2^32 to close a session, and one of
 *   about two windows' worth to reach the end host at all.
 * - Before the upstream's SYN-ACK there is nothing to check its segments
 *   against: a RST from it is taken only with an ACK of the client's SYN
 *   (RFC 793, SYN-SENT), a FIN not at all.
 * - A FIN in the window moves nothing at once: its end (seq + length + 1)
 *   is recorded, and the session goes to FIN_WAIT (TIME_WAIT for the
 *   second) only when a segment of the peer in the window acknowledges it
 *   (ACK set, ack >= that end).  A blind FIN, in the window by luck, is
 *   acknowledged by nobody: the receiver does not take a FIN past its next
 *   expected byte as a close, so the session keeps its state and its
 *   timeout.  Data from the same side past a recorded FIN proves that FIN
 *   was not its last segment (a real sender sends nothing after its FIN),
 *   and forgets it, so traffic that later flows past a blind FIN's
 *   position cannot make its peer's ordinary acks count for it.
 * - A RST and a segment without ACK (other than a SYN) never move the
 *   windows: a RST carries no window worth believing, and an ACK-less
 *   segment's ack is taken as the receiver's end for the checks above, so
 *   checks III and IV say nothing about it; believing its window field
 *   would let any in-window guess widen the window (up to 1 GiB scaled) for
 *   later blind segments.
 * - Any other segment is forwarded whatever its sequence numbers; the end
 *   hosts judge them.
 *
 * This is still less than a conntrack, on purpose:
 * - No SACK blocks: acks are read as cumulative (check III needs nothing
 *   more, and a sender's window ends at its cumulative ack plus window).
 * - Only a client's SYN creates a session (svc_forward): there is no pick-up
 *   of connections in mid-stream, so connections open across a ferryd restart
 *   are lost.  The upstream can never open one.
 * - A half-closed connection (FIN_WAIT) gets the closing timeout, not a long
 *   one.  A FIN whose acknowledgement ferry never sees (the peer died)
 *   leaves the session in its state, with that state's timeout.
 * - Simultaneous open is not modelled: any SYN from the upstream in SYN_SENT
 *   counts as its SYN-ACK.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <netinet/in.h>

#include "csum.h"
#include "tcp_state.h"

#define TCP_HLEN 20
#define TCP_CSUM_OFF 16
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOLEN_MSS 4
#define TCPOPT_WSCALE 3
#define TCPOLEN_WSCALE 3
#define TCP_MAX_WSCALE 14 /* RFC 7323 2.3: larger values are used as 14 */
#define MAXACKWIN_MIN 66000 /* conntrack's MAXACKWINCONST */

enum tcp_conn_state tcp_track_update(struct tcp_track *t, enum tcp_dir dir, uint8_t flags)
{
	enum tcp_conn_state st = t->state;

	if (flags & TCP_FLAG_RST) {
		t->state = TCP_ST_CLOSED;
		return TCP_ST_CLOSED;
	}
	if (dir == TCP_DIR_CLIENT && tcp_flags_open(flags)) {
		/* A retransmitted SYN changes nothing; one after the close starts over. */
		if (st == TCP_ST_NONE || st == TCP_ST_TIME_WAIT || st == TCP_ST_CLOSED) {
			t->state = TCP_ST_SYN_SENT;
			t->fin_seen = 0;
			t->fin_sent = 0;
		}
		return t->state;
	}
	/* Before a SYN and after a RST only a new client SYN means anything. */
	if (st == TCP_ST_NONE || st == TCP_ST_CLOSED)
		return st;
	if (dir == TCP_DIR_UPSTREAM && (flags & TCP_FLAG_SYN)) {
		if (st == TCP_ST_SYN_SENT)
			st = TCP_ST_SYN_RECV;
	} else if (dir == TCP_DIR_CLIENT && (flags & TCP_FLAG_ACK) && st == TCP_ST_SYN_RECV) {
		st = TCP_ST_ESTABLISHED;
	}
	if (flags & TCP_FLAG_FIN) {
		t->fin_seen |= (uint8_t)(1u << dir);
		st = t->fin_seen == 3 ? TCP_ST_TIME_WAIT : TCP_ST_FIN_WAIT;
	}
	t->state = (uint8_t)st;
	return st;
}

uint64_t tcp_state_timeout(enum tcp_conn_state state, const struct tcp_timeouts *to)
{
	switch (state) {
	case TCP_ST_ESTABLISHED:
		return to->established_ns;
	case TCP_ST_FIN_WAIT:
	case TCP_ST_TIME_WAIT:
	case TCP_ST_CLOSED:
		return to->closing_ns;
	default:
		/* NONE never lasts past the first segment; treat it as opening. */
		return to->syn_ns;
	}
}

const char *tcp_state_str(enum tcp_conn_state state)
{
	static const char *const names[TCP_ST__MAX] = {
	    [TCP_ST_NONE] = "none",	    [TCP_ST_SYN_SENT] = "syn_sent",
	    [TCP_ST_SYN_RECV] = "syn_recv", [TCP_ST_ESTABLISHED] = "established",
	    [TCP_ST_FIN_WAIT] = "fin_wait", [TCP_ST_TIME_WAIT] = "time_wait",
	    [TCP_ST_CLOSED] = "closed",
	};

	if ((unsigned int)state >= TCP_ST__MAX)
		return "unknown";
	return names[state];
}

/*
 * Next option at *off of the `hlen`-byte header `th`: its kind, and its
 * length (1 for EOL/NOP).  Returns 0, 1 at the end of the list, or -EBADMSG
 * when the option does not fit the header or has an impossible length.
 */
static int next_opt(const uint8_t *th, uint32_t hlen, uint32_t off, uint8_t *kind, uint32_t *len)
{
	if (off >= hlen || th[off] == TCPOPT_EOL)
		return 1;
	*kind = th[off];
	if (*kind == TCPOPT_NOP) {
		*len = 1;
		return 0;
	}
	if (hlen - off < 2)
		return -EBADMSG;
	*len = th[off + 1];
	if (*len < 2 || *len > hlen - off)
		return -EBADMSG;
	if (*kind == TCPOPT_MSS && *len != TCPOLEN_MSS)
		return -EBADMSG;
	return 0;
}

static inline bool seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool seq_after(uint32_t a, uint32_t b)
{
	return seq_before(b, a);
}

/* A side's first SYN (or a SYN with a new ISN during the handshake). */
static void win_init(struct tcp_win *w, const struct tcp_seg *seg, uint32_t end)
{
	w->end = end;
	w->maxend = end;
	w->maxwin = seg->win ? seg->win : 1;
	w->maxack = 0;
	w->scale = seg->wscale >= 0 ? (uint8_t)seg->wscale : 0;
	w->flags = TCP_WIN_SEEN | (seg->wscale >= 0 ? TCP_WIN_SCALE : 0);
}

/* Checks I-IV of the comment at the top, for a segment whose sender is seen. */
static bool in_window(const struct tcp_win *s, const struct tcp_win *r, uint32_t seq, uint32_t end,
		      uint32_t ack)
{
	uint32_t maxackwin = s->maxwin > MAXACKWIN_MIN ? s->maxwin : MAXACKWIN_MIN;

	if (seq_after(seq, s->maxend))
		return false;
	if (!(r->flags & TCP_WIN_SEEN))
		return true;
	return seq_after(end, s->end - r->maxwin - 1) && !seq_after(ack, r->end + 1) &&
	       !seq_before(ack, r->end - maxackwin - 1);
}

/* An accepted segment moves the windows (conntrack's "update sender/receiver data"). */
static void win_update(struct tcp_win *s, struct tcp_win *r, const struct tcp_seg *seg,
		       uint32_t end, uint32_t ack)
{
	uint32_t win = seg->win;

	/* The window of a SYN is never scaled. */
	if (!(seg->flags & TCP_FLAG_SYN))
		win <<= s->scale;
	if (s->maxwin < win)
		s->maxwin = win;
	if (seq_after(end, s->end))
		s->end = end;
	if ((seg->flags & TCP_FLAG_ACK) &&
	    (!(s->flags & TCP_WIN_MAXACK) || seq_after(ack, s->maxack))) {
		s->maxack = ack;
		s->flags |= TCP_WIN_MAXACK;
	}
	/* Data past the limit that still passed check I: the receiver's window grew. */
	if ((r->flags & TCP_WIN_SEEN) && seq_after(end, s->maxend))
		r->maxwin += end - s->maxend;
	if (seq_after(ack + win, r->maxend - 1)) {
		r->maxend = ack + win;
		if (!win)
			r->maxend++;
	}
}

/*
 * The FINs of an accepted segment seen in `dir` that is neither a RST nor
 * refused: first its ack of the peer's FIN, if it acknowledges that (the
 * state moves now), then its own FIN, which is only recorded (see the
 * comment at the top).
 */
static void fin_track(struct tcp_track *t, enum tcp_dir dir, const struct tcp_seg *seg,
		      uint32_t end)
{
	uint8_t me = (uint8_t)(1u << dir), peer = (uint8_t)(1u << !dir);

	if ((seg->flags & TCP_FLAG_ACK) && (t->fin_sent & peer) &&
	    !seq_before(seg->ack, t->fin_end[!dir])) {
		t->fin_sent &= (uint8_t)~peer;
		tcp_track_update(t, (enum tcp_dir)!dir, TCP_FLAG_FIN);
	}
	if (t->fin_seen & me)
		return;
	/* Sending past its FIN: that FIN was not this side's last segment. */
	if ((t->fin_sent & me) && seq_after(end, t->fin_end[dir]))
		t->fin_sent &= (uint8_t)~me;
	/* The lowest FIN not contradicted by later data is the one to be acked. */
	if ((seg->flags & TCP_FLAG_FIN) &&
	    (!(t->fin_sent & me) || seq_before(end, t->fin_end[dir]))) {
		t->fin_end[dir] = end;
		t->fin_sent |= me;
	}
}

enum tcp_verdict tcp_track_segment(struct tcp_track *t, enum tcp_dir dir, const struct tcp_seg *seg)
{
	struct tcp_win *s = &t->win[dir], *r = &t->win[!dir];
	enum tcp_conn_state st = t->state;
	uint8_t flags = seg->flags;
	uint32_t seq = seg->seq, ack = seg->ack, end;
	bool rst = flags & TCP_FLAG_RST, fin = flags & TCP_FLAG_FIN, exact;

	end = seq + seg->len + !!(flags & TCP_FLAG_SYN) + fin;

	/* A client SYN that opens the connection, or reuses the tuple after a close. */
	if (dir == TCP_DIR_CLIENT && tcp_flags_open(flags) &&
	    (st == TCP_ST_NONE || st == TCP_ST_TIME_WAIT || st == TCP_ST_CLOSED)) {
		memset(t->win, 0, sizeof(t->win));
		t->challenged = 0;
		win_init(s, seg, end);
		tcp_track_update(t, dir, flags);
		return TCP_ACCEPT;
	}
	if ((flags & TCP_FLAG_SYN) && !rst &&
	    (!(s->flags & TCP_WIN_SEEN) ||
	     (seq_after(end, s->end) && (st == TCP_ST_SYN_SENT || st == TCP_ST_SYN_RECV)))) {
		win_init(s, seg, end);
		/* RFC 7323: scaling only when both SYNs carried the option. */
		if (!(s->flags & r->flags & TCP_WIN_SCALE))
			s->scale = r->scale = 0;
	} else if (!(s->flags & TCP_WIN_SEEN)) {
		/* No SYN from this side yet: nothing to check its sequence numbers against. */
		if (fin || (rst && !((flags & TCP_FLAG_ACK) && (r->flags & TCP_WIN_SEEN) &&
				     ack == r->end)))
			return TCP_OUT_OF_WINDOW;
		/* An ACK that acknowledges none of ours: its sender's answer to a SYN it refuses. */
		if ((flags & TCP_FLAG_ACK) && !rst) {
			t->challenged |= (uint8_t)(1u << dir);
			t->challenge_ack[dir] = ack;
		}
		/* Its acks are not believed either: they acknowledge no FIN. */
		tcp_track_update(t, dir, flags);
		return TCP_ACCEPT;
	}

	/*
	 * The RST a host sends back for that ACK (RFC 9293: its sequence is the
	 * ACK's acknowledgement): it clears the other host's TIME_WAIT so that
	 * the SYN, sent again, opens the connection.  A NAT that reused a port
	 * still in an upstream's TIME_WAIT needs it through: dropped, the
	 * connection never opens.  Only that exact sequence, only before the
	 * peer's SYN: no blind sender can aim at a connection that works.
	 */
	if (rst && st == TCP_ST_SYN_SENT && (t->challenged & (1u << !dir)) &&
	    seq == t->challenge_ack[!dir]) {
		t->challenged &= (uint8_t)~(1u << !dir);
		tcp_track_update(t, dir, flags);
		return TCP_ACCEPT;
	}
	/* No ACK (or a RST's broken zero ACK): as if it acked all it could. */
	if (!(flags & TCP_FLAG_ACK) || (rst && !ack))
		ack = r->end;
	if (!in_window(s, r, seq, end, ack)) {
		if (rst)
			return TCP_OUT_OF_WINDOW;
		/* Forwarded for the end hosts to judge (a FIN too); moves neither windows nor state. */
		return TCP_ACCEPT;
	}
	/* Exact: what the sender would send next, or what the receiver acked last. */
	exact = seq == s->end || ((r->flags & TCP_WIN_MAXACK) && seq == r->maxack);
	if (rst) {
		/* In the window but not exact: the receiver sends a challenge ACK (RFC 5961). */
		if (st < TCP_ST_ESTABLISHED || exact)
			tcp_track_update(t, dir, flags);
		return TCP_ACCEPT;
	}
	/* Only what acknowledges something has a window worth believing (see the top). */
	if (flags & (TCP_FLAG_ACK | TCP_FLAG_SYN))
		win_update(s, r, seg, end, ack);
	tcp_track_update(t, dir, flags & ~TCP_FLAG_FIN);
	fin_track(t, dir, seg, end);
	return TCP_ACCEPT;
}

void tcp_track_resync(struct tcp_track *t, enum tcp_dir dir, uint32_t seq_end, uint32_t ack,
		      uint16_t win)
{
	struct tcp_win *s = &t->win[dir], *r = &t->win[!dir];
	uint32_t w = (uint32_t)win << s->scale;

	if (!(s->flags & TCP_WIN_SEEN))
		return;
	s->end = seq_end;
	if (s->maxwin < w)
		s->maxwin = w;
	s->maxack = ack;
	s->flags |= TCP_WIN_MAXACK;
	r->maxend = ack + (w ? w : 1);
	/* What it sent was within what the peer allowed, whatever we last saw of that. */
	if (seq_after(s->end, s->maxend))
		s->maxend = s->end;
}

int tcp_seg_parse(const uint8_t *frame, const struct pkt_info *pi, struct tcp_seg *seg)
{
	const uint8_t *th = frame + pi->l4_off;
	uint32_t hlen = (uint32_t)pi->payload_off - pi->l4_off, off, len;
	uint8_t kind;
	int err;

	seg->seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
	seg->ack = (uint32_t)th[8] << 24 | (uint32_t)th[9] << 16 | (uint32_t)th[10] << 8 | th[11];
	seg->flags = th[13];
	seg->win = (uint16_t)(th[14] << 8 | th[15]);
	/* The parser trimmed pkt_len to the IP length and checked the data offset. */
	seg->len = (uint32_t)pi->pkt_len - pi->payload_off;
	seg->wscale = -1;
	if (!(seg->flags & TCP_FLAG_SYN))
		return 0;
	for (off = TCP_HLEN; !(err = next_opt(th, hlen, off, &kind, &len)); off += len) {
		if (kind != TCPOPT_WSCALE)
			continue;
		if (len != TCPOLEN_WSCALE)
			return -EBADMSG;
		seg->wscale = (int8_t)(th[off + 2] > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : th[off + 2]);
	}
	if (err < 0) {
		seg->wscale = -1;
		return err;
	}
	return 0;
}

/*
 * Store `val` at `off` (any parity) and update the checksum over the aligned
 * 16-bit words those two bytes fall in: at an odd offset they straddle two.
 */
static void put16_csum(uint8_t *th, uint32_t off, uint16_t val)
{
	uint32_t w0 = off & ~1u, w1 = (off + 3) & ~1u;
	uint16_t csum, from, to;
	uint8_t old[4];

	memcpy(old, th + w0, w1 - w0);
	th[off] = (uint8_t)(val >> 8);
	th[off + 1] = (uint8_t)val;
	memcpy(&csum, th + TCP_CSUM_OFF, 2);
	for (uint32_t w = w0; w < w1; w += 2) {
		memcpy(&from, old + (w - w0), 2);
		memcpy(&to, th + w, 2);
		csum_replace2(&csum, from, to);
	}
	memcpy(th + TCP_CSUM_OFF, &csum, 2);
}

int tcp_mss_clamp(uint8_t *frame, const struct pkt_info *pi, uint16_t mtu)
{
	uint32_t ip_hlen = pi->family == 4 ? 20 : 40;
	uint8_t *th = frame + pi->l4_off;
	uint32_t hlen, off, len;
	uint16_t max_mss;
	uint8_t kind;
	int err, n = 0;

	if (pi->l4_proto != IPPROTO_TCP || !(th[13] & TCP_FLAG_SYN))
		return 0;
	if (mtu <= ip_hlen + TCP_HLEN)
		return 0;
	max_mss = (uint16_t)(mtu - ip_hlen - TCP_HLEN);
	/* The parser checked that the data offset lies inside the packet. */
	hlen = (uint32_t)pi->payload_off - pi->l4_off;

	/* Validate the whole list first: a malformed one is left as it came. */
	for (off = TCP_HLEN; !(err = next_opt(th, hlen, off, &kind, &len)); off += len)
		;
	if (err < 0)
		return err;
	for (off = TCP_HLEN; !next_opt(th, hlen, off, &kind, &len); off += len) {
		if (kind != TCPOPT_MSS)
			continue;
		if ((uint16_t)(th[off + 2] << 8 | th[off + 3]) <= max_mss)
			continue;
		put16_csum(th, off + 2, max_mss);
		n++;
	}
	return n;
}
