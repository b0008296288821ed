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
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ferry_shared.h"

#define DEFAULT_PIN_PATH "/sys/fs/bpf/ferry"

enum {
	EXIT_OK = 0,
	EXIT_NO_MAPS = 1, /* missing or unreadable pins */
	EXIT_USAGE = 2,
};

struct counter {
	const char *name;
	size_t off;
};

#define FLOW_COUNTER(f) { #f, offsetof(struct ferry_flow_stats, f) }
static const struct counter flow_counters[] = {
	FLOW_COUNTER(packets),		FLOW_COUNTER(bytes),	       FLOW_COUNTER(redirected),
	FLOW_COUNTER(passed_no_socket), FLOW_COUNTER(passed_fragment), FLOW_COUNTER(reply_packets),
};

#define FWD_COUNTER(f) { #f, offsetof(struct ferry_fwd_stats, f) }
static const struct counter fwd_counters[] = {
	FWD_COUNTER(rx_packets),       FWD_COUNTER(rx_bytes),	      FWD_COUNTER(tx_packets),
	FWD_COUNTER(tx_bytes),	       FWD_COUNTER(reply_packets),    FWD_COUNTER(reply_bytes),
	FWD_COUNTER(sessions_created), FWD_COUNTER(sessions_expired),
	FWD_COUNTER(handoff_packets),
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
	XDP_COUNTER(passed_malformed), XDP_COUNTER(passed_fragment),
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct pinned_map {
	const char *name;
	int fd;
	struct bpf_map_info info;
};

struct ctl {
	const char *pin_path;
	bool json;
	FILE *out; /* in memory until complete: a failure prints no half a report */
	int ncpus;
	struct pinned_map flow_info, flow_stats, fwd_stats, svc_info, svc_stats;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: ferryctl [-p PIN_PATH] stats [--json]\n"
		   "       ferryctl --help\n");
	if (f == stderr) {
		fprintf(f, "Try 'ferryctl --help' for more information.\n");
		return;
	}
	fprintf(f, "\n"
		   "Print the counters a running ferryd keeps in its pinned BPF maps.\n"
		   "\n"
		   "  -p, --pin-path PATH  where ferryd pins its maps\n"
		   "                       (default " DEFAULT_PIN_PATH ")\n"
		   "  -h, --help           show this help\n"
		   "\n"
		   "stats: per configured flow, the XDP steering counters, the data-path\n"
		   "counters (drops by reason) and the counters of each service of its chain,\n"
		   "then the XDP counters of each interface.\n"
		   "  --json               one JSON object instead of text\n"
		   "\n"
		   "Exit status: 0 success, 1 maps missing or unreadable, 2 usage error.\n");
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
			fprintf(stderr, "ferryctl: no ferry maps under %s: is ferryd running?\n",
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

static void json_counters(FILE *out, const void *rec, const struct counter *ctrs, size_t n,
			  bool *first)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s\"%s\":%llu", *first ? "" : ",", ctrs[i].name,
		       (unsigned long long)counter_value(rec, &ctrs[i]));
		*first = false;
	}
}

/* Only the reasons that happened: a list of ten zeros hides the one that matters. */
static void json_drops(FILE *out, const struct ferry_fwd_stats *fwd)
{
	bool first = true;

	fprintf(out, "\"drops\":{");
	for (size_t i = 0; i < ARRAY_SIZE(drop_counters); i++) {
		__u64 v = counter_value(fwd, &drop_counters[i]);

		if (!v)
			continue;
		fprintf(out, "%s\"%s\":%llu", first ? "" : ",", drop_counters[i].name,
		       (unsigned long long)v);
		first = false;
	}
	fputc('}', out);
}

static void text_counters(FILE *out, const char *label, const void *rec, const struct counter *ctrs,
			  size_t n)
{
	fprintf(out, "  %-10s", label);
	for (size_t i = 0; i < n; i++)
		fprintf(out, " %s %llu", ctrs[i].name,
			(unsigned long long)counter_value(rec, &ctrs[i]));
	fputc('\n', out);
}

