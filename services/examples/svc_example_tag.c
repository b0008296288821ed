// SPDX-License-Identifier: BSD-2-Clause
/*
 * example_tag: an out-of-tree service, built as a shared object apart from
 * ferryd and loaded from service_dir (see ferry-services(7)).
 *
 *   services:
 *     - example_tag: {offset: 0, value: 0x42}
 *     - forward: {upstream: 198.18.2.2:6000}
 *
 * It writes the byte `value` at payload offset `offset` of every client
 * packet whose payload reaches that far, then recomputes the checksums; a
 * shorter packet passes unchanged.  Replies pass untouched.  With
 * `sessions_only: true` it tags only the packets that already have a NAT
 * session (ferry_worker__session(): placed before forward, a client's first
 * packet has none yet) and counts the others as no_session.  It is small on
 * purpose: it shows the parts every service has (config parsing with
 * FILE:LINE:COL errors, per-worker state so process() needs no lock, its own
 * counters) and that calls into ferryd (ferry_pkt_fix_checksums(), the cfg_*
 * helpers) resolve against the daemon, which exports them.  It includes
 * only the installed service ABI header, nothing of ferry's source tree.
 *
 * Build (after `make install`, which installs the header):
 *   cc -O2 -fPIC -shared -I/usr/local/include -o example_tag.so svc_example_tag.c
 * (make builds it as build/services/example_tag.so against the header
 * installed into build/sdk/include).  The file name, the service name and
 * the config name must all be example_tag.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry_service.h>

enum tag_counter {
	TAG_TAGGED,    /* client packets changed */
	TAG_TOO_SHORT, /* client packets whose payload ends before `offset` */
	TAG_NO_SESSION, /* client packets left alone for want of a session (sessions_only) */
};

struct tag_conf {
	uint32_t offset;
	uint8_t value;
	bool sessions_only;
};

struct tag_worker {
	uint64_t counters[FERRY_SERVICE_COUNTERS];
};

/* 0..255, in decimal or as 0xNN. */
static int get_byte(const struct cfg_node *n, uint8_t *out, struct cfg_errors *errs)
{
	char s[16], *end;
	unsigned long v;

	if (cfg_get_string(n, s, sizeof(s), errs))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (!s[0] || *end || errno || v > 255 || s[0] == '-' || s[0] == '+') {
		cfg_node_error(errs, n,
			       "example_tag: value: '%s' is not a byte (0..255 or 0x00..0xff)", s);
		return -EINVAL;
	}
	*out = (uint8_t)v;
	return 0;
}

static int tag_parse_value(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return get_byte(val, &((struct tag_conf *)obj)->value, errs);
}

/* The arguments, read by ferryd into struct tag_conf: errors come out as FILE:LINE:COL. */
static const struct cfg_arg tag_arg_list[] = {
	{ .name = "offset",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct tag_conf, offset),
	  .min = 0,
	  .max = 65535 },
	{ .name = "value", .type = CFG_ARG_NODE, .required = true, .parse = tag_parse_value },
	{ .name = "sessions_only",
	  .type = CFG_ARG_BOOL,
	  .offset = offsetof(struct tag_conf, sessions_only) },
};

static const struct cfg_args tag_args = {
	.prefix = "example_tag",
	.expect = " with offset, value and sessions_only",
	.args = tag_arg_list,
	.nr = sizeof(tag_arg_list) / sizeof(tag_arg_list[0]),
};

static int tag_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **confp)
{
	struct tag_conf *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (cfg_args_parse(&tag_args, args, c, errs)) {
		free(c);
		return -EINVAL;
	}
	*confp = c;
	return 0;
}

static int tag_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct tag_worker *tw = calloc(1, sizeof(*tw));

	if (!tw)
		return -ENOMEM;
	*wstate = tw;
	return 0;
}

static void tag_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	const struct tag_conf *c = conf;
	struct tag_worker *tw = wstate;

	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		uint32_t off = ferry_pkt_payload_off(p) + c->offset;

		if (ferry_pkt_dir(p) != FERRY_DIR_CLIENT)
			continue;
		if (c->sessions_only && !ferry_worker__session(w, p)) {
			tw->counters[TAG_NO_SESSION]++;
			continue;
		}
		/* The IP packet ends there: never write into Ethernet padding. */
		if (off >= ferry_pkt_ip_end(p)) {
			tw->counters[TAG_TOO_SHORT]++;
			continue;
		}
		ferry_pkt_data(p)[off] = c->value;
		ferry_pkt_fix_checksums(p);
		tw->counters[TAG_TAGGED]++;
	}
}

static void tag_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct tag_worker *tw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += tw->counters[i];
}

static void tag_worker_destroy(void *conf, void *wstate)
{
	free(wstate);
}

static void tag_destroy(void *conf)
{
	free(conf);
}

/* What ferryd looks up (FERRY_SERVICE_SYMBOL); visible even under -fvisibility=hidden. */
__attribute__((visibility("default"))) const struct ferry_service_ops ferry_service = {
	.name = "example_tag",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = tag_configure,
	.worker_init = tag_worker_init,
	.process = tag_process,
	.stats = tag_stats,
	.worker_destroy = tag_worker_destroy,
	.destroy = tag_destroy,
	.counter_names = {
		[TAG_TAGGED] = "tagged",
		[TAG_TOO_SHORT] = "too_short",
		[TAG_NO_SESSION] = "no_session",
	},
};
