/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Listing the NAT sessions (ferryctl sessions) without touching a worker's
 * table from another thread: the main thread (daemon/control.c) hands a
 * worker a request for one chunk, the worker copies up to `max` matching
 * sessions from slot `slot` on into the request between two of its loop
 * iterations, looking at SESS_SCAN_LIMIT slots at most, and says it is
 * done.  A chunk is a snapshot of those slots at one moment; a whole
 * listing is not.  The worker's cost is bounded by the chunk: one pass over
 * at most SESS_SCAN_LIMIT slots, no allocation, no lock.
 */
#ifndef FERRY_SESSIONS_H
#define FERRY_SESSIONS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "control_proto.h"

struct nat_table;
struct nat_session;
struct ferry_worker;

/* Slots one chunk looks at, at most, however few sessions match the filter. */
#define SESS_SCAN_LIMIT 16384

struct sess_snap {
	/* The request: written by the main thread before it hands the snap over. */
	uint32_t slot, max, flags, flow_id;
	uint8_t family;
	uint8_t addr[16];
	/* The answer: written by the worker before `done`. */
	uint32_t nr, next_slot, count;
	bool end; /* the table was walked to its end */
	uint64_t now_ns; /* the worker's clock at the copy: ages and idle times are from it */
	atomic_int done;
	struct ferry_ctl_session recs[FERRY_CTL_SESS_CHUNK];
	/* Each record's fast-path slot (daemon/offload.h), -1 when not offloaded. */
	int64_t xdp_slot[FERRY_CTL_SESS_CHUNK];
	uint64_t last_seen_ns[FERRY_CTL_SESS_CHUNK];
};

/*
 * Fills q's answer from t, whose owner is worker `worker` (the caller, or a
 * test): the sessions matching q's filter from q->slot on.  xdp_slot (or
 * NULL) gives a session's fast-path slot.
 */
void sessions__collect(const struct nat_table *t, struct sess_snap *q, uint32_t worker,
		       uint64_t now_ns,
		       int64_t (*xdp_slot)(const void *ctx, const struct nat_session *s),
		       const void *ctx);
/* The worker's side: answers the request handed to it, if any.  Its own thread. */
void sessions__serve(struct ferry_worker *w);

#endif /* FERRY_SESSIONS_H */
