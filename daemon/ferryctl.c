// SPDX-License-Identifier: BSD-2-Clause
/*
 * ferryctl: reads what a running ferryd pinned and prints it.  It needs no
 * config file: flow names come from the pinned ferry_flow_info map, and the
 * interfaces are whatever ferry_xdp_stats_<ifname> pins are present.
 *
 * Counters are per CPU and summed here; a PERCPU map hands user space one
 * value per possible CPU, each rounded up to 8 bytes (all ferry records
 * already are multiples of 8).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ferry_shared.h"
#include "ferryctl_ctl.h"
#include "ferryctl_health.h"
#include "version.h"
#include "ferryctl_metrics.h"

#define DEFAULT_PIN_PATH "/sys/fs/bpf/ferry"

enum {
	EXIT_OK = 0,
	EXIT_NO_MAPS = 1, /* missing or unreadable pins */
	EXIT_USAGE = 2,
	EXIT_PERM = 3,    /* the pins exist but may not be opened (not root) */
};

enum out_format {
	FMT_TEXT,
	FMT_JSON,
	FMT_PROMETHEUS,
};

/* A counter's value at the previous --watch refresh, to show its rate. */
struct rate {
	char key[96];
	__u64 value;
};

struct counter {
	const char *name;
	size_t off;
};

#define FLOW_COUNTER(f) { #f, offsetof(struct ferry_flow_stats, f) }
static const struct counter flow_counters[] = {
	FLOW_COUNTER(packets),		FLOW_COUNTER(bytes),	       FLOW_COUNTER(redirected),
	FLOW_COUNTER(passed_no_socket), FLOW_COUNTER(passed_fragment), FLOW_COUNTER(reply_packets),
	FLOW_COUNTER(dropped_no_socket), FLOW_COUNTER(dropped_fragment),
	FLOW_COUNTER(dropped_source_route), FLOW_COUNTER(offloaded), FLOW_COUNTER(offloaded_bytes),
	FLOW_COUNTER(offloaded_reply), FLOW_COUNTER(offloaded_reply_bytes),
	FLOW_COUNTER(offload_redirect_failed), FLOW_COUNTER(offload_rate_limited),
	FLOW_COUNTER(offload_rate_limited_bytes), FLOW_COUNTER(offload_rate_limited_reply),
	FLOW_COUNTER(offload_rate_limited_reply_bytes),
	FLOW_COUNTER(offload_rate_limited_over_bytes),
};

#define FWD_COUNTER(f) { #f, offsetof(struct ferry_fwd_stats, f) }
static const struct counter fwd_counters[] = {
	FWD_COUNTER(rx_packets),       FWD_COUNTER(rx_bytes),	      FWD_COUNTER(tx_packets),
	FWD_COUNTER(tx_bytes),	       FWD_COUNTER(reply_packets),    FWD_COUNTER(reply_bytes),
	FWD_COUNTER(sessions_created), FWD_COUNTER(sessions_expired),
	FWD_COUNTER(handoff_packets),  FWD_COUNTER(nat_port_probes),
	FWD_COUNTER(sessions_early_dropped), FWD_COUNTER(nh_lookups),
	FWD_COUNTER(sessions_offloaded), FWD_COUNTER(offload_full),
};

/* Drop counters by reason name, in the order the shared header lists them. */
#define DROP_COUNTER(r) { #r, offsetof(struct ferry_fwd_stats, drop_##r) },
static const struct counter drop_counters[] = { FERRY_DROP_REASONS(DROP_COUNTER) };

/* What the chain runner counts for every service; the services' own are named in ferry_svc_info. */
#define SVC_COUNTER(f) { #f, offsetof(struct ferry_svc_stats, f) }
static const struct counter svc_counters[] = {
	SVC_COUNTER(packets_in), SVC_COUNTER(bytes_in), SVC_COUNTER(passed),  SVC_COUNTER(sent),
	SVC_COUNTER(dropped),	 SVC_COUNTER(held),	SVC_COUNTER(emitted),
};

