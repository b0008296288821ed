// SPDX-License-Identifier: BSD-2-Clause
/* One-way copies to a list of destinations, for mirror and fanout (copy_out.h). */
#include <errno.h>
#include <stdlib.h>

#include "copy_out.h"
#include "nexthop.h"

int copy_out__start(struct fwd_core *c, const struct ferry_flow_ctx *fc, struct fwd_target *t,
		    uint32_t nr, const char *what)
{
	struct nh_resolver *nh;
	int err;

	fwd_core__setup(c, ferry_daemon__config(fc->daemon));
	err = nh_resolver__create(&nh);
	if (err)
		return err;
	for (uint32_t i = 0; i < nr && !err; i++)
		err = fwd_core__resolve(c, nh, fc->daemon, &t[i], what);
	nh_resolver__destroy(nh);
	return err;
}

int copy_out__worker_init(const struct fwd_core *c, const struct fwd_target *t, uint32_t nr,
			  struct ferry_worker *w, void **wstate)
{
	struct copy_out_worker *cw;
	int err;

	cw = calloc(1, sizeof(*cw));
	if (!cw)
		return -ENOMEM;
	err = fwd_core__nh_get(c, w, &cw->nh);
	if (err) {
		free(cw);
		return err;
	}
	for (uint32_t i = 0; i < nr; i++)
		fwd_core__oneway_init(&cw->dst[i], c, &t[i]);
	*wstate = cw;
	return 0;
}

void copy_out__worker_destroy(void *wstate)
{
	struct copy_out_worker *cw = wstate;

	fwd_core__nh_put(cw->nh);
	free(cw);
}

void copy_out__poll(struct copy_out_worker *cw, struct ferry_worker *w)
{
	fwd_core__nh_poll(cw->nh, ferry_worker__now_ns(w));
}

void copy_out__send(struct copy_out_worker *cw, struct ferry_worker *w, uint32_t d,
		    struct ferry_pkt *p)
{
	int reason = fwd_core__oneway_send(cw->nh, w, &cw->dst[d], p);

	if (reason)
		ferry_pkt_drop(p, reason);
	else
		cw->sent[d]++;
}

void copy_out__copies(struct copy_out_worker *cw, struct ferry_worker *w, struct ferry_batch *b,
		      const struct ferry_pkt *p, uint32_t from, uint32_t nr)
{
	for (uint32_t d = from; d < nr; d++) {
		struct ferry_pkt *q = ferry_batch__emit(w, b, p);

		if (!q) {
			ferry_worker__flow_stats(w, p->flow_id)->drop_no_frame++;
			continue;
		}
		copy_out__send(cw, w, d, q);
	}
}

void copy_out__stats(const struct copy_out_worker *cw, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	for (int i = 0; i < COPY_OUT_MAX_DESTS; i++)
		counters[i] += cw->sent[i];
}
