// SPDX-License-Identifier: BSD-2-Clause
/*
 * A worker's chain runner and TX: running a flow's service chain over one
 * burst's packets of that flow (daemon/rx.c admitted, classified and grouped
 * them), and sending the result.  Each service sees the packets still at
 * FERRY_VERDICT_NEXT as one batch; a packet that falls off the end of the
 * chain without a verdict is dropped as "service", so no chain can leak a
 * frame.  Transmitted frames are queued per egress port and sent in one TX
 * burst per port (worker__flush_tx()).  What services call during a run
 * (emit, hold, send_held) is daemon/service_api.c's.
 *
 * It must not read an RX ring, classify, or hand packets to other workers
 * (daemon/rx.c), and touches the ports only through port__tx().
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "worker.h"

/*
 * Generic per-service counters: what the service did with the packets it
 * saw.  For a .sees_tx service, was_tx[i] says the packet came in at TX: if
 * it still is, the service let it go on rather than sent it.
 */
static void count_service(struct ferry_svc_stats *st, struct ferry_batch *b, uint32_t seen,
			  const uint8_t *was_tx)
{
	for (uint32_t i = 0; i < seen; i++) {
		switch (b->pkts[i]->verdict) {
		case FERRY_VERDICT_NEXT:
			st->passed++;
			break;
		case FERRY_VERDICT_TX:
			if (was_tx && was_tx[i])
				st->passed++;
			else
				st->sent++;
			break;
		case FERRY_VERDICT_DROP:
			st->dropped++;
			break;
		default:
			st->held++;
			break;
		}
	}
	st->emitted += b->n - seen;
}

/*
 * The batch of a .sees_tx service: the packets still at NEXT and those an
 * earlier service set to TX.  chain_all holds both in arrival order, emitted
 * packets after the ones they came from, as the NEXT-only batches do.
 */
static uint32_t gather_sees_tx(const struct ferry_worker *w, struct ferry_pkt **out,
			       uint8_t *was_tx, uint64_t *bytes)
{
	uint32_t n = 0;

	*bytes = 0;
	for (uint32_t i = 0; i < w->chain_nr_all; i++) {
		struct ferry_pkt *p = w->chain_all[i];

		if (p->verdict == FERRY_VERDICT_NEXT || p->verdict == FERRY_VERDICT_TX) {
			was_tx[n] = p->verdict == FERRY_VERDICT_TX;
			*bytes += p->len;
			out[n++] = p;
		}
	}
	return n;
}

/* The chain of flow_id from service `first` on (0: the whole chain). */
static void run_chain_from(struct ferry_worker *w, uint32_t flow_id, struct ferry_pkt **pkts,
			   uint32_t n, int first)
{
	const struct flow_chain *ch = &w->d->flows[flow_id];
	struct ferry_fwd_stats *st = &w->flow_stats[flow_id];
	struct ferry_batch b = { .pkts = w->chain_pkts, .n = n, .cap = CHAIN_MAX_PKTS };
	uint8_t was_tx[CHAIN_MAX_PKTS];
	uint64_t bytes = 0; /* of the packets in b: the next service's bytes_in */

	/* chain_all keeps every packet (emitted ones too) for the final pass. */
	memcpy(w->chain_all, pkts, n * sizeof(*pkts));
	memcpy(w->chain_pkts, pkts, n * sizeof(*pkts));
	w->chain_nr_all = n;
	w->chain_nr_emitted = 0;
	w->chain_holds = 0;
	for (uint32_t i = 0; i < n; i++)
		bytes += pkts[i]->len;
	for (int s = first; s < ch->nr; s++) {
		struct ferry_svc_stats *ss = &w->svc_stats[flow_id][s];
		uint32_t seen, keep = 0;

		if (ch->ops[s]->sees_tx)
			b.n = gather_sees_tx(w, b.pkts, was_tx, &bytes);
		if (!b.n)
			continue;
		seen = b.n;
		ss->packets_in += seen;
		ss->bytes_in += bytes;
		ch->ops[s]->process(ch->conf[s], w->svc_state[flow_id][s], w, &b);
		count_service(ss, &b, seen, ch->ops[s]->sees_tx ? was_tx : NULL);
		/* Only packets still at NEXT go on; the others keep their verdict. */
		bytes = 0;
		for (uint32_t i = 0; i < b.n; i++) {
			struct ferry_pkt *p = b.pkts[i];

			if (p->verdict == FERRY_VERDICT_NEXT) {
				b.pkts[keep++] = p;
				bytes += p->len;
			}
		}
		b.n = keep;
	}
	/* Fell off the end of the chain: nobody sent it. */
	for (uint32_t i = 0; i < b.n; i++)
		ferry_pkt_drop(b.pkts[i], FERRY_DROP_service);

	for (uint32_t i = 0; i < w->chain_nr_all; i++) {
		struct ferry_pkt *p = w->chain_all[i];

		/* The service owns it now; ferry_worker__send_held() finishes it. */
		if (p->verdict == FERRY_VERDICT_HOLD) {
			w->held_frames++;
			continue;
		}
		if (p->verdict == FERRY_VERDICT_TX && p->out_port < w->nr_ports) {
			worker__queue_tx(w, p, flow_id);
			continue;
		}
		if (p->verdict == FERRY_VERDICT_TX)
			p->drop_reason = FERRY_DROP_service;
		worker__count_drop(st, p->drop_reason < FERRY_DROP__MAX ? p->drop_reason
									: FERRY_DROP_service);
		umem__free(w->umem, p->addr);
	}
}

void worker__run_chain(struct ferry_worker *w, uint32_t flow_id, struct ferry_pkt **pkts,
		       uint32_t n)
{
	run_chain_from(w, flow_id, pkts, n, 0);
}

/*
 * Packets a service held go on along their flow's chain after it, as if
 * it had just let them pass: never from inside a chain run (tick() only),
 * as it reuses the run's arrays.  They leave the held frames first; a
 * service after this one may hold them again.
 */
void ferry_worker__resume(struct ferry_worker *w, struct ferry_pkt **pkts, uint32_t n,
			  int after_pos)
{
	uint32_t flow_id;

	if (!n)
		return;
	w->held_frames = w->held_frames > n ? w->held_frames - n : 0;
	flow_id = pkts[0]->flow_id;
	if (flow_id >= (uint32_t)w->d->nr_flows || n > CHAIN_MAX_PKTS) {
		/* Not a flow of this config (cannot happen): drop rather than guess. */
		for (uint32_t i = 0; i < n; i++)
			ferry_pkt_drop(pkts[i], FERRY_DROP_service);
		w->held_frames += n;
		ferry_worker__send_held(w, pkts, n);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		pkts[i]->verdict = FERRY_VERDICT_NEXT;
	run_chain_from(w, flow_id, pkts, n, after_pos + 1);
	worker__flush_tx(w);
}

void worker__flush_tx(struct ferry_worker *w)
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