#define XDP_COUNTER(f) { #f, offsetof(struct ferry_xdp_stats, f) }
static const struct counter xdp_counters[] = {
	XDP_COUNTER(packets),	       XDP_COUNTER(steered),	     XDP_COUNTER(passed),
	XDP_COUNTER(passed_malformed), XDP_COUNTER(passed_fragment), XDP_COUNTER(dropped_policy),
	XDP_COUNTER(offloaded),
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The AF_XDP socket's struct xdp_statistics, then ferry's struct port_stats. */
#define QUEUE_COUNTER(f) { #f, offsetof(struct ferry_queue_stats, f) }
static const struct counter xsk_counters[] = {
	QUEUE_COUNTER(rx_dropped),	 QUEUE_COUNTER(rx_invalid_descs),
	QUEUE_COUNTER(tx_invalid_descs), QUEUE_COUNTER(rx_ring_full),
	QUEUE_COUNTER(rx_fill_ring_empty_descs), QUEUE_COUNTER(tx_ring_empty_descs),
};
/* The interface's struct ferry_link_stats (IFLA_STATS64), in each queue slot. */
#define LINK_COUNTER(f) { #f, offsetof(struct ferry_queue_stats, link.f) }
static const struct counter link_counters[] = {
	LINK_COUNTER(rx_packets), LINK_COUNTER(tx_packets), LINK_COUNTER(rx_dropped),
	LINK_COUNTER(tx_dropped), LINK_COUNTER(rx_errors),  LINK_COUNTER(tx_errors),
	LINK_COUNTER(rx_missed_errors),
};
static const struct counter port_counters[] = {
	QUEUE_COUNTER(rx_packets), QUEUE_COUNTER(tx_packets), QUEUE_COUNTER(tx_ring_full),
	QUEUE_COUNTER(tx_kicks),   QUEUE_COUNTER(fill_kicks), QUEUE_COUNTER(rx_invalid),
	QUEUE_COUNTER(busy_polls), QUEUE_COUNTER(drop_malformed),
};

/*
 * A set of counters of one record and where each output format puts it.
 * Every format prints counters through these and put_group() or
 * prom_group(): the tables above are walked in one place.
 */
struct counter_group {
	/* text: the line's label (and the rates' key) */
	const char *label;
	/* text: NULL, a line of their own; else on the line already open, this first */
	const char *text_sep;
	/* JSON: the key of the object they are in; NULL: in the record's own object */
	const char *json_key;
	/* text, JSON: only those that are not 0 (text: "none" when all are) */
	bool only_nonzero;
	/* Printed with this group: JSON, inside its object; text, on the next line */
	const struct counter_group *inner;
	/* Prometheus: a family <prefix><counter name>_total per counter ... */
	const char *prom_prefix;
	const char *prom_help;
	/* ... or, if set, one family <prefix><label>_total, the counter's name this label */
	const char *prom_label;
	const struct counter *ctrs;
	size_t n;
};

/* Text label, JSON key, counters; then the Prometheus families' prefix and help. */
#define GROUP(lbl, key, a) .label = (lbl), .json_key = (key), .ctrs = (a), .n = ARRAY_SIZE(a)
#define PROM(prefix, help) .prom_prefix = (prefix), .prom_help = (help)

/* Only the reasons that happened: a list of ten zeros hides the one that matters. */
static const struct counter_group drops_group = {
	GROUP("drops", "drops", drop_counters), .only_nonzero = true, .prom_label = "reason",
	PROM("ferry_datapath_", "Packets the workers dropped, by flow and reason."),
};
static const struct counter_group steering_group = {
	GROUP("steering", "steering", flow_counters),
	PROM("ferry_flow_", "XDP steering counter of the flow (ferry_flow_stats)."),
};
static const struct counter_group datapath_group = {
	GROUP("datapath", "datapath", fwd_counters), .inner = &drops_group,
	PROM("ferry_datapath_", "Worker data-path counter of the flow (ferry_fwd_stats)."),
};
/* The chain runner's counters of a service, on the line its name opens. */
static const struct counter_group svc_group = { GROUP(NULL, NULL, svc_counters), .text_sep = "" };
static const struct counter_group xdp_group = {
	GROUP("xdp", NULL, xdp_counters),
	PROM("ferry_interface_xdp_", "XDP program counter of the interface (ferry_xdp_stats)."),
};
/* Prometheus only: the chain runner's counters of each service, and the app slots'. */
static const struct counter_group svc_prom_group = {
	GROUP(NULL, NULL, svc_counters),
	PROM("ferry_service_", "Chain runner counter of the service (ferry_svc_stats)."),
};
#define APP_COUNTER(f) { #f, offsetof(struct ferry_app_slot_stats, f) }
static const struct counter app_counters[] = {
	APP_COUNTER(in),       APP_COUNTER(out),      APP_COUNTER(dropped),
	APP_COUNTER(bypassed), APP_COUNTER(bad_desc), APP_COUNTER(timeouts),
};
static const struct counter_group app_group = {
	GROUP(NULL, NULL, app_counters),
	PROM("ferry_app_", "Counter of the app slot (ferry_app_slots)."),
};
#define LB_COUNTER(f) { #f, offsetof(struct ferry_lb_upstream_stats, f) }
static const struct counter lb_counters[] = {
	LB_COUNTER(sessions),	      LB_COUNTER(checks_ok), LB_COUNTER(checks_failed),
	LB_COUNTER(passive_failures), LB_COUNTER(went_down), LB_COUNTER(went_up),
};
/* An lb upstream's counters, on the line its address opens. */
static const struct counter_group lb_group = {
	GROUP(NULL, "counters", lb_counters), .text_sep = " |",
	PROM("ferry_lb_upstream_", "Counter of an lb upstream, by flow and address (ferry_lb_upstreams)."),
};
static const struct counter_group kernel_group = {
	GROUP("kernel", "kernel", link_counters),
	PROM("ferry_interface_kernel_", "The kernel's counter of the interface (IFLA_STATS64)."),
};
static const struct counter_group xsk_group = {
	GROUP("xsk", "xdp_statistics", xsk_counters),
	PROM("ferry_queue_", "AF_XDP socket XDP_STATISTICS counter of the interface queue."),
};
static const struct counter_group port_group = {
	GROUP("port", "port", port_counters),
	PROM("ferry_queue_", "ferry port counter of the interface queue's AF_XDP socket."),
};

struct pinned_map {
	const char *name;
	int fd;
	struct bpf_map_info info;
};

struct emitter;

struct ctl {
	const char *pin_path;
	const struct emitter *em; /* text or JSON */
	bool json;
	enum out_format format;
	bool watch;
	double interval;   /* --watch seconds */
	double elapsed;    /* seconds since the previous refresh, 0 on the first */
	char ctx[48];      /* what the counters being printed belong to, for their rates */
	struct rate *prev, *cur;
	size_t nr_prev, nr_cur, cap_prev, cap_cur;
	FILE *out; /* in memory until complete: a failure prints no half a report */
	int ncpus;
	struct pinned_map flow_info, flow_stats, fwd_stats, svc_info, svc_stats;
	struct pinned_map queue_stats, rules, app_slots;
	struct pinned_map lb_upstreams; /* fd -1: a ferryd without lb upstream records */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: ferryctl [-p PIN_PATH] stats|flows|sessions --count|apps [--json | --format FMT]\n"
		   "                [--watch [SECONDS]]\n"
		   "       ferryctl reload [--dry-run] [--socket PATH]\n"
		   "       ferryctl sessions [--flow NAME] [--addr ADDRESS] [--limit N] [--json] [--socket PATH]\n"
		   "       ferryctl [-p PIN_PATH] health [--watch INTERVAL --up CMD --down CMD]\n"
		   "       ferryctl [-p PIN_PATH] metrics --listen ADDR:PORT\n"
		   "       ferryctl --help | --version\n");
	if (f == stderr) {
		fprintf(f, "Try 'ferryctl --help' for more information.\n");
		return;
	}
	fprintf(f, "\n"
		   "Print what a running ferryd keeps in its pinned BPF maps.\n"
		   "\n"
		   "  -p, --pin-path PATH  where ferryd pins its maps\n"
		   "                       (default " DEFAULT_PIN_PATH ")\n"
		   "  -h, --help           show this help\n"
		   "      --version        the version and the git commit it was built from\n"
		   "\n"
		   "stats: per configured flow, the XDP steering counters, the data-path\n"
		   "counters (drops by reason) and the counters of each service of its chain;\n"
		   "the XDP counters of each interface; per interface and queue, the AF_XDP\n"
		   "socket's XDP_STATISTICS and ferry's port counters.\n"
		   "flows: each configured flow's match rules, on_failure and service chain.\n"
		   "sessions --count: the number of NAT sessions of each flow, per worker.\n"
		   "sessions: each NAT session (ferryctl sessions --help), from ferryd.\n"
		   "reload: reload ferryd's config and print what changed (ferryctl reload --help).\n"
		   "apps: the flows' app slots: owner, the attached application (pid, uid),\n"
		   "its counters, queue depth and average round trip.\n"
		   "health: exit 0 when ferryd runs healthy, else 1 and why; --watch runs\n"
		   "commands when that changes (ferryctl health --help).\n"
		   "metrics: serve `stats --format prometheus` over HTTP at\n"
		   "http://ADDR:PORT/metrics, read from the maps at each request.\n"
		   "\n"
		   "  --json               one JSON object instead of text\n"
		   "  --format FMT         text, json or prometheus (stats only: the\n"
		   "                       node_exporter textfile format)\n"
		   "  -w, --watch [SECONDS] refresh every SECONDS (default 2), showing rates\n"
		   "\n"
		   "Exit status: 0 success, 1 ferryd not running or maps missing or\n"
		   "unreadable, 2 usage error, 3 permission denied (run as root).\n");
}

/* A text counter; under --watch followed by its rate since the last refresh. */
static void put_counter(struct ctl *c, const char *label, const char *name, __u64 v)
{
	char key[sizeof(c->prev->key)];

	fprintf(c->out, " %s %llu", name, (unsigned long long)v);
	if (!c->watch)
		return;
	snprintf(key, sizeof(key), "%s/%s/%s", c->ctx, label, name);
	for (size_t i = 0; c->elapsed > 0 && i < c->nr_prev; i++) {
		if (strcmp(c->prev[i].key, key))
			continue;
		if (v > c->prev[i].value)
			fprintf(c->out, " (%.0f/s)", (double)(v - c->prev[i].value) / c->elapsed);
		break;
	}
	if (c->nr_cur == c->cap_cur) {
		size_t cap = c->cap_cur ? c->cap_cur * 2 : 256;
		struct rate *r = realloc(c->cur, cap * sizeof(*r));

		if (!r)
			return; /* no rate for it next time: nothing worse */
		c->cur = r;
		c->cap_cur = cap;
	}
	memcpy(c->cur[c->nr_cur].key, key, sizeof(key));
	c->cur[c->nr_cur++].value = v;
}

static int open_pin(struct ctl *c, struct pinned_map *m, const char *name, size_t value_size,
		    bool may_vanish)
{
	__u32 len = sizeof(m->info);
	char path[4096];
	int err;

	m->name = name;
	m->fd = -1;
	if (snprintf(path, sizeof(path), "%s/%s", c->pin_path, name) >= (int)sizeof(path)) {
		fprintf(stderr, "ferryctl: pin path %s: too long\n", c->pin_path);
		return -ENAMETOOLONG;
	}
	m->fd = bpf_obj_get(path);
	if (m->fd < 0) {
		err = -errno;
		if (err == -ENOENT && may_vanish)
			return err;
		if (err == -ENOENT || err == -ENOTDIR)
			fprintf(stderr, "ferryctl: no %s under %s: is ferryd running?\n", name,
				c->pin_path);
		else
			fprintf(stderr, "ferryctl: cannot open %s: %s%s\n", path, strerror(-err),
				err == -EPERM || err == -EACCES ? " (run as root)" : "");
		return err;
	}
	err = bpf_obj_get_info_by_fd(m->fd, &m->info, &len);
	if (err) {
		fprintf(stderr, "ferryctl: cannot query %s: %s\n", path, strerror(-err));
		return err;
	}
	/* A ferryd built from another version of ferry_shared.h. */
	if (m->info.value_size != value_size || m->info.key_size != sizeof(__u32)) {
		fprintf(stderr,
			"ferryctl: %s: value size %u, expected %zu: ferryd and ferryctl versions "
			"differ\n",
			path, m->info.value_size, value_size);
		return -EPROTO;
	}
	return 0;
}

