// SPDX-License-Identifier: BSD-2-Clause
/*
 * A restart after SIGKILL or a crash: the sessions the earlier run had
 * offloaded kept forwarding in XDP (its program and maps stay), steer took
 * over those maps and replaced the program in one step, and this file makes
 * the entries this run's sessions again, so that they keep their NAT ports
 * and their packets, instead of starting over from empty tables (which
 * would turn each of them into a new session on a new port, or a TCP
 * connection into no_session drops).
 *
 * Each pair of entries (a session's two directions, one stats slot pair)
 * names the flow by the earlier run's id; the flow is found again by name
 * and must still be offloadable here.  Its owner is the worker whose slice
 * holds its NAT port.  A TCP connection comes back ESTABLISHED with the
 * windows the fast path last saw; what ferry does not know of it (the
 * window scale, the SYN options) is what the end hosts keep anyway.  An
 * entry that cannot be adopted is removed: its packets go to the workers,
 * as a session they do not know.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "log.h"
#include "nat.h"
#include "offload.h"
#include "steer.h"
#include "tcp_state.h"
#include "worker.h"

struct adopt_ent {
	struct ferry_sess_key key;
	struct ferry_sess val;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int flow_by_name(const struct ferry_daemon *d, const char *name)
{
	for (int f = 0; f < d->nr_flows; f++)
		if (d->flows[f].fc.flow && !strcmp(d->flows[f].fc.flow->name, name))
			return f;
	return -1;
}

/* Stats slot `key`, its CPUs' records merged (offload__merge_stats()). */
static int merged_stats(int fd, uint32_t key, struct ferry_sess_stats *buf, int ncpus,
			struct ferry_sess_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(fd, &key, buf))
		return -errno;
	offload__merge_stats(buf, ncpus, out);
	return 0;
}

static void tuple_of(struct nat_tuple *t, const uint32_t saddr[4], const uint32_t daddr[4],
		     uint16_t sport, uint16_t dport, uint8_t family, uint8_t proto)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->saddr.b, saddr, 16);
	memcpy(t->daddr.b, daddr, 16);
	t->sport = ntohs(sport);
	t->dport = ntohs(dport);
	t->family = family;
	t->proto = proto;
}

static void l2_of(const struct ferry_daemon *d, struct nat_l2 *l2, const struct ferry_sess *v)
{
	int port = ferry_daemon__port_of_ifindex((struct ferry_daemon *)d, (int)v->egress_ifindex);

	memcpy(l2->dst_mac, v->dst_mac, 6);
	memcpy(l2->src_mac, v->src_mac, 6);
	l2->port = port < 0 ? 0 : (uint16_t)port;
	l2->mtu = v->mtu;
}

/* What the fast path saw of one direction of a connection, as tracked windows. */
static void tcp_seed(struct tcp_track *t, enum tcp_dir dir, const struct ferry_sess_stats *st)
{
	struct tcp_win *w = &t->win[dir];

	if (!st->tcp_valid)
		return;
	w->flags = TCP_WIN_SEEN;
	w->end = st->tcp_seq_end;
	w->maxend = st->tcp_seq_end;
	w->maxwin = st->tcp_win ? st->tcp_win : 1;
	tcp_track_resync(t, dir, st->tcp_seq_end, st->tcp_ack, (uint16_t)st->tcp_win);
}

/* One session's two entries: 0 when adopted, else why not (the caller removes them). */
static int adopt_one(struct ferry_daemon *d, const struct adopt_ent *cl, const struct adopt_ent *rp,
		     struct ferry_sess_stats *buf, int ncpus, uint64_t now)
{
	const char *name = steer__old_flow_name(d->steer, cl->val.flow_id);
	struct ferry_sess_stats st[2];
	struct ferry_sess_key keys[2] = { cl->key, rp->key };
	struct ferry_sess vals[2] = { cl->val, rp->val };
	struct nat_tuple client, up;
	struct nat_session *s;
	struct ferry_worker *w;
	uint32_t old_slot = cl->val.stats_slot / 2;
	int flow, owner, err;

