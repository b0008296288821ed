// SPDX-License-Identifier: BSD-2-Clause
/*
 * Running a flow's service chain over one burst's packets of that flow, and
 * sending the result.  Each service sees the packets still at
 * FERRY_VERDICT_NEXT as one batch; a packet that falls off the end of the
 * chain without a verdict is dropped as "service", so no chain can leak a
 * frame.  Transmitted frames are queued per egress port and sent in one TX
 * burst per port (chain__flush_tx).
 */
#include "log.h"
#include "worker.h"

static void count_drop(struct ferry_fwd_stats *st, enum ferry_drop_reason reason)
{
	/* The drop fields are laid out in FERRY_DROP_REASONS order. */
	(&st->drop_malformed)[reason]++;
}

void chain__run(struct ferry_worker *w, uint32_t flow_id, struct ferry_pkt **pkts,
		      uint32_t n)
{
	const struct flow_chain *ch = &w->d->flows[flow_id];
	struct ferry_fwd_stats *st = &w->flow_stats[flow_id];
	struct ferry_batch b = { .pkts = pkts, .n = n };

	for (int s = 0; s < ch->nr && b.n; s++) {
		uint32_t keep = 0;

		ch->ops[s]->process(ch->conf[s], w->svc_state[flow_id][s], w, &b);
		/* Only packets still at NEXT go on; the others keep their verdict. */
		for (uint32_t i = 0; i < b.n; i++) {
			struct ferry_pkt *p = b.pkts[i];

			if (p->verdict == FERRY_VERDICT_NEXT)
				b.pkts[keep++] = p;
		}
		b.n = keep;
	}
	/* Fell off the end of the chain: nobody sent it. */
	for (uint32_t i = 0; i < b.n; i++)
		ferry_pkt_drop(b.pkts[i], FERRY_DROP_service);

	for (uint32_t i = 0; i < n; i++) {
		struct ferry_pkt *p = pkts[i];

		if (p->verdict == FERRY_VERDICT_TX && p->out_port < w->nr_ports) {
			uint32_t k = w->nr_tx[p->out_port]++;

			w->tx_frames[p->out_port][k].addr = p->addr;
			w->tx_frames[p->out_port][k].len = p->len;
			w->tx_flow[p->out_port][k] = flow_id | (uint32_t)p->dir << 31;
			continue;
		}
		if (p->verdict == FERRY_VERDICT_TX)
			p->drop_reason = FERRY_DROP_service;
		count_drop(st, p->drop_reason < FERRY_DROP__MAX ? p->drop_reason
								 : FERRY_DROP_service);
		umem__free(w->umem, p->addr);
	}
}

void chain__flush_tx(struct ferry_worker *w)
{
	for (int port = 0; port < w->nr_ports; port++) {
		uint32_t n = w->nr_tx[port], sent;

		if (!n)
			continue;
		sent = port__tx(w->ports[port], w->tx_frames[port], n);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t tag = w->tx_flow[port][i];
			struct ferry_fwd_stats *st = &w->flow_stats[tag & 0x7fffffff];

			if (i >= sent) {
				st->drop_tx_ring_full++;
				umem__free(w->umem, w->tx_frames[port][i].addr);
			} else if (tag >> 31) {
				st->reply_packets++;
				st->reply_bytes += w->tx_frames[port][i].len;
			} else {
				st->tx_packets++;
				st->tx_bytes += w->tx_frames[port][i].len;
			}
		}
		w->nr_tx[port] = 0;
	}
}

