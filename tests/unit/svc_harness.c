// SPDX-License-Identifier: BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <net/if.h>

#include "csum.h"
#include "nat.h"
#include "nexthop.h"
#include "svc_harness.h"
#include "worker.h"

#define HARNESS_MAX_OUT 1024

struct svc_harness {
	struct ferry_daemon d;
	struct ferry_worker *w;
	struct harness_out *out;
	uint32_t nr_out;
	uint8_t dir;
	uint16_t sending_port; /* the port harness_sent() takes frames from */
	char *yaml;
	/* harness__create_net(): the caller's namespace while in ours, and ours; else -1 */
	int orig_ns, net_ns;
};

static const struct ferry_service_ops *test_services[16];

void harness__add_service(const struct ferry_service_ops *ops)
{
	for (size_t i = 0; i < sizeof(test_services) / sizeof(test_services[0]); i++) {
		if (!test_services[i] || test_services[i] == ops) {
			test_services[i] = ops;
			return;
		}
	}
}

static const struct ferry_service_ops *harness_find(const char *name)
{
	for (size_t i = 0; i < sizeof(test_services) / sizeof(test_services[0]); i++)
		if (test_services[i] && !strcmp(test_services[i]->name, name))
			return test_services[i];
	return service__find(name);
}

static struct svc_harness *harness_create(const char *match_yaml, const char *services_yaml,
					  bool net);
static int harness_net_enter(struct svc_harness *h);
static void harness_net_leave(struct svc_harness *h);

struct svc_harness *harness__create(const char *services_yaml)
{
	return harness__create_match("{protocol: udp, destination: 198.18.1.1, port: 5000}",
				     services_yaml);
}

struct svc_harness *harness__create_match(const char *match_yaml, const char *services_yaml)
{
	return harness_create(match_yaml, services_yaml, false);
}

struct svc_harness *harness__create_net(const char *match_yaml, const char *services_yaml)
{
	return harness_create(match_yaml, services_yaml, true);
}

static struct svc_harness *harness_create(const char *match_yaml, const char *services_yaml,
					  bool net)
{
	static const char fmt[] = "interfaces:\n"
				  "  - name: h-in\n"
				  "  - name: h-out\n"
				  "flows:\n"
				  "  - name: harness\n"
				  "    match: %s\n"
				  "    services: %s\n";
	struct cfg_errors errs = { .capture = NULL };
	struct svc_harness *h;
	struct flow_chain *ch;
	size_t len;

	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->orig_ns = h->net_ns = -1;
	len = sizeof(fmt) + strlen(match_yaml) + strlen(services_yaml);
	h->yaml = malloc(len);
	h->out = calloc(HARNESS_MAX_OUT, sizeof(*h->out));
	if (!h->yaml || !h->out)
		goto err;
	snprintf(h->yaml, len, fmt, match_yaml, services_yaml);
	if (config__load_string(&h->d.cfg, "harness.yaml", h->yaml, &errs))
		goto err;
	h->d.nr_ports = 2;
	snprintf(h->d.ports[0].ifname, IF_NAMESIZE, "h-in");
	snprintf(h->d.ports[1].ifname, IF_NAMESIZE, "h-out");
	h->d.ports[0].ifindex = 1001;
	h->d.ports[1].ifindex = 1002;
	h->d.nr_flows = 1;
	h->d.nr_workers = 1;
	ch = &h->d.flows[0];
	ch->fc.flow = &h->d.cfg.flows[0];
	ch->fc.flow_id = 0;
	ch->fc.daemon = &h->d;
	for (int s = 0; s < h->d.cfg.flows[0].nr_services; s++) {
		const struct cfg_service *svc = &h->d.cfg.flows[0].services[s];
		const struct ferry_service_ops *ops = harness_find(svc->name);

		if (!ops || (ops->configure && ops->configure(&ch->fc, svc->args, &errs,
							       &ch->conf[ch->nr])))
			goto err;
		ch->ops[ch->nr++] = ops;
	}
	h->w = aligned_alloc(64, (sizeof(*h->w) + 63) & ~63ul);
	if (!h->w)
		goto err;
	memset(h->w, 0, sizeof(*h->w));
	h->w->d = &h->d;
	h->w->batch = 64;
	h->w->cpu = -1;
	/* What worker.c gives a worker of this UMEM (1024 frames, rings of 256) and two ports. */
	h->w->hold_budget = worker__hold_budget(1024, 256, 2);
	h->w->now_ns = 1000000000ull;
	h->w->nat = nat_table__create(1024, 40000, 40999);
	if (!h->w->nat || umem__create(&h->w->umem, 1024, 4096, 256))
		goto err;
	/*
	 * Ports without sockets: the worker's own TX path fills their rings and
	 * the harness reads them (harness__take_tx()).  A ring as large as the
	 * UMEM, so no burst ever finds one full.
	 */
	for (int i = 0; i < h->d.nr_ports; i++) {
		if (port__create_memory(&h->w->ports[i], h->w->umem, h->d.ports[i].ifname,
					h->d.ports[i].ifindex, (uint16_t)i, 1024))
			goto err;
		h->w->nr_ports++;
	}
	/* ferryd's order: start() once the interfaces exist, then worker_init(). */
	if (net && harness_net_enter(h))
		goto err;
	for (int s = 0; s < ch->nr; s++)
		if (ch->ops[s]->worker_init &&
		    ch->ops[s]->worker_init(ch->conf[s], h->w, &h->w->svc_state[0][s]))
			goto err;
	harness_net_leave(h);
	free(errs.capture);
	return h;
err:
	harness_net_leave(h);
	free(errs.capture);
	harness__destroy(h);
	return NULL;
}