static void close_pin(struct pinned_map *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* One record of a plain array map; a failure names the map and the key. */
static int read_elem(struct ctl *c, struct pinned_map *m, __u32 key, void *out)
{
	int err;

	if (!bpf_map_lookup_elem(m->fd, &key, out))
		return 0;
	err = -errno;
	fprintf(stderr, "ferryctl: %s/%s: cannot read key %u: %s\n", c->pin_path, m->name, key,
		strerror(-err));
	return err;
}

/* Sums the per-CPU copies of one record of u64 counters into sum. */
static int read_percpu(struct ctl *c, struct pinned_map *m, __u32 key, void *sum, size_t size)
{
	size_t stride = (size + 7) & ~(size_t)7;
	unsigned char *vals;
	int err;

	vals = calloc(c->ncpus, stride);
	if (!vals)
		return -ENOMEM;
	err = bpf_map_lookup_elem(m->fd, &key, vals);
	if (err) {
		fprintf(stderr, "ferryctl: %s/%s: cannot read key %u: %s\n", c->pin_path, m->name,
			key, strerror(-err));
		goto out_free;
	}
	memset(sum, 0, size);
	for (int cpu = 0; cpu < c->ncpus; cpu++) {
		const __u64 *v = (const __u64 *)(vals + cpu * stride);
		__u64 *s = sum;

		for (size_t i = 0; i < size / sizeof(__u64); i++)
			s[i] += v[i];
	}
out_free:
	free(vals);
	return err;
}

static __u64 counter_value(const void *rec, const struct counter *ctr)
{
	__u64 v;

	memcpy(&v, (const char *)rec + ctr->off, sizeof(v));
	return v;
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/*
 * What differs between the text and the JSON output of a group of
 * counters; put_group() does the walk.  nth counts the counters printed
 * before this one (after: in end()).
 */
struct emitter {
	void (*begin)(struct ctl *c, const struct counter_group *g, const char *label);
	void (*counter)(struct ctl *c, const struct counter_group *g, const char *label,
			const char *name, __u64 v, size_t nth);
	void (*end)(struct ctl *c, const struct counter_group *g, size_t nth);
	bool nests; /* a group's inner group goes inside it, not after it */
};

static void text_begin(struct ctl *c, const struct counter_group *g, const char *label)
{
	if (!g->text_sep)
		fprintf(c->out, "  %-10s", label);
}

static void text_counter(struct ctl *c, const struct counter_group *g, const char *label,
			 const char *name, __u64 v, size_t nth)
{
	if (g->text_sep && !nth)
		fputs(g->text_sep, c->out);
	put_counter(c, label, name, v);
}

static void text_end(struct ctl *c, const struct counter_group *g, size_t nth)
{
	if (!g->text_sep)
		fprintf(c->out, "%s\n", g->only_nonzero && !nth ? " none" : "");
}

static const struct emitter text_emitter = {
	.begin = text_begin,
	.counter = text_counter,
	.end = text_end,
};

/* A group with a key follows something in its object: it opens with a comma. */
static void json_begin(struct ctl *c, const struct counter_group *g, const char *label)
{
	if (g->json_key)
		fprintf(c->out, ",\"%s\":{", g->json_key);
}

static void json_counter(struct ctl *c, const struct counter_group *g, const char *label,
			 const char *name, __u64 v, size_t nth)
{
	if (nth || !g->json_key)
		fputc(',', c->out);
	json_string(c->out, name);
	fprintf(c->out, ":%llu", (unsigned long long)v);
}

static void json_end(struct ctl *c, const struct counter_group *g, size_t nth)
{
	if (g->json_key)
		fputc('}', c->out);
}

static const struct emitter json_emitter = {
	.begin = json_begin,
	.counter = json_counter,
	.end = json_end,
	.nests = true,
};

/* The counters of group g in record rec; label NULL: the group's own. */
static void put_group(struct ctl *c, const struct counter_group *g, const char *label,
		      const void *rec)
{
	const struct emitter *em = c->em;
	size_t nth = 0;

	if (!label)
		label = g->label;
	em->begin(c, g, label);
	for (size_t i = 0; i < g->n; i++) {
		__u64 v = counter_value(rec, &g->ctrs[i]);

		if (g->only_nonzero && !v)
			continue;
		em->counter(c, g, label, g->ctrs[i].name, v, nth++);
	}
	if (g->inner && em->nests)
		put_group(c, g->inner, NULL, rec);
	em->end(c, g, nth);
	if (g->inner && !em->nests)
		put_group(c, g->inner, NULL, rec);
}

/* Flow id's record: 1 if the flow is configured (its name terminated), 0 if not, or -errno. */
static int read_flow(struct ctl *c, __u32 id, struct ferry_flow_info *fi)
{
	int err = read_elem(c, &c->flow_info, id, fi);

	if (err)
		return err;
	if (!fi->configured)
		return 0;
	fi->name[sizeof(fi->name) - 1] = '\0';
	return 1;
}

/* A flow's opening: text, its heading line; JSON, its object's name and id. */
static void put_flow_head(struct ctl *c, const char *name, __u32 id, bool first)
{
	if (c->json) {
		fprintf(c->out, "%s{\"name\":", first ? "" : ",");
		json_string(c->out, name);
		fprintf(c->out, ",\"id\":%u", id);
	} else {
		fprintf(c->out, "flow %s (id %u)\n", name, id);
		snprintf(c->ctx, sizeof(c->ctx), "flow%u", id);
	}
}

/*
 * The flow's chain, in order: the generic counters of each service, then
 * its own under the names it gave them.
 */
static int print_services(struct ctl *c, __u32 flow_id)
{
	FILE *out = c->out;
	bool first = true;
	int err;

	if (c->json)
		fprintf(out, ",\"services\":[");
	for (__u32 pos = 0; pos < FERRY_MAX_SERVICES; pos++) {
		__u32 key = flow_id * FERRY_MAX_SERVICES + pos;
		struct counter own[FERRY_SVC_COUNTERS];
		struct counter_group own_group = {
			.json_key = "counters",
			.text_sep = " |",
			.ctrs = own,
		};
		struct ferry_svc_info si;
		struct ferry_svc_stats ss;
		char label[16];

		err = read_elem(c, &c->svc_info, key, &si);
		if (err)
			return err;
		if (!si.configured)
			continue;
		si.service[sizeof(si.service) - 1] = '\0';
		err = read_percpu(c, &c->svc_stats, key, &ss, sizeof(ss));
		if (err)
			return err;
		/* The service's own counters: a table of the names it gave. */
		for (int i = 0; i < FERRY_SVC_COUNTERS; i++) {
			si.counter_names[i][FERRY_SVC_NAME_LEN - 1] = '\0';
			if (!si.counter_names[i][0])
				continue;
			own[own_group.n].name = si.counter_names[i];
			own[own_group.n++].off = offsetof(struct ferry_svc_stats, counters) +
						 i * sizeof(ss.counters[0]);
		}
		snprintf(label, sizeof(label), "service%u", pos);
		if (c->json) {
			fprintf(out, "%s{\"name\":", first ? "" : ",");
			json_string(out, si.service);
		} else {
			fprintf(out, "  %-10s %u %s", "service", pos, si.service);
		}
		put_group(c, &svc_group, label, &ss);
		put_group(c, &own_group, label, &ss);
		fputc(c->json ? '}' : '\n', out);
		first = false;
	}
	if (c->json)
		fputc(']', out);
	return 0;
}

/*
 * The flow's lb upstreams by address (ferry_lb_upstreams): health state,
 * weight and counters, one line each.
 */
static int print_lb_upstreams(struct ctl *c, __u32 flow_id)
{
	FILE *out = c->out;
	bool first = true;
	int err;

	if (c->lb_upstreams.fd < 0)
		return 0;
	for (__u32 i = 0; i < FERRY_LB_MAX_UPSTREAMS; i++) {
		__u32 key = flow_id * FERRY_LB_MAX_UPSTREAMS + i;
		struct ferry_lb_upstream_stats st;
		const char *state;
		char label[24];

		err = read_elem(c, &c->lb_upstreams, key, &st);
		if (err)
			return err;
		if (!st.configured)
			continue;
		st.address[sizeof(st.address) - 1] = '\0';
		state = !st.up ? "down" : !st.weight ? "drained" : "up";
		snprintf(label, sizeof(label), "lb%u", i);
		if (c->json) {
			fprintf(out, "%s{\"address\":", first ? ",\"lb_upstreams\":[" : ",");
			json_string(out, st.address);
			fprintf(out, ",\"state\":\"%s\",\"up\":%u,\"weight\":%u,\"checked\":%u",
				state, st.up, st.weight, st.checked);
		} else {
			fprintf(out, "  %-10s %s %s weight %u%s", "upstream", st.address, state,
				st.weight, st.checked ? "" : " (not checked)");
		}
		put_group(c, &lb_group, label, &st);
		fputc(c->json ? '}' : '\n', out);
		first = false;
	}
	if (c->json && !first)
		fputc(']', out);
	return 0;
}

/* Of the flow's packets, the share the XDP fast path forwarded itself. */
static void put_offload_share(struct ctl *c, const struct ferry_flow_stats *fs)
{
	double share = fs->packets ? (double)fs->offloaded / (double)fs->packets : 0;

	if (c->json)
		fprintf(c->out, ",\"offloaded_share\":%.4f", share);
	else if (fs->offloaded)
		fprintf(c->out, "  %-10s %.1f%% of its packets forwarded in XDP\n", "offload",
			100 * share);
}

static int print_flows(struct ctl *c)
{
	FILE *out = c->out;
	bool first = true;
	int err;

	if (c->json)
		fprintf(out, "\"flows\":[");
	for (__u32 id = 0; id < c->flow_info.info.max_entries; id++) {
		struct ferry_flow_info fi;
		struct ferry_flow_stats fs;
		struct ferry_fwd_stats fwd;

		err = read_flow(c, id, &fi);
		if (err <= 0) {
			if (err)
				return err;
			continue;
		}
		err = read_percpu(c, &c->flow_stats, id, &fs, sizeof(fs));
		if (err)
			return err;
		err = read_percpu(c, &c->fwd_stats, id, &fwd, sizeof(fwd));
		if (err)
			return err;

		put_flow_head(c, fi.name, id, first);
		put_group(c, &steering_group, NULL, &fs);
		put_group(c, &datapath_group, NULL, &fwd);
		put_offload_share(c, &fs);
		err = print_services(c, id);
		if (!err)
			err = print_lb_upstreams(c, id);
		if (err)
			return err;
		if (c->json)
			fputc('}', out);
		first = false;
	}
	if (c->json)
		fputc(']', out);
	return 0;
}

static int xdp_stats_pin(const struct dirent *de)
{
	const size_t plen = strlen(FERRY_PIN_XDP_STATS "_");

	return !strncmp(de->d_name, FERRY_PIN_XDP_STATS "_", plen) && de->d_name[plen];
}

/* A live socket's slot of interface `ifname`, for the interface's kernel counters. */
static bool find_link_stats(struct ctl *c, const char *ifname, struct ferry_queue_stats *qs)
{
	for (__u32 key = 0; key < c->queue_stats.info.max_entries; key++) {
		if (bpf_map_lookup_elem(c->queue_stats.fd, &key, qs) || !qs->configured)
			continue;
		qs->ifname[sizeof(qs->ifname) - 1] = '\0';
		if (!strcmp(qs->ifname, ifname))
			return true;
	}
	return false;
}

static int print_ifaces(struct ctl *c)
{
	const size_t plen = strlen(FERRY_PIN_XDP_STATS "_");
	struct dirent **names;
	FILE *out = c->out;
	bool first = true;
	int n, err = 0;

	n = scandir(c->pin_path, &names, xdp_stats_pin, alphasort);
	if (n < 0) {
		err = -errno;
		fprintf(stderr, "ferryctl: cannot list %s: %s\n", c->pin_path, strerror(-err));
		return err;
	}
	if (c->json)
		fprintf(out, ",\"interfaces\":[");
	for (int i = 0; i < n; i++) {
		const char *ifname = names[i]->d_name + plen;
		struct pinned_map m = { .fd = -1 };
		struct ferry_queue_stats qs;
		struct ferry_xdp_stats xs;
		int ret;

		if (err)
			goto next;
		ret = open_pin(c, &m, names[i]->d_name, sizeof(xs), true);
		if (ret == -ENOENT)
			goto next; /* ferryd detached it since the listing */
		err = ret ?: read_percpu(c, &m, 0, &xs, sizeof(xs));
		if (err)
			goto next;
		if (c->json) {
			fprintf(out, "%s{\"name\":", first ? "" : ",");
			json_string(out, ifname);
		} else {
			fprintf(out, "interface %s\n", ifname);
			snprintf(c->ctx, sizeof(c->ctx), "if-%s", ifname);
		}
		put_group(c, &xdp_group, NULL, &xs);
		/* What the kernel dropped on the interface, before or after ferry. */
		if (find_link_stats(c, ifname, &qs))
			put_group(c, &kernel_group, NULL, &qs);
		if (c->json)
			fputc('}', out);
		first = false;
next:
		close_pin(&m);
		free(names[i]);
	}
	free(names);
	if (c->json)
		fputc(']', out);
	return err;
}

/* Each live AF_XDP socket, in key order: interface (config order), then queue. */
static int print_queues(struct ctl *c)
{
	FILE *out = c->out;
	bool first = true;

	if (c->json)
		fprintf(out, ",\"queues\":[");
	for (__u32 key = 0; key < c->queue_stats.info.max_entries; key++) {
		struct ferry_queue_stats qs;
		int err = read_elem(c, &c->queue_stats, key, &qs);

		if (err)
			return err;
		if (!qs.configured)
			continue;
		qs.ifname[sizeof(qs.ifname) - 1] = '\0';
		if (c->json) {
			fprintf(out, "%s{\"interface\":", first ? "" : ",");
			json_string(out, qs.ifname);
			fprintf(out, ",\"queue\":%u,\"zerocopy\":%s", qs.queue,
				qs.zerocopy ? "true" : "false");
		} else {
			fprintf(out, "interface %s queue %u (%s)\n", qs.ifname, qs.queue,
				qs.zerocopy ? "zero-copy" : "copy");
			snprintf(c->ctx, sizeof(c->ctx), "q-%s-%u", qs.ifname, qs.queue);
		}
		put_group(c, &xsk_group, NULL, &qs);
		put_group(c, &port_group, NULL, &qs);
		if (c->json)
			fputc('}', out);
		first = false;
	}
	if (c->json)
		fputc(']', out);
	return 0;
}

/* Workers: one per queue, so the highest queue with a socket + 1. */
static int count_workers(struct ctl *c)
{
	int n = 0;

	for (__u32 key = 0; key < c->queue_stats.info.max_entries; key++) {
		struct ferry_queue_stats qs;

		if (!bpf_map_lookup_elem(c->queue_stats.fd, &key, &qs) && qs.configured &&
		    (int)qs.queue >= n)
			n = (int)qs.queue + 1;
	}
	return n;
}

/*
 * Live sessions are created minus expired.  ferryd publishes worker i's
 * counters in CPU slot i, so with no more workers than CPUs each slot is
 * one worker's; beyond that, slots are shared and only the total is exact.
 */
static int print_sessions(struct ctl *c)
{
	size_t stride = (sizeof(struct ferry_fwd_stats) + 7) & ~(size_t)7;
	int nr_workers = count_workers(c);
	bool per_worker = nr_workers > 0 && nr_workers <= c->ncpus;
	FILE *out = c->out;
	unsigned char *vals;
	bool first = true;
	__u64 total = 0;
	int err = 0;

	vals = calloc(c->ncpus, stride);
	if (!vals)
		return -ENOMEM;
	if (c->json)
		fprintf(out, "{\"workers\":%d,\"flows\":[", nr_workers);
	for (__u32 id = 0; id < c->flow_info.info.max_entries; id++) {
		struct ferry_flow_info fi;
		__u64 sum = 0;

		if (bpf_map_lookup_elem(c->flow_info.fd, &id, &fi) ||
		    bpf_map_lookup_elem(c->fwd_stats.fd, &id, vals)) {
			err = -errno;
			fprintf(stderr, "ferryctl: %s: cannot read flow %u: %s\n", c->pin_path, id,
				strerror(-err));
			break;
		}
		if (!fi.configured)
			continue;
		fi.name[sizeof(fi.name) - 1] = '\0';
		for (int cpu = 0; cpu < c->ncpus; cpu++) {
			const struct ferry_fwd_stats *v = (const void *)(vals + cpu * stride);

			sum += v->sessions_created - v->sessions_expired - v->sessions_early_dropped;
		}
		total += sum;
		if (c->json) {
			fprintf(out, "%s{\"name\":", first ? "" : ",");
			json_string(out, fi.name);
			fprintf(out, ",\"id\":%u,\"sessions\":%llu", id, (unsigned long long)sum);
		} else {
			fprintf(out, "flow %s (id %u): %llu session%s", fi.name, id,
				(unsigned long long)sum, sum == 1 ? "" : "s");
		}
		if (per_worker) {
			fprintf(out, c->json ? ",\"per_worker\":[" : ":");
			for (int w = 0; w < nr_workers; w++) {
				const struct ferry_fwd_stats *v = (const void *)(vals + w * stride);
				__u64 n = v->sessions_created - v->sessions_expired -
					  v->sessions_early_dropped;

				if (c->json)
					fprintf(out, "%s%llu", w ? "," : "", (unsigned long long)n);
				else
					fprintf(out, " worker%d %llu", w, (unsigned long long)n);
			}
			fputs(c->json ? "]" : "", out);
		}
		fputs(c->json ? "}" : "\n", out);
		first = false;
	}
	if (c->json)
		fprintf(out, "],\"total\":%llu}\n", (unsigned long long)total);
	else if (!err)
		fprintf(out, "total: %llu session%s over %d worker%s\n", (unsigned long long)total,
			total == 1 ? "" : "s", nr_workers, nr_workers == 1 ? "" : "s");
	free(vals);
	return err;
}

static void put_prefix(FILE *out, bool json, int family, const __u32 words[4], int plen)
{
	char buf[INET6_ADDRSTRLEN];

	if (!plen) {
		fputs(json ? "null" : "any", out);
		return;
	}
	inet_ntop(family == 4 ? AF_INET : AF_INET6, words, buf, sizeof(buf));
	fprintf(out, json ? "\"%s/%d\"" : "%s/%d", buf, plen);
}

static void put_ports(FILE *out, bool json, __u16 lo, __u16 hi)
{
	if (!lo && !hi)
		fputs(json ? "null" : "any", out);
	else if (lo == hi)
		fprintf(out, json ? "\"%u\"" : "%u", lo);
	else
		fprintf(out, json ? "\"%u-%u\"" : "%u-%u", lo, hi);
}

/* What comes before each of a rule's fields, in text and in JSON. */
static const char *const rule_seps[2][4] = {
	{ " to ", " port ", " from ", " port " },
	{ ",\"destination\":", ",\"port\":", ",\"source\":", ",\"source_port\":" },
};

static void put_rule(struct ctl *c, const struct ferry_rule *r)
{
	const char *proto = r->l4_proto == IPPROTO_UDP ? "udp" :
			    r->l4_proto == IPPROTO_TCP ? "tcp" : "?";
	const char *const *sep = rule_seps[c->json];
	FILE *out = c->out;

	if (c->json)
		fprintf(out, "{\"direction\":\"%s\",\"protocol\":\"%s\"",
			r->dir == FERRY_DIR_REPLY ? "reply" : "client", proto);
	else
		fprintf(out, "  %-10s %s", r->dir == FERRY_DIR_REPLY ? "reply" : "match", proto);
	fputs(sep[0], out);
	put_prefix(out, c->json, r->family, r->dst, r->dst_plen);
	fputs(sep[1], out);
	put_ports(out, c->json, r->dport_lo, r->dport_hi);
	fputs(sep[2], out);
	put_prefix(out, c->json, r->family, r->src, r->src_plen);
	fputs(sep[3], out);
	put_ports(out, c->json, r->sport_lo, r->sport_hi);
	/* An index: ferryctl need not run in ferryd's namespace to name it. */
	if (r->ifindex)
		fprintf(out, c->json ? ",\"ifindex\":%u" : " on ifindex %u", r->ifindex);
	fputs(c->json ? "}" : "\n", out);
}

/* Each flow: its rules as the XDP program scans them, on_failure, and its chain. */
static int print_flow_config(struct ctl *c)
{
	FILE *out = c->out;
	bool first = true;
	int err;

	if (c->json)
		fprintf(out, "{\"flows\":[");
	for (__u32 id = 0; id < c->flow_info.info.max_entries; id++) {
		struct ferry_flow_info fi;
		bool drop = false, fr = true;

		err = read_flow(c, id, &fi);
		if (err <= 0) {
			if (err)
				return err;
			continue;
		}
		put_flow_head(c, fi.name, id, first);
		fputs(c->json ? ",\"rules\":[" : "", out);
		for (__u32 slot = 0; slot < c->rules.info.max_entries; slot++) {
			struct ferry_rule r;

			err = read_elem(c, &c->rules, slot, &r);
			if (err)
				return err;
			if (!r.enabled)
				break; /* the table ends at the first empty slot */
			if (r.flow_id != id)
				continue;
			if (r.dir == FERRY_DIR_CLIENT && (r.flags & FERRY_RULE_F_DROP_NO_SOCKET))
				drop = true;
			fputs(c->json && !fr ? "," : "", out);
			put_rule(c, &r);
			fr = false;
		}
		fi.offload_why[sizeof(fi.offload_why) - 1] = '\0';
		if (c->json) {
			fprintf(out, "],\"on_failure\":\"%s\",\"offload\":%s,", drop ? "drop" : "pass",
				fi.offload ? "true" : "false");
			if (!fi.offload) {
				fputs("\"offload_why\":", out);
				json_string(out, fi.offload_why);
				fputc(',', out);
			}
			fputs("\"services\":[", out);
		} else {
			fprintf(out, "  %-10s %s\n", "on_failure", drop ? "drop" : "pass");
			if (fi.offload)
				fprintf(out, "  %-10s established sessions forward in XDP\n", "offload");
			else
				fprintf(out, "  %-10s no: %s\n", "offload", fi.offload_why);
			fprintf(out, "  %-10s", "services");
		}
		for (__u32 pos = 0, n = 0; pos < FERRY_MAX_SERVICES; pos++) {
			__u32 key = id * FERRY_MAX_SERVICES + pos;
			struct ferry_svc_info si;

			err = read_elem(c, &c->svc_info, key, &si);
			if (err)
				return err;
			if (!si.configured)
				continue;
			si.service[sizeof(si.service) - 1] = '\0';
			if (c->json) {
				fputs(n ? "," : "", out);
				json_string(out, si.service);
			} else {
				fprintf(out, "%s%s", n ? " -> " : " ", si.service);
			}
			n++;
		}
		fputs(c->json ? "]}" : "\n", out);
		first = false;
	}
	if (c->json)
		fprintf(out, "]}\n");
	return 0;
}

/* node_exporter textfile format: every family's HELP and TYPE, then its samples. */
static void prom_family(FILE *out, const char *name, const char *help, const char *type)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, quote and newline escaped. */
static void prom_label(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

struct prom_flow {
	__u32 id;
	char name[FERRY_FLOW_NAME_LEN];
	struct ferry_flow_stats fs;
	struct ferry_fwd_stats fwd;
};

/* A sample's labels, those of the object it counts for. */
typedef void prom_labels_fn(FILE *out, const void *obj);

static void prom_flow_labels(FILE *out, const void *obj)
{
	fputs("flow=", out);
	prom_label(out, ((const struct prom_flow *)obj)->name);
}

/* An lb upstream, with the name of its flow. */
struct prom_lb_upstream {
	const char *flow;
	struct ferry_lb_upstream_stats st;
};

static void prom_lb_labels(FILE *out, const void *obj)
{
	const struct prom_lb_upstream *u = obj;

	fputs("flow=", out);
	prom_label(out, u->flow);
	fputs(",upstream=", out);
	prom_label(out, u->st.address);
}

static void prom_link_labels(FILE *out, const void *obj)
{
	fputs("interface=", out);
	prom_label(out, ((const struct ferry_queue_stats *)obj)->ifname);
}

static void prom_queue_labels(FILE *out, const void *obj)
{
	prom_link_labels(out, obj);
	fprintf(out, ",queue=\"%u\"", ((const struct ferry_queue_stats *)obj)->queue);
}

struct prom_iface {
	char name[256];
	struct ferry_xdp_stats xs;
};

static void prom_iface_labels(FILE *out, const void *obj)
{
	fputs("interface=", out);
	prom_label(out, ((const struct prom_iface *)obj)->name);
}

struct prom_svc {
	const char *flow;
	__u32 pos;
	struct ferry_svc_info si;
	struct ferry_svc_stats ss;
};

static void prom_svc_labels(FILE *out, const void *obj)
{
	const struct prom_svc *ps = obj;

	fputs("flow=", out);
	prom_label(out, ps->flow);
	fprintf(out, ",position=\"%u\",service=", ps->pos);
	prom_label(out, ps->si.service);
}

struct prom_app {
	char flow[FERRY_FLOW_NAME_LEN];
	struct ferry_app_slot_stats st;
};

static void prom_app_labels(FILE *out, const void *obj)
{
	const struct prom_app *pa = obj;

	fputs("slot=", out);
	prom_label(out, pa->st.slot);
	fputs(",flow=", out);
	prom_label(out, pa->flow);
}

/*
 * Group g of each of n objects, its record rec_off bytes into the object:
 * a family per counter with a sample per object, or with g->prom_label one
 * family with a sample per object and counter.
 */
static void prom_group(struct ctl *c, const struct counter_group *g, const void *const *objs,
		       int n, size_t rec_off, prom_labels_fn *labels)
{
	size_t families = g->prom_label ? 1 : g->n, per_family = g->prom_label ? g->n : 1;
	FILE *out = c->out;
	char name[128];

	for (size_t k = 0; k < families; k++) {
		snprintf(name, sizeof(name), "%s%s_total", g->prom_prefix,
			 g->prom_label ? g->label : g->ctrs[k].name);
		prom_family(out, name, g->prom_help, "counter");
		for (int i = 0; i < n; i++) {
			const void *rec = (const char *)objs[i] + rec_off;

			for (size_t j = k; j < k + per_family; j++) {
				fprintf(out, "%s{", name);
				labels(out, objs[i]);
				if (g->prom_label)
					fprintf(out, ",%s=\"%s\"", g->prom_label, g->ctrs[j].name);
				fprintf(out, "} %llu\n",
					(unsigned long long)counter_value(rec, &g->ctrs[j]));
			}
		}
	}
}

/*
 * Each service of each flow: the chain runner's counters, a family each,
 * then the service's own, named as it names them, in one family with the
 * name as the label `counter`.
 */
static int prom_services(struct ctl *c, const struct prom_flow *flows, int nf)
{
	size_t max = (size_t)nf * FERRY_MAX_SERVICES;
	struct prom_svc *svcs = calloc(max ?: 1, sizeof(*svcs));
	const void **objs = calloc(max ?: 1, sizeof(*objs));
	FILE *out = c->out;
	int n = 0, err = 0;

	if (!svcs || !objs) {
		err = -ENOMEM;
		goto out_free;
	}
	for (int f = 0; f < nf; f++) {
		for (__u32 pos = 0; pos < FERRY_MAX_SERVICES; pos++) {
			__u32 key = flows[f].id * FERRY_MAX_SERVICES + pos;
			struct prom_svc *ps = &svcs[n];

			err = read_elem(c, &c->svc_info, key, &ps->si);
			if (err)
				goto out_free;
			if (!ps->si.configured)
				continue;
			err = read_percpu(c, &c->svc_stats, key, &ps->ss, sizeof(ps->ss));
			if (err)
				goto out_free;
			ps->si.service[sizeof(ps->si.service) - 1] = '\0';
			ps->flow = flows[f].name;
			ps->pos = pos;
			objs[n++] = ps;
		}
	}
	prom_group(c, &svc_prom_group, objs, n, offsetof(struct prom_svc, ss), prom_svc_labels);
	prom_family(out, "ferry_service_counter_total",
		    "The service's own counter, under the name the service gives it.", "counter");
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < FERRY_SVC_COUNTERS; k++) {
			char *name = svcs[i].si.counter_names[k];

			name[FERRY_SVC_NAME_LEN - 1] = '\0';
			if (!name[0])
				continue;
			fputs("ferry_service_counter_total{", out);
			prom_svc_labels(out, &svcs[i]);
			fputs(",counter=", out);
			prom_label(out, name);
			fprintf(out, "} %llu\n", (unsigned long long)svcs[i].ss.counters[k]);
		}
	}
out_free:
	free(objs);
	free(svcs);
	return err;
}

/* The XDP program's counters of each interface it is attached to (its pins). */
static int prom_ifaces(struct ctl *c)
{
	const size_t plen = strlen(FERRY_PIN_XDP_STATS "_");
	struct prom_iface *ifs = NULL;
	const void **objs = NULL;
	struct dirent **names;
	int n, ni = 0, err = 0;

	n = scandir(c->pin_path, &names, xdp_stats_pin, alphasort);
	if (n < 0) {
		err = -errno;
		fprintf(stderr, "ferryctl: cannot list %s: %s\n", c->pin_path, strerror(-err));
		return err;
	}
	ifs = calloc((size_t)n ?: 1, sizeof(*ifs));
	objs = calloc((size_t)n ?: 1, sizeof(*objs));
	if (!ifs || !objs)
		err = -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct pinned_map m = { .fd = -1 };
		int ret;

		if (err)
			goto next;
		ret = open_pin(c, &m, names[i]->d_name, sizeof(ifs[ni].xs), true);
		if (ret == -ENOENT)
			goto next; /* ferryd detached it since the listing */
		err = ret ?: read_percpu(c, &m, 0, &ifs[ni].xs, sizeof(ifs[ni].xs));
		if (err)
			goto next;
		snprintf(ifs[ni].name, sizeof(ifs[ni].name), "%s", names[i]->d_name + plen);
		objs[ni] = &ifs[ni];
		ni++;
next:
		close_pin(&m);
		free(names[i]);
	}
	free(names);
	if (!err)
		prom_group(c, &xdp_group, objs, ni, offsetof(struct prom_iface, xs),
			   prom_iface_labels);
	free(objs);
	free(ifs);
	return err;
}

