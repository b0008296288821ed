// SPDX-License-Identifier: BSD-2-Clause
/* What the daemon offers built-in services and workers (see services/service.h). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon.h"
#include "log.h"
#include "offload.h"
#include "svc_loader.h"

int ferry_daemon__port_of_ifindex(struct ferry_daemon *d, int ifindex)
{
	for (int i = 0; i < d->nr_ports; i++)
		if (d->ports[i].ifindex == ifindex)
			return i;
	return -ENOENT;
}

/*
 * The flow's on_failure applies to every rule of it, the client rule and
 * the reply rules its services add, so services need not know about it.
 */
int ferry_daemon__add_rule(struct ferry_daemon *d, const struct ferry_rule *rule)
{
	struct ferry_rule *r;

	if (d->nr_rules >= FERRY_MAX_RULES)
		return -ENOSPC;
	r = &d->rules[d->nr_rules++];
	*r = *rule;
	/* Flow ids are slots of d->flows, stable across reloads, not config positions. */
	if (r->flow_id < CFG_MAX_FLOWS && d->flows[r->flow_id].fc.flow &&
	    d->flows[r->flow_id].fc.flow->on_failure == CFG_ON_FAILURE_DROP)
		r->flags |= FERRY_RULE_F_DROP_NO_SOCKET;
	return 0;
}

const struct ferry_config *ferry_daemon__config(struct ferry_daemon *d)
{
	return &d->cfg;
}

/* ---- flows: start-up (daemon/ferryd.c), reload (daemon/reload.c), fuzz harnesses ---- */

void ferry_daemon__configure_chain(struct ferry_daemon *ld, struct ferry_daemon *cd,
				   const struct cfg_flow *flow, uint32_t flow_id,
				   struct cfg_errors *errs)
{
	struct flow_chain *ch = &cd->flows[flow_id];

	ch->fc.flow = flow;
	ch->fc.flow_id = flow_id;
	ch->fc.daemon = cd;
	for (int s = 0; s < flow->nr_services; s++) {
		const struct cfg_service *svc = &flow->services[s];
		const struct ferry_service_ops *ops = service__find(svc->name);
		void *conf = NULL;

		/*
		 * Not built in: SERVICE_DIR/NAME.so, with the same ops table, from
		 * the running daemon's loader (an object stays loaded until stop).
		 */
		if (!ops && !ld->loader && svc_loader__create(&ld->loader, ld->cfg.service_dir)) {
			cfg_mark_error(errs, svc->mark, "service '%s': out of memory", svc->name);
			continue;
		}
		if (!ops)
			ops = svc_loader__get(ld->loader, svc, errs);
		if (!ops)
			continue;
		if (ops->configure && ops->configure(&ch->fc, svc->args, errs, &conf))
			continue;
		ch->ops[ch->nr] = ops;
		ch->conf[ch->nr] = conf;
		ch->nr++;
	}
	offload__decide(cd, ch, flow);
}

int ferry_daemon__configure_flows(struct ferry_daemon *d, struct cfg_errors *errs)
{
	for (int f = 0; f < d->cfg.nr_flows; f++)
		ferry_daemon__configure_chain(d, d, &d->cfg.flows[f], (uint32_t)f, errs);
	d->nr_flows = d->cfg.nr_flows;
	return errs->count ? -EINVAL : 0;
}

void ferry_daemon__destroy_chain(struct flow_chain *ch)
{
	for (int s = 0; s < ch->nr; s++)
		if (ch->ops[s]->destroy)
			ch->ops[s]->destroy(ch->conf[s]);
	ch->nr = 0;
}

void ferry_daemon__destroy_flows(struct ferry_daemon *d)
{
	for (int f = 0; f < d->nr_flows; f++)
		ferry_daemon__destroy_chain(&d->flows[f]);
}

static void prefix_words(__u32 dst[4], const struct cfg_prefix *p)
{
	memset(dst, 0, 16);
	memcpy(dst, p->addr.bytes, p->family == AF_INET ? 4 : 16);
}

int ferry_daemon__add_client_rule(struct ferry_daemon *d, const struct cfg_match *m,
				  uint32_t flow_id)
{
	struct ferry_rule r = {
		.flow_id = flow_id,
		.enabled = 1,
		.family = m->dst.family == AF_INET ? 4 : 6,
		.l4_proto = m->l4_proto,
		.dir = FERRY_DIR_CLIENT,
		.dst_plen = m->dst.plen,
		.src_plen = m->src.family ? m->src.plen : 0,
		.dport_lo = m->dport.lo,
		.dport_hi = m->dport.hi,
	};

	prefix_words(r.dst, &m->dst);
	if (m->src.family)
		prefix_words(r.src, &m->src);
	return ferry_daemon__add_rule(d, &r);
}

int ferry_daemon__client_rules(struct ferry_daemon *d)
{
	for (int f = 0; f < d->nr_flows; f++) {
		int err = ferry_daemon__add_client_rule(d, &d->cfg.flows[f].match, (uint32_t)f);

		if (err)
			return err;
	}
	return 0;
}

int ferry_daemon__start_services(struct ferry_daemon *d)
{
	for (int f = 0; f < d->nr_flows; f++) {
		struct flow_chain *ch = &d->flows[f];

		for (int s = 0; s < ch->nr; s++) {
			int err;

			if (!ch->ops[s]->start)
				continue;
			err = ch->ops[s]->start(&ch->fc, ch->conf[s]);
			if (err) {
				pr_err("flow '%s': service '%s' failed to start: %s",
				       ch->fc.flow->name, ch->ops[s]->name, strerror(-err));
				return err;
			}
		}
	}
	return 0;
}
