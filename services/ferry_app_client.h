/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libferry_app: the client library for ferry application services (see
 * ferry_app(3) and ferry_app.h, the protocol and area layout it follows).
 *
 * A separate header from ferry_app.h on purpose: ferry_app.h is the wire
 * contract ferryd and every client implementation share, this is one
 * implementation's API.  Applications include only this one (it includes
 * the contract); both are installed under <ferry/>.
 *
 * Every function returns 0 (or a count) or -errno.  No global state: any
 * number of handles, each used by one thread at a time.
 */
#ifndef FERRY_APP_CLIENT_H
#define FERRY_APP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_app.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_app;

/* One packet received from a slot: its payload in the shared area. */
struct ferry_app_pkt {
	uint8_t *data;  /* payload, writable up to cap bytes */
	uint32_t len;   /* payload bytes; the application may change it (<= cap) */
	uint32_t cap;   /* most the payload may grow to */
	/* private: where the packet goes back to; leave unchanged */
	uint32_t queue;
	uint32_t frame;
	uint32_t cookie;
};

/*
 * Attaches to `slot` through ferryd's control socket (NULL:
 * FERRY_CONTROL_SOCKET).  On failure returns -errno and, when errlen > 0,
 * puts why in err (ferryd's message when it refused: -EACCES, -ENOENT,
 * -EBUSY, -EAGAIN; -EPROTO when the reply or the area is malformed).
 * ferryd's -EAGAIN (the slot's last application still being released) is
 * tried again every 10 ms for up to a second before it is returned.
 */
int ferry_app_attach(const char *control_socket, const char *slot, struct ferry_app **out,
		     char *err, size_t errlen);

/*
 * The same on a control connection already open (ctl_fd, SOCK_SEQPACKET),
 * e.g. one a launcher connected before it confined the application, or
 * handed over by socket activation.  The handle owns ctl_fd from here on,
 * failure included.  One connection, one try: -EAGAIN is returned at once.
 */
int ferry_app_attach_fd(int ctl_fd, const char *slot, struct ferry_app **out, char *err,
			size_t errlen);

/*
 * Up to max packets from all the slot's queues.  When none is waiting,
 * asks ferryd for a wake-up (need-wakeup) and sleeps on the wake-up
 * eventfd up to timeout_ms (< 0: no limit, 0: do not sleep).  Returns the
 * count, 0 on timeout, -EINTR when a signal interrupted the wait,
 * -ENOTCONN when ferryd closed the connection (the slot was detached:
 * detach and attach again).  A return of 0 leaves the wake-up asked for,
 * so ferry_app_fd() becomes readable when packets arrive (epoll users:
 * call recv with timeout 0 until it returns 0, then wait on the fd).
 */
int ferry_app_recv(struct ferry_app *a, struct ferry_app_pkt *pkts, unsigned int max,
		   int timeout_ms);

/*
 * Returns n received packets to ferryd, verdicts[i] FERRY_APP_PASS or
 * FERRY_APP_DROP (NULL: all PASS), pkts[i].len as the payload now is.
 * All or nothing: -EINVAL (a packet not from ferry_app_recv on this handle,
 * a len over cap, a bad verdict) or -ENOBUFS (a ring full: cannot happen
 * when every packet is returned exactly once, since a ring holds as many
 * entries as its queue has frames) and nothing is returned.
 */
int ferry_app_done(struct ferry_app *a, const struct ferry_app_pkt *pkts, unsigned int n,
		   const uint8_t *verdicts);

/*
 * Emits a new packet on the slot's flow: len bytes of data (copied) as
 * the payload of a packet with the headers of ref, a UDP packet received
 * from ferry_app_recv() on this handle and not yet returned with
 * ferry_app_done() (so: before ref's own ferry_app_done()).  ferryd sends
 * it on along the chain after the slot, ahead of ref, as a packet of ref's
 * session and direction.  At most FERRY_APP_MAX_EMITS per ref; ferryd
 * counts more, a TCP ref or a payload too long for its frame in bad_desc,
 * and one it has no free frame for in emit_dropped.  Returns 0, -EINVAL
 * (ref not from this handle, len over the frame size), -ENOBUFS (FROM_APP
 * full: return packets first), -EOPNOTSUPP (ferryd has no emit frames).
 */
int ferry_app_emit(struct ferry_app *a, const struct ferry_app_pkt *ref, const void *data,
		   uint32_t len);

/* The wake-up pipe's read end, for an application's own epoll loop (readable: call recv; nonblocking). */
int ferry_app_fd(const struct ferry_app *a);

/* The queues' count (ferryd's workers). */
unsigned int ferry_app_nr_queues(const struct ferry_app *a);

/* Descriptors ferryd put on TO_APP that were malformed (returned as DROP). */
uint64_t ferry_app_bad_descs(const struct ferry_app *a);

/* Closes the connection (ferryd detaches the slot) and frees the handle; NULL is fine. */
void ferry_app_detach(struct ferry_app *a);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_APP_CLIENT_H */