/* ferryctl apps' counters: the slots' counters, queue depth, round trip, attachment. */
static int prom_apps(struct ctl *c, const struct prom_flow *flows, int nf)
{
	struct prom_app *apps = calloc(FERRY_MAX_APP_SLOTS, sizeof(*apps));
	const void **objs = calloc(FERRY_MAX_APP_SLOTS, sizeof(*objs));
	FILE *out = c->out;
	int n = 0, err = 0;

	if (!apps || !objs) {
		err = -ENOMEM;
		goto out_free;
	}
	for (__u32 k = 0; k < FERRY_MAX_APP_SLOTS; k++) {
		struct prom_app *pa = &apps[n];

		err = read_elem(c, &c->app_slots, k, &pa->st);
		if (err)
			goto out_free;
		if (!pa->st.configured)
			continue;
		pa->st.slot[sizeof(pa->st.slot) - 1] = '\0';
		for (int f = 0; f < nf; f++)
			if (flows[f].id == pa->st.flow_id)
				memcpy(pa->flow, flows[f].name, sizeof(pa->flow));
		objs[n++] = pa;
	}
	prom_group(c, &app_group, objs, n, offsetof(struct prom_app, st), prom_app_labels);
	prom_family(out, "ferry_app_queue_depth", "Packets with the application now, all queues.",
		    "gauge");
	for (int i = 0; i < n; i++) {
		fputs("ferry_app_queue_depth{", out);
		prom_app_labels(out, &apps[i]);
		fprintf(out, "} %llu\n", (unsigned long long)apps[i].st.queue_depth);
	}
	prom_family(out, "ferry_app_rtt_average_seconds",
		    "Average round trip through the application since the slot was configured.",
		    "gauge");
	for (int i = 0; i < n; i++) {
		fputs("ferry_app_rtt_average_seconds{", out);
		prom_app_labels(out, &apps[i]);
		fprintf(out, "} %.9f\n", (double)apps[i].st.rtt_avg_ns / 1e9);
	}
	prom_family(out, "ferry_app_attached", "1 while an application is attached to the slot.",
		    "gauge");
	for (int i = 0; i < n; i++) {
		fputs("ferry_app_attached{", out);
		prom_app_labels(out, &apps[i]);
		fprintf(out, "} %d\n", apps[i].st.attached_pid ? 1 : 0);
	}
out_free:
	free(objs);
	free(apps);
	return err;
}

