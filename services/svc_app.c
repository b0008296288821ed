// SPDX-License-Identifier: BSD-2-Clause
/*
 * app: a slot in a flow's chain where an unprivileged application process
 * runs the flow's packets (services/ferry_app.h is the contract).
 *
 *   app:
 *     name: transcode        # required: what the application attaches to
 *     owner: alice           # required: a user, group:NAME, or a numeric uid
 *     on_failure: bypass     # or drop: when no application answers
 *     ring_size: 1024        # a power of two 64..4096: frames per worker queue
 *     timeout_ms: 100        # 1..10000: a packet not returned by then takes on_failure
 *
 * The operator declares the slot; the application of `owner` attaches at
 * run time through ferryd's control socket (`control_socket`).  Names are
 * unique across all flows (lib/config.c checks that: an application names
 * a slot, not a flow).  The owner is resolved once, at configure: a user
 * deleted later keeps its uid.
 *
 * With no application attached, a packet that carries a UDP or TCP payload
 * takes the slot's on_failure: `bypass` lets it go on along the chain
 * (counted `bypassed`), `drop` drops it as `app_unavailable`.  Packets
 * without a payload (a bare TCP ACK) and ICMP errors go on untouched: the
 * application sees payloads only.
 */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_app.h"
#include "service.h"
#include "svc_app.h"
#include "svc_args.h"

#define APP_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

enum app_counter {
	APP_TO_APP,   /* payloads placed on a TO_APP ring */
	APP_BYPASSED, /* packets let on by on_failure bypass */
	APP_BAD_DESC, /* descriptors from the application that failed validation */
	APP_TIMEOUTS, /* packets not returned within timeout_ms */
};

struct app_args {
	char name[FERRY_APP_NAME_LEN];
	char owner[64];
	int on_failure;
	uint32_t ring_size, timeout_ms;
};

static const struct cfg_word app_failure_words[] = {
	{ "bypass", SVC_APP_BYPASS },
	{ "drop", SVC_APP_DROP },
	{ NULL, 0 },
};

static const struct cfg_arg app_arg_list[] = {
	{ .name = "name",
	  .type = CFG_ARG_STRING,
	  .offset = offsetof(struct app_args, name),
	  .size = sizeof(((struct app_args *)0)->name),
	  .required = true },
	{ .name = "owner",
	  .type = CFG_ARG_STRING,
	  .offset = offsetof(struct app_args, owner),
	  .size = sizeof(((struct app_args *)0)->owner),
	  .required = true },
	{ .name = "on_failure",
	  .type = CFG_ARG_WORD,
	  .offset = offsetof(struct app_args, on_failure),
	  .words = app_failure_words,
	  .def = SVC_APP_BYPASS },
	{ .name = "ring_size",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct app_args, ring_size),
	  .min = SVC_APP_MIN_RING,
	  .max = SVC_APP_MAX_RING,
	  .def = SVC_APP_DEFAULT_RING },
	{ .name = "timeout_ms",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct app_args, timeout_ms),
	  .min = 1,
	  .max = 10000,
	  .def = 100 },
};

static const struct cfg_args app_args_tbl = {
	.prefix = "app",
	.expect = " with name and owner",
	.args = app_arg_list,
	.nr = sizeof(app_arg_list) / sizeof(app_arg_list[0]),
};

/* "alice", "group:video" or "1000": *conf's owner fields, or -ENOENT. */
static int resolve_owner(const char *owner, struct svc_app_conf *c)
{
	char *end;

	if (!strncmp(owner, "group:", 6)) {
		struct group *gr = getgrnam(owner + 6);

		if (!gr)
			return -ENOENT;
		c->owner_is_group = true;
		c->owner_gid = gr->gr_gid;
		return 0;
	}
	if (*owner >= '0' && *owner <= '9') {
		unsigned long v;

		errno = 0;
		v = strtoul(owner, &end, 10);
		/* (uid_t)-1 means "no uid" to setresuid() and friends: never an owner. */
		if (errno || *end || v >= (uid_t)-1)
			return -ENOENT;
		c->owner_uid = (uid_t)v;
		return 0;
	}
	{
		struct passwd *pw = getpwnam(owner);

		if (!pw)
			return -ENOENT;
		c->owner_uid = pw->pw_uid;
	}
	return 0;
}

static int app_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **confp)
{
	struct app_args a = {};
	struct svc_app_conf *c;

	if (cfg_args_parse(&app_args_tbl, args, &a, errs))
		return -EINVAL;
	if (!a.name[0] || strspn(a.name, APP_NAME_CHARS) != strlen(a.name)) {
		cfg_node_error(errs, cfg_map_get(args, "name"),
			       "app: name: '%s' is not 1..31 characters of A-Za-z0-9_.-", a.name);
		return -EINVAL;
	}
	if (a.ring_size & (a.ring_size - 1)) {
		cfg_node_error(errs, cfg_map_get(args, "ring_size"),
			       "app: ring_size: %u is not a power of two", a.ring_size);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (resolve_owner(a.owner, c)) {
		cfg_node_error(errs, cfg_map_get(args, "owner"),
			       "app: owner: no such %s '%s'",
			       strncmp(a.owner, "group:", 6) ? "user" : "group",
			       strncmp(a.owner, "group:", 6) ? a.owner : a.owner + 6);
		free(c);
		return -EINVAL;
	}
	memcpy(c->name, a.name, sizeof(c->name));
	c->flow_id = fc->flow_id;
	c->on_failure = (enum svc_app_failure)a.on_failure;
	c->ring_size = a.ring_size;
	c->timeout_ns = (uint64_t)a.timeout_ms * 1000000;
	*confp = c;
	return 0;
}

struct app_worker {
	uint64_t counters[FERRY_SERVICE_COUNTERS];
};

static int app_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct app_worker *aw = calloc(1, sizeof(*aw));

	if (!aw)
		return -ENOMEM;
	*wstate = aw;
	return 0;
}

bool svc_app__has_payload(const struct ferry_pkt *p)
{
	unsigned int proto = ferry_pkt_l4_proto(p);

	return (proto == IPPROTO_UDP || proto == IPPROTO_TCP) &&
	       ferry_pkt_payload_off(p) < ferry_pkt_ip_end(p);
}

/* What the slot does with a packet no application takes. */
static void app_fail(const struct svc_app_conf *c, struct app_worker *aw, struct ferry_pkt *p)
{
	if (c->on_failure == SVC_APP_DROP) {
		ferry_pkt_drop(p, FERRY_DROP_app_unavailable);
		return;
	}
	aw->counters[APP_BYPASSED]++;
}

static void app_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	const struct svc_app_conf *c = conf;
	struct app_worker *aw = wstate;

	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];

		if (!svc_app__has_payload(p))
			continue;
		/* No application is attached in this version of the slot. */
		app_fail(c, aw, p);
	}
}

static void app_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct app_worker *aw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += aw->counters[i];
}

static void app_worker_destroy(void *conf, void *wstate)
{
	free(wstate);
}

static void app_destroy(void *conf)
{
	free(conf);
}

const struct ferry_service_ops svc_app_ops = {
	.name = "app",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = app_configure,
	.worker_init = app_worker_init,
	.process = app_process,
	.stats = app_stats,
	.worker_destroy = app_worker_destroy,
	.destroy = app_destroy,
	.counter_names = {
		[APP_TO_APP] = "to_app",
		[APP_BYPASSED] = "bypassed",
		[APP_BAD_DESC] = "bad_desc",
		[APP_TIMEOUTS] = "timeouts",
	},
};