	if (!name || (flow = flow_by_name(d, name)) < 0 || !d->flows[flow].offload)
		return -ENOENT;
	tuple_of(&client, cl->key.saddr, cl->key.daddr, cl->key.sport, cl->key.dport,
		 cl->key.family, cl->key.l4_proto);
	tuple_of(&up, cl->val.saddr, cl->val.daddr, cl->val.sport, cl->val.dport, cl->key.family,
		 cl->key.l4_proto);
	owner = worker__nat_owner(d, up.sport);
	if (owner < 0 || (uint32_t)owner >= d->nr_workers || !d->workers[owner])
		return -ERANGE;
	w = d->workers[owner];
	err = nat_table__adopt(w->nat, &client, &up, (uint32_t)flow, now, &s);
	if (err)
		return err;
	for (int dir = 0; dir < 2; dir++)
		if (merged_stats(d->offload_stats_fd, old_slot * 2 + dir, buf, ncpus, &st[dir]))
			memset(&st[dir], 0, sizeof(st[dir]));
	l2_of(d, &s->to_upstream, &cl->val);
	l2_of(d, &s->to_client, &rp->val);
	s->replied = true;
	s->assured = true;
	s->packets = OFFLOAD_UDP_PACKETS;
	for (int dir = 0; dir < 2; dir++)
		if (st[dir].last_seen_ns > s->last_seen_ns && st[dir].last_seen_ns <= now)
			s->last_seen_ns = st[dir].last_seen_ns;
	if (client.proto == IPPROTO_TCP) {
		s->tcp.state = TCP_ST_ESTABLISHED;
		tcp_seed(&s->tcp, TCP_DIR_CLIENT, &st[FERRY_DIR_CLIENT]);
		tcp_seed(&s->tcp, TCP_DIR_UPSTREAM, &st[FERRY_DIR_REPLY]);
		s->timeout_ns = (uint64_t)d->cfg.nat.tcp_established_timeout_s * 1000000000ull;
	}
	err = offload__adopt_session(w, s, old_slot, keys, vals);
	if (err) {
		nat_table__remove(w->nat, s);
		return err;
	}
	w->flow_stats[flow].sessions_created++;
	w->flow_stats[flow].sessions_offloaded++;
	return 0;
}

int offload__adopt(struct ferry_daemon *d)
{
	uint32_t cap = 2 * d->cfg.nat.offload_max_sessions, n = 0, adopted = 0, dropped = 0;
	int ncpus = libbpf_num_possible_cpus(), fd = d->offload_map_fd;
	struct ferry_sess_stats *buf = NULL;
	struct adopt_ent *ents = NULL;
	int32_t *by_slot = NULL;
	struct ferry_sess_key key, next;
	void *prev = NULL;
	uint64_t now = mono_ns();
	int err = 0;

	if (!d->offload_maps || !steer__adopting(d->steer) || !cap || ncpus <= 0)
		return 0;
	ents = calloc(cap, sizeof(*ents));
	by_slot = malloc(cap * sizeof(*by_slot));
	buf = calloc((size_t)ncpus, sizeof(*buf));
	if (!ents || !by_slot || !buf) {
		err = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = 0; i < cap; i++)
		by_slot[i] = -1;
	while (n < cap && !bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &ents[n].val))
			continue;
		ents[n].key = key;
		if (ents[n].val.stats_slot < cap && by_slot[ents[n].val.stats_slot] < 0)
			by_slot[ents[n].val.stats_slot] = (int32_t)n;
		n++;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct adopt_ent *e = &ents[i];
		uint32_t pair = e->val.stats_slot ^ 1;
		struct adopt_ent *cl, *rp;

		if (e->val.dir != FERRY_DIR_CLIENT)
			continue;
		if (pair >= cap || by_slot[pair] < 0 || by_slot[e->val.stats_slot] != (int32_t)i)
			continue;
		cl = e;
		rp = &ents[by_slot[pair]];
		if (!adopt_one(d, cl, rp, buf, ncpus, now)) {
			adopted++;
			by_slot[cl->val.stats_slot] = by_slot[pair] = -2; /* kept */
		}
	}
	/* The rest would forward for sessions nobody knows: they go. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = ents[i].val.stats_slot;

		if (slot < cap && by_slot[slot] == -2)
			continue;
		bpf_map_delete_elem(fd, &ents[i].key);
		dropped++;
	}
	pr_info("offload: took over %u session%s an earlier run forwarded in XDP%s", adopted,
		adopted == 1 ? "" : "s", dropped ? "; removed the entries of others" : "");
	if (dropped)
		pr_info("offload: %u entr%s of an earlier run removed (flow gone or changed, or "
			"no room)", dropped, dropped == 1 ? "y" : "ies");
out_free:
	free(ents);
	free(by_slot);
	free(buf);
	return err;
}
