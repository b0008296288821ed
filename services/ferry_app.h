/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ferry application services: the contract between ferryd and an
 * unprivileged application process that runs a flow's `app` service slot.
 *
 * This header is public (installed as ferry/ferry_app.h, libc only): the
 * client library (lib/ferry_app.c, libferry_app) and any other
 * implementation of the protocol (the Python binding, a Rust crate) follow
 * it.  It defines two things:
 *
 * 1. The control protocol, on ferryd's control socket (AF_UNIX,
 *    SOCK_SEQPACKET, config key `control_socket`, default
 *    FERRY_CONTROL_SOCKET).  One message per request, one per reply, host
 *    byte order.  An application sends FERRY_CTL_ATTACH naming a slot;
 *    ferryd checks the peer's credentials (SO_PEERCRED) against the slot's
 *    `owner` and answers with struct ferry_ctl_attach_reply and, on
 *    success, three descriptors (SCM_RIGHTS, in this order): the slot's
 *    packet area (a memfd to mmap MAP_SHARED, read and write, `area_size`
 *    bytes), the read end of a pipe ferryd writes a byte to to wake the
 *    application (a pipe, not an eventfd: its write end is ferryd's alone,
 *    so no application can make that write block), and an eventfd the
 *    application writes to wake ferryd.  The application stays
 *    attached while the connection is open: closing it (or dying) detaches.
 *    One application per slot at a time (-EBUSY for a second; -EAGAIN
 *    while the last one's area is still being released, briefly: ask again).
 *
 * 2. The packet area's layout.  It starts with struct ferry_app_area, then
 *    `nr_queues` queues (one per ferryd worker: each worker is the only
 *    producer and consumer of its queue's ferryd side, so nothing is
 *    locked), each a struct ferry_app_queue at area + queue_off[q]: a TO_APP
 *    ring (ferryd produces packets, the application consumes), a FROM_APP
 *    ring (the application produces verdicts, ferryd consumes), and
 *    `frames` frames of `frame_size` bytes.
 *
 * A packet in the area is its UDP or TCP payload only: headers stay in
 * ferryd, so an application cannot change where a packet goes or who it
 * claims to come from.  The application may rewrite the payload in place
 * and change its length (up to desc.cap; a TCP payload keeps its length,
 * cap == len: the session's sequence numbers cannot absorb a change, and a
 * PASS with another length is a bad descriptor), then returns the
 * descriptor on FROM_APP with a verdict:
 *   FERRY_APP_PASS  the packet, as the frame now holds it, goes on along the
 *                   flow's chain (ferryd fixes lengths and checksums)
 *   FERRY_APP_DROP  dropped, counted
 * Each descriptor ferryd put on TO_APP must come back exactly once, with its
 * `frame` and `cookie` unchanged.
 *
 * An application may also emit new packets (FERRY_APP_EMIT): a FROM_APP
 * descriptor whose `frame` and `cookie` name a packet it holds (received,
 * not yet returned: the reference), whose `emit_frame` names one of the
 * queue's `emit_frames` frames (at emit_frames_off, frame_size bytes each)
 * holding the new payload, and whose `len` is that payload's length (up to
 * frame_size).  ferryd copies the reference packet's headers into a fresh
 * frame of its own, puts the payload after them and sends the new packet
 * on along the chain after the slot, ahead of the reference: the same
 * session and direction, so an application never chooses an address or a
 * port.  UDP references only; at most FERRY_APP_MAX_EMITS emits per
 * reference; the reference itself still comes back exactly once, after
 * its emits.  An emit frame is the application's to write again once
 * ferryd has consumed the descriptor that named it (FROM_APP's consumer
 * passed it): emit_frames equals the FROM_APP ring's size, so using emit
 * frame (index & (size - 1)) for the descriptor at FROM_APP index `index`
 * is always safe.  A bad emit descriptor is counted (bad_desc) and ignored;
 * one ferryd has no free frame for is counted as emit_dropped.  A ferryd
 * without emit (emit_frames 0) counts every EMIT as bad.  ferryd validates every descriptor it
 * reads (frame index, cookie, length, verdict): a bad one is counted and
 * ignored, and a packet not returned within the slot's `timeout_ms` takes
 * the slot's `on_failure`; a slot that stalls three times in a row (packets
 * timing out in three timeout periods with no answer between them: the
 * packets of one stall count once) is detached.
 *
 * Rings are single-producer single-consumer with free-running 32-bit
 * indexes: the producer writes descriptors then publishes `producer` with a
 * release store; the consumer reads `producer` with an acquire load, reads
 * the descriptors, then publishes `consumer` with a release store.  Entry i
 * is desc[i & (size - 1)].  Wake-ups are needed only by a side that sleeps:
 * before blocking on its wake-up descriptor, a side sets FERRY_APP_RING_NEED_WAKEUP in
 * the `flags` of the ring it consumes and checks the ring once more; the
 * producer writes it only when it sees the flag (AF_XDP's
 * need_wakeup).  No syscall per packet on either side.
 *
 * ferryd's side sleeps too: a worker (in interrupt mode, the default) with
 * packets out at the application and nothing else to do sets the flag in
 * from_app.flags, looks at FROM_APP once more and sleeps on the eventfd,
 * bounded by the slot's timeout.  An application must therefore, after
 * publishing FROM_APP's producer, issue a full fence, read from_app.flags
 * and write the eventfd (any nonzero 8-byte value) when the flag is set;
 * one that never does has its verdicts taken only at ferryd's next timeout
 * scan (every timeout_ms / 8).  A worker in a busy-poll or spin mode never
 * sleeps and never sets the flag.
 */
