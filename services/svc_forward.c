// SPDX-License-Identifier: BSD-2-Clause
/*
 * forward: full NAT of a flow to one upstream.
 *
 * Client -> flow address:port becomes egress address:NAT port -> upstream,
 * and the upstream's replies come back the same way reversed.  start() asks
 * the kernel for the route to the upstream (which interface, which source
 * address) and adds the steering rule that brings the replies to ferry: from
 * upstream:port to egress address, destination port in the NAT range.
 *
 * Next hops come from the kernel only.  The upstream's is looked up per
 * worker and refreshed every second.  The client's is looked up when a
 * session is created: when the kernel has no neighbour entry yet (the
 * client's packets went to AF_XDP, so the kernel never saw them) and the
 * route to the client leaves through the interface its packet arrived on,
 * the session uses that packet's source MAC, the very link-layer sender
 * we answer; meanwhile the kernel is asked to resolve the neighbour.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include "log.h"
#include "nat.h"
#include "nexthop.h"
#include "service.h"

#define UPSTREAM_REFRESH_NS (1000ull * 1000 * 1000)
#define UPSTREAM_RETRY_NS (10ull * 1000 * 1000)

struct fwd_conf {
	struct cfg_prefix upstream;
	uint16_t upstream_port;
	struct cfg_prefix source;  /* configured egress source, family 0 = the kernel's choice */
	union ferry_addr up_addr;
	union ferry_addr egress_addr;
	int family;
	int egress_ifindex;
	char flow_name[CFG_NAME_LEN];
};

struct fwd_worker {
	struct nat_l2 up_l2;
	bool up_resolved;
	uint64_t next_resolve_ns;
};

static void addr_from_prefix(union ferry_addr *a, const struct cfg_prefix *p)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->b, p->addr.bytes, p->family == AF_INET ? 4 : 16);
}

static int fwd_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **confp)
{
	struct fwd_conf *c;
	bool have_upstream = false;
	struct cfg_node val;
	const char *key;
	cfg_iter it;
	int err = 0;

	if (!args->node || !cfg_node_is_map(args)) {
		cfg_node_error(errs, args, "forward: expected a mapping with 'upstream'");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	snprintf(c->flow_name, sizeof(c->flow_name), "%s", fc->flow->name);
	cfg_iter_init(&it, args);
	while (cfg_iter_next(&it, &key, &val)) {
		if (!strcmp(key, "upstream")) {
			if (cfg_get_endpoint(&val, &c->upstream, &c->upstream_port, errs))
				err = -EINVAL;
			else
				have_upstream = true;
		} else if (!strcmp(key, "source")) {
			if (cfg_get_prefix(&val, &c->source, errs))
				err = -EINVAL;
		} else {
			cfg_node_error(errs, &val, "forward: unknown key '%s'", key);
			err = -EINVAL;
		}
	}
	if (!err && !have_upstream) {
		cfg_node_error(errs, args, "forward: missing key 'upstream'");
		err = -EINVAL;
	}
	if (!err && c->upstream.family != fc->flow->match.dst.family) {
		cfg_node_error(errs, args,
			       "forward: upstream and the flow's destination are of different "
			       "address families");
		err = -EINVAL;
	}
	if (!err && c->source.family && c->source.family != c->upstream.family) {
		cfg_node_error(errs, args, "forward: source and upstream are of different families");
		err = -EINVAL;
	}
	if (err) {
		free(c);
		return err;
	}
	c->family = c->upstream.family;
	addr_from_prefix(&c->up_addr, &c->upstream);
	*confp = c;
	return 0;
}

static void fill_words(__u32 dst[4], const union ferry_addr *a)
{
	memcpy(dst, a->w, 16);
}

static int fwd_start(const struct ferry_flow_ctx *fc, void *conf)
{
	const struct ferry_config *cfg = ferry_daemon__config(fc->daemon);
	struct fwd_conf *c = conf;
	struct nh_resolver *nh;
	struct ferry_rule rule = {};
	struct nh_route rt;
	uint8_t mac[6];
	char addr[64];
	int err;

	inet_ntop(c->family, c->up_addr.b, addr, sizeof(addr));
	err = nh_resolver__create(&nh);
	if (err)
		return err;
	err = nh_resolver__route(nh, c->family, &c->up_addr, &rt);
	if (err) {
		pr_err("flow '%s': forward: no route to upstream %s: %s", c->flow_name, addr,
		       strerror(-err));
		goto out;
	}
	if (ferry_daemon__port_of_ifindex(fc->daemon, rt.ifindex) < 0) {
		char ifname[IF_NAMESIZE] = "?";

		if_indextoname(rt.ifindex, ifname);
		pr_err("flow '%s': forward: upstream %s routes via %s, which is not a ferry "
		       "interface",
		       c->flow_name, addr, ifname);
		err = -ENETUNREACH;
		goto out;
	}
	c->egress_ifindex = rt.ifindex;
	if (c->source.family)
		addr_from_prefix(&c->egress_addr, &c->source);
	else
		c->egress_addr = rt.prefsrc;
	/* Start resolving now so the first packets find the neighbour known. */
	nh_resolver__neigh(nh, c->family, &rt.gateway, rt.ifindex, mac);

	rule.flow_id = fc->flow_id;
	rule.enabled = 1;
	rule.family = c->family == AF_INET ? 4 : 6;
	rule.l4_proto = fc->flow->match.l4_proto;
	rule.dir = FERRY_DIR_REPLY;
	rule.src_plen = c->family == AF_INET ? 32 : 128;
	rule.dst_plen = rule.src_plen;
	fill_words(rule.src, &c->up_addr);
	fill_words(rule.dst, &c->egress_addr);
	rule.sport_lo = rule.sport_hi = c->upstream_port;
	rule.dport_lo = cfg->nat.ports.lo;
	rule.dport_hi = cfg->nat.ports.hi;
	rule.ifindex = (__u32)rt.ifindex;
	err = ferry_daemon__add_rule(fc->daemon, &rule);
	if (err)
		pr_err("flow '%s': forward: cannot add the reply rule: %s", c->flow_name,
		       strerror(-err));
	else
		pr_info("flow '%s': forward to %s port %u via ifindex %d", c->flow_name, addr,
			c->upstream_port, rt.ifindex);
out:
	nh_resolver__destroy(nh);
	return err;
}

static int fwd_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct fwd_worker *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return -ENOMEM;
	*wstate = fw;
	return 0;
}