/* 02:fe or 02:fd, then the address's last four bytes: distinct per neighbour, easy to check. */
void harness__neigh_mac(const char *addr, uint8_t mac[6])
{
	uint8_t b[16] = {};

	mac[0] = 0x02;
	if (inet_pton(AF_INET, addr, b) == 1) {
		mac[1] = 0xfe;
		memcpy(mac + 2, b, 4);
	} else {
		inet_pton(AF_INET6, addr, b);
		mac[1] = 0xfd;
		memcpy(mac + 2, b + 12, 4);
	}
}

void harness__port_mac(int port, uint8_t mac[6])
{
	static const uint8_t base[6] = { 0x02, 0xfe, 0, 0, 0, 0 };

	memcpy(mac, base, 6);
	mac[5] = (uint8_t)(port + 1);
}

/* `ip -batch` lines of the private namespace's links, addresses and neighbours. */
static void harness_net_topology(FILE *ip)
{
	static const char *const links[] = { "h-in", "h-out" };
	static const char *const addrs[] = {
		"198.18.1.1/24 dev h-in",  "fd00:1::1/64 dev h-in nodad",
		"198.18.2.1/24 dev h-out", "198.18.3.1/24 dev h-out",
		"fd00:2::1/64 dev h-out nodad", "fd00:3::1/64 dev h-out nodad",
	};
	char addr[64];
	uint8_t mac[6];

	fprintf(ip, "link set lo up\n");
	for (int i = 0; i < 2; i++) {
		harness__port_mac(i, mac);
		fprintf(ip,
			"link add %s address %02x:%02x:%02x:%02x:%02x:%02x type veth peer name "
			"%s-p\n",
			links[i], mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], links[i]);
		fprintf(ip, "link set %s up\nlink set %s-p up\n", links[i], links[i]);
	}
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		fprintf(ip, "addr add %s\n", addrs[i]);
	/* Permanent: the kernel answers lookups at once and never sends ARP or ND. */
	for (int net = 1; net <= 3; net++) {
		for (int host = 2; host <= 9; host++) {
			for (int v6 = 0; v6 <= 1; v6++) {
				if (v6)
					snprintf(addr, sizeof(addr), "fd00:%d::%d", net, host);
				else
					snprintf(addr, sizeof(addr), "198.18.%d.%d", net, host);
				harness__neigh_mac(addr, mac);
				fprintf(ip,
					"neigh replace %s lladdr %02x:%02x:%02x:%02x:%02x:%02x dev "
					"%s nud permanent\n",
					addr, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
					net == 1 ? "h-in" : "h-out");
			}
		}
	}
}

/*
 * Moves the calling thread into a new network namespace, builds the
 * topology there, and runs what needs it: the worker's resolver and the
 * services' start().  harness_net_leave() goes back; sockets made here stay
 * bound to the namespace, and h->net_ns keeps it until the harness goes.
 */