static void text_drops(FILE *out, const struct ferry_fwd_stats *fwd)
{
	bool any = false;

	fprintf(out, "  %-10s", "drops");
	for (size_t i = 0; i < ARRAY_SIZE(drop_counters); i++) {
		__u64 v = counter_value(fwd, &drop_counters[i]);

		if (!v)
			continue;
		fprintf(out, " %s %llu", drop_counters[i].name, (unsigned long long)v);
		any = true;
	}
	fprintf(out, "%s\n", any ? "" : " none");
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
		struct ferry_svc_info si;
		struct ferry_svc_stats ss;
		bool f = true;

		err = bpf_map_lookup_elem(c->svc_info.fd, &key, &si);
		if (err) {
			fprintf(stderr, "ferryctl: %s/%s: cannot read key %u: %s\n", c->pin_path,
				c->svc_info.name, key, strerror(-err));
			return err;
		}
		if (!si.configured)
			continue;
		si.service[sizeof(si.service) - 1] = '\0';
		err = read_percpu(c, &c->svc_stats, key, &ss, sizeof(ss));
		if (err)
			return err;
		if (!c->json) {
			fprintf(out, "  %-10s %u %s", "service", pos, si.service);
			for (size_t i = 0; i < ARRAY_SIZE(svc_counters); i++)
				fprintf(out, " %s %llu", svc_counters[i].name,
					(unsigned long long)counter_value(&ss, &svc_counters[i]));
			for (int i = 0; i < FERRY_SVC_COUNTERS; i++) {
				si.counter_names[i][FERRY_SVC_NAME_LEN - 1] = '\0';
				if (!si.counter_names[i][0])
					continue;
				fprintf(out, "%s %s %llu", f ? " |" : "", si.counter_names[i],
					(unsigned long long)ss.counters[i]);
				f = false;
			}
			fputc('\n', out);
			continue;
		}
		fprintf(out, "%s{\"name\":", first ? "" : ",");
		json_string(out, si.service);
		fputc(',', out);
		json_counters(out, &ss, svc_counters, ARRAY_SIZE(svc_counters), &f);
		fprintf(out, ",\"counters\":{");
		f = true;
		for (int i = 0; i < FERRY_SVC_COUNTERS; i++) {
			si.counter_names[i][FERRY_SVC_NAME_LEN - 1] = '\0';
			if (!si.counter_names[i][0])
				continue;
			fputs(f ? "" : ",", out);
			json_string(out, si.counter_names[i]);
			fprintf(out, ":%llu", (unsigned long long)ss.counters[i]);
			f = false;
		}
		fprintf(out, "}}");
		first = false;
	}
	if (c->json)
		fputc(']', out);
	return 0;
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
		bool f = true;

		err = bpf_map_lookup_elem(c->flow_info.fd, &id, &fi);
		if (err) {
			fprintf(stderr, "ferryctl: %s/%s: cannot read key %u: %s\n", c->pin_path,
				c->flow_info.name, id, strerror(-err));
			return err;
		}
		if (!fi.configured)
			continue;
		fi.name[sizeof(fi.name) - 1] = '\0';
		err = read_percpu(c, &c->flow_stats, id, &fs, sizeof(fs));
		if (err)
			return err;
		err = read_percpu(c, &c->fwd_stats, id, &fwd, sizeof(fwd));
		if (err)
			return err;

		if (!c->json) {
			fprintf(out, "flow %s (id %u)\n", fi.name, id);
			text_counters(out, "steering", &fs, flow_counters,
				      ARRAY_SIZE(flow_counters));
			text_counters(out, "datapath", &fwd, fwd_counters,
				      ARRAY_SIZE(fwd_counters));
			text_drops(out, &fwd);
			err = print_services(c, id);
			if (err)
				return err;
			continue;
		}
		fprintf(out, "%s{\"name\":", first ? "" : ",");
		json_string(out, fi.name);
		fprintf(out, ",\"id\":%u,\"steering\":{", id);
		json_counters(out, &fs, flow_counters, ARRAY_SIZE(flow_counters), &f);
		fprintf(out, "},\"datapath\":{");
		f = true;
		json_counters(out, &fwd, fwd_counters, ARRAY_SIZE(fwd_counters), &f);
		fputc(',', out);
		json_drops(out, &fwd);
		fputc('}', out);
		err = print_services(c, id);
		if (err)
			return err;
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
		struct ferry_xdp_stats xs;
		bool f = false;
		int ret;

		if (err)
			goto next;
		ret = open_pin(c, &m, names[i]->d_name, sizeof(xs), true);
		if (ret == -ENOENT)
			goto next; /* ferryd detached it since the listing */
		err = ret ?: read_percpu(c, &m, 0, &xs, sizeof(xs));
		if (err)
			goto next;
		if (!c->json) {
			fprintf(out, "interface %s\n", ifname);
			text_counters(out, "xdp", &xs, xdp_counters, ARRAY_SIZE(xdp_counters));
		} else {
			fprintf(out, "%s{\"name\":", first ? "" : ",");
			json_string(out, ifname);
			json_counters(out, &xs, xdp_counters, ARRAY_SIZE(xdp_counters), &f);
			fputc('}', out);
			first = false;
		}