/* The lb upstreams of the flows: their counters, and whether each takes new sessions. */
static int prom_lb_upstreams(struct ctl *c, const struct prom_flow *flows, int nf)
{
	struct prom_lb_upstream *ups;
	const void **objs;
	int n = 0, err = 0;

	if (c->lb_upstreams.fd < 0)
		return 0;
	ups = calloc((size_t)nf * FERRY_LB_MAX_UPSTREAMS, sizeof(*ups));
	objs = calloc((size_t)nf * FERRY_LB_MAX_UPSTREAMS, sizeof(*objs));
	if (!ups || !objs) {
		err = -ENOMEM;
		goto out_free;
	}
	for (int f = 0; f < nf; f++) {
		for (__u32 i = 0; i < FERRY_LB_MAX_UPSTREAMS; i++) {
			__u32 key = flows[f].id * FERRY_LB_MAX_UPSTREAMS + i;

			err = read_elem(c, &c->lb_upstreams, key, &ups[n].st);
			if (err)
				goto out_free;
			if (!ups[n].st.configured)
				continue;
			ups[n].st.address[sizeof(ups[n].st.address) - 1] = '\0';
			ups[n].flow = flows[f].name;
			objs[n] = &ups[n];
			n++;
		}
	}
	if (!n)
		goto out_free;
	prom_group(c, &lb_group, objs, n, offsetof(struct prom_lb_upstream, st), prom_lb_labels);
	prom_family(c->out, "ferry_lb_upstream_usable",
		    "1 when the lb upstream takes new sessions (up and weight > 0).", "gauge");
	for (int i = 0; i < n; i++) {
		fputs("ferry_lb_upstream_usable{", c->out);
		prom_lb_labels(c->out, objs[i]);
		fprintf(c->out, "} %u\n", ups[i].st.up && ups[i].st.weight);
	}
out_free:
	free(objs);
	free(ups);
	return err;
}