static void fwd_worker_destroy(void *conf, void *wstate)
{
	free(wstate);
}

static void fwd_destroy(void *conf)
{
	free(conf);
}

/* Route and neighbour of the upstream; returns 0 or the drop reason. */
static int resolve_upstream(struct fwd_conf *c, struct fwd_worker *fw, struct ferry_worker *w)
{
	struct nh_route rt;
	int port, err;

	err = nh_resolver__route(ferry_worker__resolver(w), c->family, &c->up_addr, &rt);
	if (err)
		return FERRY_DROP_no_route;
	port = ferry_worker__port_of_ifindex(w, rt.ifindex);
	if (port < 0)
		return FERRY_DROP_no_route;
	err = nh_resolver__neigh(ferry_worker__resolver(w), c->family, &rt.gateway, rt.ifindex,
				 fw->up_l2.dst_mac);
	if (err)
		return FERRY_DROP_no_neighbour;
	memcpy(fw->up_l2.src_mac, rt.src_mac, 6);
	fw->up_l2.port = (uint16_t)port;
	fw->up_l2.mtu = (uint16_t)(rt.mtu > 0xffff ? 0xffff : rt.mtu);
	fw->up_resolved = true;
	return 0;
}

/* The next hop back to the client of a new session; returns 0 or the drop reason. */
static int resolve_client(struct fwd_conf *c, struct ferry_worker *w, const struct ferry_pkt *p,
			  struct nat_session *s)
{
	struct nh_route rt;
	int port, err;

	err = nh_resolver__route(ferry_worker__resolver(w), c->family, &p->pi.saddr, &rt);
	if (err)
		return FERRY_DROP_no_route;
	port = ferry_worker__port_of_ifindex(w, rt.ifindex);
	if (port < 0)
		return FERRY_DROP_no_route;
	err = nh_resolver__neigh(ferry_worker__resolver(w), c->family, &rt.gateway, rt.ifindex,
				 s->to_client.dst_mac);
	if (err) {
		if (port != p->in_port)
			return FERRY_DROP_no_neighbour;
		/* Ethernet source of the client's frame: the neighbour that sent it to us. */
		memcpy(s->to_client.dst_mac, p->data + 6, 6);
		s->client_l2_learned = true;
	}
	memcpy(s->to_client.src_mac, rt.src_mac, 6);
	s->to_client.port = (uint16_t)port;
	s->to_client.mtu = (uint16_t)(rt.mtu > 0xffff ? 0xffff : rt.mtu);
	return 0;
}