next:
		close_pin(&m);
		free(names[i]);
	}
	free(names);
	if (c->json)
		fputc(']', out);
	return err;
}

static int cmd_stats(struct ctl *c)
{
	size_t report_len = 0;
	char *report = NULL;
	int err;

	c->flow_info.fd = c->flow_stats.fd = c->fwd_stats.fd = -1;
	c->svc_info.fd = c->svc_stats.fd = -1;
	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0) {
		fprintf(stderr, "ferryctl: cannot count the possible CPUs: %s\n",
			strerror(c->ncpus ? -c->ncpus : EINVAL));
		return EXIT_NO_MAPS;
	}
	err = open_pin(c, &c->flow_info, FERRY_PIN_FLOW_INFO, sizeof(struct ferry_flow_info),
		       false);
	if (!err)
		err = open_pin(c, &c->flow_stats, FERRY_PIN_FLOW_STATS,
			       sizeof(struct ferry_flow_stats), false);
	if (!err)
		err = open_pin(c, &c->fwd_stats, FERRY_PIN_FWD_STATS,
			       sizeof(struct ferry_fwd_stats), false);
	if (!err)
		err = open_pin(c, &c->svc_info, FERRY_PIN_SVC_INFO, sizeof(struct ferry_svc_info),
			       false);
	if (!err)
		err = open_pin(c, &c->svc_stats, FERRY_PIN_SVC_STATS,
			       sizeof(struct ferry_svc_stats), false);
	if (err)
		goto out_close;

	c->out = open_memstream(&report, &report_len);
	if (!c->out) {
		err = -errno;
		fprintf(stderr, "ferryctl: %s\n", strerror(-err));
		goto out_close;
	}
	if (c->json)
		fputc('{', c->out);
	err = print_flows(c);
	if (!err)
		err = print_ifaces(c);
	if (c->json)
		fprintf(c->out, "}\n");
	if (fclose(c->out) && !err)
		err = -ENOMEM;
	if (!err && (fwrite(report, 1, report_len, stdout) != report_len || fflush(stdout))) {
		err = -errno;
		fprintf(stderr, "ferryctl: cannot write: %s\n", strerror(-err));
	}
	free(report);

out_close:
	close_pin(&c->svc_stats);
	close_pin(&c->svc_info);
	close_pin(&c->fwd_stats);
	close_pin(&c->flow_stats);
	close_pin(&c->flow_info);
	return err ? EXIT_NO_MAPS : EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option global_opts[] = {
		{ "pin-path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static const struct option stats_opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ctl c = { .pin_path = DEFAULT_PIN_PATH };
	int opt;

	/* "+": options end at the command, whose own options come after it. */
	while ((opt = getopt_long(argc, argv, "+p:h", global_opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			c.pin_path = optarg;
			break;
		case 'h':
			usage(stdout);
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
	if (strcmp(argv[optind], "stats")) {
		fprintf(stderr, "ferryctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	argc -= optind;
	argv += optind;
	argv[0] = "ferryctl stats"; /* getopt's messages name it */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+h", stats_opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c.json = true;
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
		fprintf(stderr, "ferryctl: stats: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return cmd_stats(&c);
}
