/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What mirror and fanout share: a list of one-way destinations (struct
 * fwd_target, up to one per service counter), resolved at start(), with a
 * per-worker template (struct fwd_oneway) each and a counter of the packets
 * sent to (or held for the neighbour of) each.  Internal to the built-in
 * services: not part of the service ABI.
 */
#ifndef FERRY_COPY_OUT_H
#define FERRY_COPY_OUT_H

#include <stdint.h>

#include "fwd_core.h"
#include "service.h"

#define COPY_OUT_MAX_DESTS FERRY_SERVICE_COUNTERS

/* A worker's state: its next hops and one template and counter per destination. */
struct copy_out_worker {
	struct fwd_nh *nh;
	struct fwd_oneway dst[COPY_OUT_MAX_DESTS];
	uint64_t sent[COPY_OUT_MAX_DESTS];
};

/*
 * start(): fwd_core__setup(), then resolves each of the nr targets (`what`
 * names one in messages).  Returns 0 or the first error.
 */
int copy_out__start(struct fwd_core *c, const struct ferry_flow_ctx *fc, struct fwd_target *t,
		    uint32_t nr, const char *what);
/* worker_init()/worker_destroy(). */
int copy_out__worker_init(const struct fwd_core *c, const struct fwd_target *t, uint32_t nr,
			  struct ferry_worker *w, void **wstate);
void copy_out__worker_destroy(void *wstate);
/* process() before its batch, and tick(). */
void copy_out__poll(struct copy_out_worker *cw, struct ferry_worker *w);
/*
 * Sends p (rewritten in place) to destination d: counted as sent, or
 * dropped with its reason.
 */
void copy_out__send(struct copy_out_worker *cw, struct ferry_worker *w, uint32_t d,
		    struct ferry_pkt *p);
/*
 * A copy of p (a new frame of b) to each destination from..nr-1; a copy
 * that gets no frame is counted as the flow's no_frame drop.
 */
void copy_out__copies(struct copy_out_worker *cw, struct ferry_worker *w, struct ferry_batch *b,
		      const struct ferry_pkt *p, uint32_t from, uint32_t nr);
/* stats(): the per-destination counters. */
void copy_out__stats(const struct copy_out_worker *cw,
		     uint64_t counters[FERRY_SERVICE_COUNTERS]);

#endif /* FERRY_COPY_OUT_H */