static int print_prometheus(struct ctl *c)
{
	struct prom_flow *flows;
	struct ferry_queue_stats *qs;
	const void **fobjs, **qobjs, **lobjs;
	FILE *out = c->out;
	int nf = 0, nq = 0, nl = 0, err = 0;

	flows = calloc(FERRY_MAX_FLOWS, sizeof(*flows));
	qs = calloc(c->queue_stats.info.max_entries, sizeof(*qs));
	fobjs = calloc(FERRY_MAX_FLOWS + 2 * (size_t)c->queue_stats.info.max_entries,
		       sizeof(*fobjs));
	if (!flows || !qs || !fobjs) {
		err = -ENOMEM;
		goto out_free;
	}
	qobjs = fobjs + FERRY_MAX_FLOWS;
	lobjs = qobjs + c->queue_stats.info.max_entries;
	for (__u32 id = 0; id < c->flow_info.info.max_entries && nf < FERRY_MAX_FLOWS; id++) {
		struct ferry_flow_info fi;

		err = read_flow(c, id, &fi);
		if (err <= 0) {
			if (err)
				goto out_free;
			continue;
		}
		flows[nf].id = id;
		memcpy(flows[nf].name, fi.name, sizeof(fi.name));
		err = read_percpu(c, &c->flow_stats, id, &flows[nf].fs, sizeof(flows[nf].fs)) ?:
		      read_percpu(c, &c->fwd_stats, id, &flows[nf].fwd, sizeof(flows[nf].fwd));
		if (err)
			goto out_free;
		fobjs[nf] = &flows[nf];
		nf++;
	}
	for (__u32 key = 0; key < c->queue_stats.info.max_entries; key++) {
		err = read_elem(c, &c->queue_stats, key, &qs[nq]);
		if (err)
			goto out_free;
		qs[nq].ifname[sizeof(qs[nq].ifname) - 1] = '\0';
		if (!qs[nq].configured)
			continue;
		qobjs[nq] = &qs[nq];
		/* Slots are in interface order: the first of each interface has its counters. */
		if (!nq || strcmp(qs[nq].ifname, qs[nq - 1].ifname))
			lobjs[nl++] = &qs[nq];
		nq++;
	}

	prom_group(c, &steering_group, fobjs, nf, offsetof(struct prom_flow, fs),
		   prom_flow_labels);
	prom_group(c, &datapath_group, fobjs, nf, offsetof(struct prom_flow, fwd),
		   prom_flow_labels);
	prom_group(c, &drops_group, fobjs, nf, offsetof(struct prom_flow, fwd), prom_flow_labels);
	prom_family(out, "ferry_sessions", "NAT sessions of the flow (created - expired - early dropped).",
		    "gauge");
	for (int f = 0; f < nf; f++) {
		fputs("ferry_sessions{", out);
		prom_flow_labels(out, &flows[f]);
		fprintf(out, "} %llu\n", (unsigned long long)(flows[f].fwd.sessions_created -
							       flows[f].fwd.sessions_expired -
							       flows[f].fwd.sessions_early_dropped));
	}
	err = prom_lb_upstreams(c, flows, nf);
	if (err)
		goto out_free;
	prom_group(c, &xsk_group, qobjs, nq, 0, prom_queue_labels);
	prom_group(c, &port_group, qobjs, nq, 0, prom_queue_labels);
	prom_group(c, &kernel_group, lobjs, nl, 0, prom_link_labels);
	err = prom_services(c, flows, nf) ?: prom_ifaces(c) ?: prom_apps(c, flows, nf);
	if (err)
		goto out_free;
	prom_family(out, "ferry_build_info", "The running ferryctl's version, always 1.", "gauge");
	fputs("ferry_build_info{version=", out);
	prom_label(out, ferry_version());
	fputs("} 1\n", out);
out_free:
	if (err)
		fprintf(stderr, "ferryctl: %s: cannot read the maps: %s\n", c->pin_path,
			strerror(-err));
	free(fobjs);
	free(qs);
	free(flows);
	return err;
}