#ifndef FERRY_APP_H
#define FERRY_APP_H

#include <stdint.h>

#define FERRY_CONTROL_SOCKET "/run/ferry/ferryd.sock"

#define FERRY_APP_MAGIC 0x46415050u /* "FAPP" */
#define FERRY_APP_VERSION 1
#define FERRY_APP_NAME_LEN 32

/* ---- control protocol ---- */

enum ferry_ctl_op {
	FERRY_CTL_ATTACH = 1,
};

struct ferry_ctl_request {
	uint32_t magic;        /* FERRY_APP_MAGIC */
	uint32_t version;      /* FERRY_APP_VERSION */
	uint32_t op;           /* enum ferry_ctl_op */
	uint32_t pad;
	char slot[FERRY_APP_NAME_LEN]; /* the `app` service's `name`, NUL-terminated */
};

struct ferry_ctl_attach_reply {
	uint32_t magic;
	uint32_t version;
	int32_t status;        /* 0, or -errno: -ENOENT no such slot, -EACCES not its owner, -EBUSY attached already, -EAGAIN the last one still detaching */
	uint32_t nr_queues;
	uint64_t area_size;    /* bytes to mmap */
	char message[96];      /* why, for people, when status != 0 */
};

/* ---- the packet area ---- */

#define FERRY_APP_MAX_QUEUES 64
#define FERRY_APP_RING_NEED_WAKEUP 0x1

/* Emits one reference packet may carry (FERRY_APP_EMIT). */
#define FERRY_APP_MAX_EMITS 4

enum ferry_app_verdict {
	FERRY_APP_PASS = 1,
	FERRY_APP_DROP = 2,
	FERRY_APP_EMIT = 3,    /* a new packet, see above; FROM_APP only */
};

struct ferry_app_desc {
	uint32_t frame;        /* index in the queue's frames (EMIT: the reference's) */
	uint32_t len;          /* payload bytes in the frame (EMIT: in the emit frame) */
	uint32_t cap;          /* most the payload may grow to (TO_APP; ignored FROM_APP) */
	uint32_t cookie;       /* ferryd's, returned unchanged */
	uint32_t verdict;      /* enum ferry_app_verdict (FROM_APP) */
	union {
		uint32_t pad;        /* 0 but for EMIT */
		uint32_t emit_frame; /* EMIT: index in the queue's emit frames */
	};
};

struct ferry_app_ring {
	uint32_t producer __attribute__((aligned(64)));
	uint32_t consumer __attribute__((aligned(64)));
	uint32_t flags __attribute__((aligned(64)));   /* FERRY_APP_RING_NEED_WAKEUP, set by the consumer */
	uint32_t size;                                 /* entries, a power of two */
	uint64_t desc_off __attribute__((aligned(64))); /* from the area's start: size descriptors */
};

struct ferry_app_queue {
	struct ferry_app_ring to_app;
	struct ferry_app_ring from_app;
	uint64_t frames_off;   /* from the area's start */
	uint32_t frames;
	uint32_t frame_size;
	/* The application's frames for FERRY_APP_EMIT payloads (0: no emit). */
	uint64_t emit_frames_off;
	uint32_t emit_frames;  /* the FROM_APP ring's size */
	uint32_t pad;
};

struct ferry_app_area {
	uint32_t magic;        /* FERRY_APP_MAGIC */
	uint32_t version;      /* FERRY_APP_VERSION */
	uint32_t nr_queues;
	uint32_t pad;
	uint64_t size;         /* of the whole area */
	char slot[FERRY_APP_NAME_LEN];
	uint64_t queue_off[FERRY_APP_MAX_QUEUES];
};

#endif /* FERRY_APP_H */