static int harness_net_enter(struct svc_harness *h)
{
	const struct flow_chain *ch = &h->d.flows[0];
	FILE *ip;
	int err;

	h->orig_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (h->orig_ns < 0)
		return -errno;
	if (unshare(CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "harness: cannot make a network namespace: %s\n", strerror(-err));
		return err;
	}
	h->net_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (h->net_ns < 0)
		return -errno;
	ip = popen("ip -batch -", "w");
	if (!ip)
		return -errno;
	harness_net_topology(ip);
	if (pclose(ip)) {
		fprintf(stderr, "harness: ip -batch failed to build the topology\n");
		return -EIO;
	}
	for (int i = 0; i < h->d.nr_ports; i++) {
		h->d.ports[i].ifindex = (int)if_nametoindex(h->d.ports[i].ifname);
		if (!h->d.ports[i].ifindex)
			return -ENODEV;
		h->w->ports[i]->ifindex = h->d.ports[i].ifindex;
	}
	err = nh_resolver__create(&h->w->nh);
	if (err)
		return err;
	for (int s = 0; s < ch->nr; s++) {
		if (!ch->ops[s]->start)
			continue;
		err = ch->ops[s]->start(&ch->fc, ch->conf[s]);
		if (err)
			return err;
	}
	return 0;
}

static void harness_net_leave(struct svc_harness *h)
{
	if (h->orig_ns < 0)
		return;
	if (setns(h->orig_ns, CLONE_NEWNET))
		fprintf(stderr, "harness: cannot return to the original network namespace: %s\n",
			strerror(errno));
	close(h->orig_ns);
	h->orig_ns = -1;
}

static void harness_sent(const struct xdp_desc *d, void *ctx)
{
	struct svc_harness *h = ctx;
	struct harness_out *o;

	if (h->nr_out >= HARNESS_MAX_OUT)
		return;
	o = &h->out[h->nr_out++];
	o->len = d->len < sizeof(o->data) ? d->len : sizeof(o->data);
	memcpy(o->data, umem__data(h->w->umem, d->addr), o->len);
	o->port = h->sending_port;
}

/*
 * Sends what the chain queued (worker__flush_tx(), as the worker loop does
 * after its bursts), takes it off the ports' TX rings as the kernel would,
 * and completes it back into the pool.
 */
static void harness__take_tx(struct svc_harness *h)
{
	struct ferry_worker *w = h->w;

	worker__flush_tx(w);
	for (int port = 0; port < w->nr_ports; port++) {
		h->sending_port = (uint16_t)port;
		port__memory_tx(w->ports[port], harness_sent, h);
		port__complete(w->ports[port]);
	}
}

int harness__run(struct svc_harness *h, const uint8_t *const *frames, const uint32_t *lens,
		 uint32_t n)
{
	struct ferry_worker *w = h->w;
	struct ferry_pkt *pkts[WORKER_MAX_BATCH];
	uint32_t nr = 0;

	for (uint32_t i = 0; i < n && i < WORKER_MAX_BATCH; i++) {
		struct ferry_pkt *p = &w->pkts[nr];
		uint64_t addr;

		if (!umem__alloc(w->umem, &addr))
			return -ENOBUFS;
		memset(p, 0, sizeof(*p));
		p->addr = addr;
		p->data = umem__data(w->umem, addr);
		memcpy(p->data, frames[i], lens[i]);
		p->len = lens[i];
		if (pkt_parse(p->data, p->len, &p->pi) != PKT_OK) {
			umem__free(w->umem, addr);
			continue;
		}
		/* As worker__classify() does, with the direction the test set. */
		p->len = pkt_frame_len(&p->pi, p->len);
		p->flow_id = 0;
		p->in_port = 0;
		p->dir = h->dir;
		w->flow_stats[0].rx_packets++;
		pkts[nr++] = p;
	}
	worker__run_chain(w, 0, pkts, nr);
	/*
	 * As the worker loop does after its bursts: a deadline already due
	 * (forward's queued next-hop lookups ask for one) runs the ticks now.
	 */
	if (w->wake_ns && w->now_ns >= w->wake_ns) {
		const struct flow_chain *ch = &h->d.flows[0];

		w->wake_ns = 0;
		w->poll_ns = 0;
		w->nr_waits = 0;
		for (int s = 0; s < ch->nr; s++)
			if (ch->ops[s]->tick)
				ch->ops[s]->tick(ch->conf[s], w->svc_state[0][s], w);
	}
	harness__take_tx(h);
	return (int)nr;
}

void harness__tick(struct svc_harness *h, uint64_t advance_ns)
{
	const struct flow_chain *ch = &h->d.flows[0];

	h->w->now_ns += advance_ns;
	/* As the worker's tick does: services ask again for the deadlines they still have. */
	h->w->wake_ns = 0;
	h->w->poll_ns = 0;
	h->w->nr_waits = 0;
	for (int s = 0; s < ch->nr; s++)
		if (ch->ops[s]->tick)
			ch->ops[s]->tick(ch->conf[s], h->w->svc_state[0][s], h->w);
	harness__take_tx(h);
}