enum command {
	CMD_STATS,
	CMD_FLOWS,
	CMD_SESSIONS,
	CMD_APPS,
};

static const char *const command_names[] = {
	[CMD_STATS] = "stats",
	[CMD_FLOWS] = "flows",
	[CMD_SESSIONS] = "sessions",
	[CMD_APPS] = "apps",
};

/* ferryctl apps: one entry per app slot, in config order. */
static int print_apps(struct ctl *c)
{
	FILE *out = c->out;
	bool first = true;
	int err;

	if (c->json)
		fputs("{\"apps\":[", out);
	for (__u32 k = 0; k < FERRY_MAX_APP_SLOTS; k++) {
		struct ferry_app_slot_stats st;
		struct ferry_flow_info fi = {};
		static const char *const ctrs[] = { "in",	"out",	    "dropped",	   "bypassed",
						    "bad_desc", "timeouts", "queue_depth", "rtt_avg_ns",
						    "sleeps",	"emitted",  "emit_dropped" };
		char owner[48];

		err = read_elem(c, &c->app_slots, k, &st);
		if (err)
			return err;
		if (!st.configured)
			continue;
		st.slot[sizeof(st.slot) - 1] = '\0';
		if (st.flow_id < FERRY_MAX_FLOWS && !read_elem(c, &c->flow_info, st.flow_id, &fi))
			fi.name[sizeof(fi.name) - 1] = '\0';
		if (st.owner_is_group)
			snprintf(owner, sizeof(owner), "gid %u", st.owner_gid);
		else
			snprintf(owner, sizeof(owner), "uid %u", st.owner_uid);
		{
			const __u64 v[] = { st.in,	 st.out,      st.dropped,     st.bypassed,
					    st.bad_desc, st.timeouts, st.queue_depth, st.rtt_avg_ns,
					    st.sleeps,	 st.emitted,  st.emit_dropped };

			if (c->json) {
				fprintf(out, "%s{\"slot\":", first ? "" : ",");
				json_string(out, st.slot);
				fputs(",\"flow\":", out);
				json_string(out, fi.name);
				fprintf(out,
					",\"owner_%s\":%u,\"on_failure\":\"%s\",\"attached\":%s",
					st.owner_is_group ? "gid" : "uid",
					st.owner_is_group ? st.owner_gid : st.owner_uid,
					st.on_failure_drop ? "drop" : "bypass",
					st.attached_pid ? "true" : "false");
				if (st.attached_pid)
					fprintf(out, ",\"pid\":%u,\"uid\":%u", st.attached_pid,
						st.attached_uid);
				for (size_t i = 0; i < ARRAY_SIZE(ctrs); i++)
					fprintf(out, ",\"%s\":%llu", ctrs[i],
						(unsigned long long)v[i]);
				fputc('}', out);
			} else {
				fprintf(out, "app %s (flow %s, owner %s, on_failure %s): ", st.slot,
					fi.name, owner, st.on_failure_drop ? "drop" : "bypass");
				if (st.attached_pid)
					fprintf(out, "attached pid %u uid %u\n", st.attached_pid,
						st.attached_uid);
				else
					fputs("no application attached\n", out);
				fputs(" ", out);
				snprintf(c->ctx, sizeof(c->ctx), "app/%s", st.slot);
				for (size_t i = 0; i < ARRAY_SIZE(ctrs); i++)
					put_counter(c, "app", ctrs[i], v[i]);
				fputc('\n', out);
			}
		}
		first = false;
	}
	if (c->json)
		fputs("]}\n", out);
	else if (first)
		fputs("no app slots configured\n", out);
	return 0;
}

static int exit_code(int err)
{
	if (!err)
		return EXIT_OK;
	return err == -EPERM || err == -EACCES ? EXIT_PERM : EXIT_NO_MAPS;
}

static void close_maps(struct ctl *c)
{
	close_pin(&c->rules);
	close_pin(&c->app_slots);
	close_pin(&c->lb_upstreams);
	close_pin(&c->queue_stats);
	close_pin(&c->svc_stats);
	close_pin(&c->svc_info);
	close_pin(&c->fwd_stats);
	close_pin(&c->flow_stats);
	close_pin(&c->flow_info);
}

