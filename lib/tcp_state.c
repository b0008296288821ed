// SPDX-License-Identifier: BSD-2-Clause
/*
 * TCP session states for full NAT.
 *
 *   NONE --client SYN--> SYN_SENT --upstream SYN(-ACK)--> SYN_RECV
 *        --client ACK--> ESTABLISHED --FIN one way--> FIN_WAIT
 *        --FIN the other way--> TIME_WAIT
 *   any state --RST either way--> CLOSED
 *   TIME_WAIT or CLOSED --client SYN--> SYN_SENT (the tuple is reused)
 *
 * SYN_SENT and SYN_RECV use the syn timeout, ESTABLISHED the established
 * one, FIN_WAIT, TIME_WAIT and CLOSED the closing one.  A session is removed
 * only when it has been idle for its state's timeout, so retransmissions and
 * late segments after a FIN or RST still translate until then.
 *
 * This is much less than a conntrack, on purpose:
 * - No sequence or window tracking.  Every segment of a session is forwarded
 *   whatever its state; the end hosts judge sequence numbers.  So any RST
 *   with the session's tuple moves it to CLOSED (a blind RST only shortens
 *   the session's idle timeout; it is forwarded to the host either way).
 * - Only a client's SYN creates a session (svc_forward): there is no pick-up
 *   of connections in mid-stream, so connections open across a ferryd restart
 *   are lost.  The upstream can never open one.
 * - A half-closed connection (FIN_WAIT) gets the closing timeout, not a long
 *   one, and both FINs lead straight to TIME_WAIT without waiting for the
 *   last ACK.
 * - Simultaneous open is not modelled: any SYN from the upstream in SYN_SENT
 *   counts as its SYN-ACK.
 */
#include <errno.h>
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