void harness__set_dir(struct svc_harness *h, uint8_t dir)
{
	h->dir = dir;
}

uint32_t harness__nr_out(const struct svc_harness *h)
{
	return h->nr_out;
}

const struct harness_out *harness__out(const struct svc_harness *h, uint32_t i)
{
	return i < h->nr_out ? &h->out[i] : NULL;
}

void harness__clear_out(struct svc_harness *h)
{
	h->nr_out = 0;
}

struct ferry_worker *harness__worker(struct svc_harness *h)
{
	return h->w;
}

const struct ferry_fwd_stats *harness__flow_stats(const struct svc_harness *h)
{
	return &h->w->flow_stats[0];
}

const struct ferry_svc_stats *harness__svc_stats(const struct svc_harness *h, int service)
{
	return &h->w->svc_stats[0][service];
}

int harness__check_frames(const struct svc_harness *h)
{
	return umem__check(h->w->umem, "harness");
}

uint32_t harness__held_frames(const struct svc_harness *h)
{
	return h->w->umem->held;
}

void harness__service_counters(struct svc_harness *h, int service,
			       uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct flow_chain *ch = &h->d.flows[0];

	if (service < ch->nr && ch->ops[service]->stats)
		ch->ops[service]->stats(ch->conf[service], h->w->svc_state[0][service], counters);
}

void harness__destroy(struct svc_harness *h)
{
	if (!h)
		return;
	for (int s = 0; s < h->d.flows[0].nr; s++) {
		const struct flow_chain *ch = &h->d.flows[0];

		if (h->w && ch->ops[s]->worker_destroy && h->w->svc_state[0][s])
			ch->ops[s]->worker_destroy(ch->conf[s], h->w->svc_state[0][s]);
		if (ch->ops[s]->destroy)
			ch->ops[s]->destroy(ch->conf[s]);
	}
	if (h->w) {
		for (int i = 0; i < h->w->nr_ports; i++)
			port__destroy(h->w->ports[i], -1);
		if (h->w->umem) {
			/* Frames services still hold would make the UMEM look busy: none may. */
			h->w->umem->held = 0;
			h->w->umem->nr_free = h->w->umem->nr_frames;
			umem__destroy(h->w->umem);
		}
		nat_table__destroy(h->w->nat);
		if (h->w->nh)
			nh_resolver__destroy(h->w->nh);
		free(h->w);
	}
	if (h->net_ns >= 0)
		close(h->net_ns);
	config__free(&h->d.cfg);
	free(h->out);
	free(h->yaml);
	free(h);
}

uint32_t harness__udp4(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, const void *payload, uint32_t len)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	struct pkt_info pi;
	uint8_t *ip = buf + 14, *udp = buf + 34;
	uint16_t c;

	memcpy(buf, macs, 12);
	buf[12] = 0x08;
	buf[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((28 + len) >> 8);
	ip[3] = (uint8_t)(28 + len);
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = (uint8_t)(dport >> 8);
	udp[3] = (uint8_t)dport;
	udp[4] = (uint8_t)((8 + len) >> 8);
	udp[5] = (uint8_t)(8 + len);
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, payload, len);
	c = csum_ipv4_header(ip, 20);
	memcpy(ip + 10, &c, 2);
	if (pkt_parse(buf, 42 + len, &pi) == PKT_OK) {
		c = csum_l4_compute(buf, &pi);
		memcpy(udp + 6, &c, 2);
	}
	return 42 + len;
}

uint32_t harness__udp6(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
		       uint16_t dport, const void *payload, uint32_t len)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	struct pkt_info pi;
	uint8_t *ip = buf + 14, *udp = buf + 54;
	uint16_t c;

	memcpy(buf, macs, 12);
	buf[12] = 0x86;
	buf[13] = 0xdd;
	memset(ip, 0, 40);
	ip[0] = 0x60;
	ip[4] = (uint8_t)((8 + len) >> 8);
	ip[5] = (uint8_t)(8 + len);
	ip[6] = IPPROTO_UDP;
	ip[7] = 64;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = (uint8_t)(dport >> 8);
	udp[3] = (uint8_t)dport;
	udp[4] = (uint8_t)((8 + len) >> 8);
	udp[5] = (uint8_t)(8 + len);
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, payload, len);
	if (pkt_parse(buf, 62 + len, &pi) == PKT_OK) {
		c = csum_l4_compute(buf, &pi);
		memcpy(udp + 6, &c, 2);
	}
	return 62 + len;
}