/* Every command reads ferry_flow_info; the others only as it needs them. */
static int open_maps(struct ctl *c, enum command cmd)
{
	bool counters = cmd == CMD_STATS || cmd == CMD_SESSIONS;
	int err;

	err = open_pin(c, &c->flow_info, FERRY_PIN_FLOW_INFO, sizeof(struct ferry_flow_info),
		       false);
	if (!err && cmd == CMD_STATS)
		err = open_pin(c, &c->flow_stats, FERRY_PIN_FLOW_STATS,
			       sizeof(struct ferry_flow_stats), false);
	if (!err && counters)
		err = open_pin(c, &c->fwd_stats, FERRY_PIN_FWD_STATS,
			       sizeof(struct ferry_fwd_stats), false);
	if (!err && cmd != CMD_SESSIONS)
		err = open_pin(c, &c->svc_info, FERRY_PIN_SVC_INFO, sizeof(struct ferry_svc_info),
			       false);
	if (!err && cmd == CMD_STATS)
		err = open_pin(c, &c->svc_stats, FERRY_PIN_SVC_STATS,
			       sizeof(struct ferry_svc_stats), false);
	if (!err && counters)
		err = open_pin(c, &c->queue_stats, FERRY_PIN_QUEUE_STATS,
			       sizeof(struct ferry_queue_stats), false);
	if (!err && cmd == CMD_FLOWS)
		err = open_pin(c, &c->rules, FERRY_PIN_RULES, sizeof(struct ferry_rule), false);
	if (!err && (cmd == CMD_APPS || (cmd == CMD_STATS && c->format == FMT_PROMETHEUS)))
		err = open_pin(c, &c->app_slots, FERRY_PIN_APP_SLOTS,
			       sizeof(struct ferry_app_slot_stats), false);
	/* Optional: stats without it only lack the lb upstream lines. */
	if (!err && cmd == CMD_STATS &&
	    open_pin(c, &c->lb_upstreams, FERRY_PIN_LB_UPSTREAMS,
		     sizeof(struct ferry_lb_upstream_stats), true))
		c->lb_upstreams.fd = -1;
	return err;
}

static int render(struct ctl *c, enum command cmd)
{
	int err;

	if (cmd == CMD_FLOWS)
		return print_flow_config(c);
	if (cmd == CMD_SESSIONS)
		return print_sessions(c);
	if (cmd == CMD_APPS)
		return print_apps(c);
	if (c->format == FMT_PROMETHEUS)
		return print_prometheus(c);
	if (c->json)
		fputc('{', c->out);
	err = print_flows(c);
	if (!err)
		err = print_ifaces(c);
	if (!err)
		err = print_queues(c);
	if (c->json)
		fprintf(c->out, "}\n");
	return err;
}

/* One report, built in memory so that a failure prints no half of one. */
static int report_once(struct ctl *c, enum command cmd)
{
	size_t report_len = 0;
	char *report = NULL;
	int err;

	c->out = open_memstream(&report, &report_len);
	if (!c->out) {
		err = -errno;
		fprintf(stderr, "ferryctl: %s\n", strerror(-err));
		return err;
	}
	err = render(c, cmd);
	if (fclose(c->out) && !err)
		err = -ENOMEM;
	c->out = NULL;
	if (!err && c->watch && !c->json)
		fputs("\033[H\033[2J", stdout); /* a screen per refresh, as watch(1) */
	if (!err && (fwrite(report, 1, report_len, stdout) != report_len || fflush(stdout))) {
		err = -errno;
		fprintf(stderr, "ferryctl: cannot write: %s\n", strerror(-err));
	}
	free(report);
	return err;
}

static double mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_command(struct ctl *c, enum command cmd)
{
	double last = 0;
	int err;

	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		fprintf(stderr, "ferryctl: cannot count the possible CPUs: %s\n",
			strerror(c->ncpus ? -c->ncpus : EINVAL));
		return EXIT_NO_MAPS;
	}
	err = open_maps(c, cmd);
	if (err)
		goto out_close;
	for (;;) {
		double now = mono_seconds();
		struct timespec ts;
		struct rate *tmp;
		size_t cap;

		c->elapsed = last ? now - last : 0;
		last = now;
		c->nr_cur = 0;
		err = report_once(c, cmd);
		if (err || !c->watch)
			break;
		/* This refresh's values are the next one's baseline. */
		tmp = c->prev;
		cap = c->cap_prev;
		c->prev = c->cur;
		c->cap_prev = c->cap_cur;
		c->nr_prev = c->nr_cur;
		c->cur = tmp;
		c->cap_cur = cap;
		ts.tv_sec = (time_t)c->interval;
		ts.tv_nsec = (long)((c->interval - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
out_close:
	free(c->prev);
	free(c->cur);
	close_maps(c);
	return exit_code(err);
}

static void ctl_init(struct ctl *c)
{
	c->flow_info.fd = c->flow_stats.fd = c->fwd_stats.fd = -1;
	c->svc_info.fd = c->svc_stats.fd = c->queue_stats.fd = c->rules.fd = -1;
	c->app_slots.fd = -1;
	c->lb_upstreams.fd = -1;
}

int ferryctl_prometheus(const char *pin_path, FILE *out)
{
	struct ctl c = { .pin_path = pin_path, .format = FMT_PROMETHEUS, .em = &text_emitter,
			 .out = out };
	int err;

	ctl_init(&c);
	c.ncpus = libbpf_num_possible_cpus();
	if (c.ncpus <= 0)
		return c.ncpus ?: -EINVAL;
	/* Opened for each report: a restarted ferryd pins new maps. */
	err = open_maps(&c, CMD_STATS) ?: print_prometheus(&c);
	close_maps(&c);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option global_opts[] = {
		{ "pin-path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	static const struct option cmd_opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "format", required_argument, NULL, 'f' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ctl c = { .pin_path = DEFAULT_PIN_PATH, .interval = 2 };
	char prog[32];
	int opt, cmd = -1;

	ctl_init(&c);
	/* "+": options end at the command, whose own options come after it. */
	while ((opt = getopt_long(argc, argv, "+p:h", global_opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			c.pin_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			if (ferry_build_info.commit[0])
				printf("ferryctl %s (git %s)\n", ferry_version(),
				       ferry_build_info.commit);
			else
				printf("ferryctl %s\n", ferry_version());
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ferryctl: missing command\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "health"))
		return ferryctl_health(c.pin_path, argc - optind, argv + optind);
	/* Subcommands that ask ferryd over its control socket (ferryctl_ctl.h). */
	if (!strcmp(argv[optind], "reload"))
		return ferryctl_reload(argc - optind, argv + optind);
	if (!strcmp(argv[optind], "sessions")) {
		int k = optind + 1;

		while (k < argc && strcmp(argv[k], "--count"))
			k++;
		if (k == argc)
			return ferryctl_sessions(argc - optind, argv + optind);
		/* --count: the per-flow counts from the pinned maps, below. */
		memmove(&argv[k], &argv[k + 1], (size_t)(argc - k) * sizeof(*argv));
		argc--;
	}
	if (!strcmp(argv[optind], "metrics"))
		return ferryctl_metrics_main(c.pin_path, argc - optind, argv + optind);
	for (size_t i = 0; i < ARRAY_SIZE(command_names); i++)
		if (!strcmp(argv[optind], command_names[i]))
			cmd = (int)i;
	if (cmd < 0) {
		fprintf(stderr, "ferryctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	argc -= optind;
	argv += optind;
	snprintf(prog, sizeof(prog), "ferryctl %s", command_names[cmd]);
	argv[0] = prog; /* getopt's messages name it */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+w::h", cmd_opts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'j':
			c.format = FMT_JSON;
			break;
		case 'f':
			if (!strcmp(optarg, "text")) {
				c.format = FMT_TEXT;
			} else if (!strcmp(optarg, "json")) {
				c.format = FMT_JSON;
			} else if (!strcmp(optarg, "prometheus")) {
				c.format = FMT_PROMETHEUS;
			} else {
				fprintf(stderr, "%s: unknown format '%s'\n", prog, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'w':
			c.watch = true;
			/* "--watch 5" as well as "--watch=5": a number after it is its argument. */
			if (!optarg && optind < argc && argv[optind][0] >= '0' &&
			    argv[optind][0] <= '9')
				optarg = argv[optind++];
			if (optarg) {
				c.interval = strtod(optarg, &end);
				if (*end || !(c.interval >= 0.1 && c.interval <= 86400)) {
					fprintf(stderr, "%s: --watch: '%s' is not 0.1..86400 seconds\n",
						prog, optarg);
					return EXIT_USAGE;
				}
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (c.format == FMT_PROMETHEUS && (cmd != CMD_STATS || c.watch)) {
		fprintf(stderr, "%s: --format prometheus is for a single `stats`\n", prog);
		return EXIT_USAGE;
	}
	c.json = c.format == FMT_JSON;
	c.em = c.json ? &json_emitter : &text_emitter;
	return run_command(&c, (enum command)cmd);
}