static int drop_for_rewrite_error(int err)
{
	return err == -ETIMEDOUT ? FERRY_DROP_ttl_exceeded : FERRY_DROP_too_big;
}

/* Returns 0 with the packet rewritten for the upstream, or the drop reason. */
static int fwd_from_client(struct fwd_conf *c, struct fwd_worker *fw, struct ferry_worker *w,
			   struct ferry_pkt *p)
{
	struct ferry_fwd_stats *st = ferry_worker__flow_stats(w, p->flow_id);
	struct nat_table *nat = ferry_worker__nat(w);
	uint64_t now = ferry_worker__now_ns(w);
	struct nat_session *s;
	struct nat_tuple t;
	int err, reason;

	nat_tuple_from_pkt(&t, &p->pi);
	s = nat_table__lookup_client(nat, &t);
	if (!s) {
		if (!fw->up_resolved) {
			/* Bounded retries: one lookup per 10 ms, not one per packet. */
			if (now < fw->next_resolve_ns)
				return FERRY_DROP_no_neighbour;
			fw->next_resolve_ns = now + UPSTREAM_RETRY_NS;
			reason = resolve_upstream(c, fw, w);
			if (reason)
				return reason;
			fw->next_resolve_ns = now + UPSTREAM_REFRESH_NS;
		}
		err = nat_table__insert(nat, &t, &c->egress_addr, &c->up_addr, c->upstream_port,
					p->flow_id, now, &s);
		if (err)
			return err == -ENOSPC ? FERRY_DROP_session_table_full
					      : FERRY_DROP_nat_ports_exhausted;
		reason = resolve_client(c, w, p, s);
		if (reason) {
			nat_table__remove(nat, s);
			return reason;
		}
		s->to_upstream = fw->up_l2;
		st->sessions_created++;
	}
	s->last_seen_ns = now;
	err = nat_rewrite_to_upstream(p->data, &p->pi, s);
	if (err)
		return drop_for_rewrite_error(err);
	ferry_pkt_tx(p, s->to_upstream.port);
	return 0;
}

static int fwd_from_upstream(struct ferry_worker *w, struct ferry_pkt *p)
{
	struct nat_session *s;
	struct nat_tuple t;
	int err;

	nat_tuple_from_pkt(&t, &p->pi);
	s = nat_table__lookup_reply(ferry_worker__nat(w), &t);
	if (!s || s->flow_id != p->flow_id)
		return FERRY_DROP_no_session;
	s->last_seen_ns = ferry_worker__now_ns(w);
	err = nat_rewrite_to_client(p->data, &p->pi, s);
	if (err)
		return drop_for_rewrite_error(err);
	ferry_pkt_tx(p, s->to_client.port);
	return 0;
}

static void fwd_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];

		int reason = p->dir == FERRY_DIR_REPLY ? fwd_from_upstream(w, p)
						       : fwd_from_client(conf, wstate, w, p);

		if (reason)
			ferry_pkt_drop(p, reason);
	}
}

static void fwd_tick(void *conf, void *wstate, struct ferry_worker *w)
{
	struct fwd_worker *fw = wstate;

	/* Pick up neighbour and route changes for new sessions. */
	if (fw->up_resolved && ferry_worker__now_ns(w) >= fw->next_resolve_ns) {
		fw->next_resolve_ns = ferry_worker__now_ns(w) + UPSTREAM_REFRESH_NS;
		if (resolve_upstream(conf, fw, w))
			fw->up_resolved = false;
	}
}

const struct ferry_service_ops svc_forward_ops = {
	.name = "forward",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = fwd_configure,
	.start = fwd_start,
	.worker_init = fwd_worker_init,
	.process = fwd_process,
	.tick = fwd_tick,
	.worker_destroy = fwd_worker_destroy,
	.destroy = fwd_destroy,
};
