/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Argument helpers shared by compress, decompress, pace, tap, filter and
 * ratelimit: the `direction` argument and where a service's entry is.
 *
 * `direction`: a flow's chain runs for both directions of its traffic: the clients'
 * packets (matched by the flow's own rule) and the upstream's replies
 * (matched by the reply rule forward adds).  A service that changes the
 * payload must act on one direction only; for example, the proxy next to
 * the clients compresses what goes upstream and the one next to the server
 * inflates it, while the server's plain replies pass both untouched.
 */
#ifndef FERRY_SVC_ARGS_H
#define FERRY_SVC_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "service.h"

enum svc_dir {
	SVC_DIR_CLIENT = 1 << FERRY_DIR_CLIENT, /* the clients' packets, towards the upstream */
	SVC_DIR_REPLY = 1 << FERRY_DIR_REPLY,	/* the upstream's replies */
	SVC_DIR_BOTH = SVC_DIR_CLIENT | SVC_DIR_REPLY,
};

/* `direction`: "client", "reply" or "both", an enum svc_dir. */
static const struct cfg_word svc_dir_words[] __attribute__((unused)) = {
	{ "client", SVC_DIR_CLIENT },
	{ "reply", SVC_DIR_REPLY },
	{ "both", SVC_DIR_BOTH },
	{ NULL, 0 },
};

/* CFG_ARG_WORD writes an int: an enum svc_dir field takes it. */
_Static_assert(sizeof(enum svc_dir) == sizeof(int), "enum svc_dir is not an int");

/* The `direction` entry of an argument table: into `field` (int, enum svc_dir) of `st`. */
#define SVC_DIR_ARG(st, field, dflt)                                                      \
	{                                                                                 \
		.name = "direction", .type = CFG_ARG_WORD, .offset = offsetof(st, field), \
		.words = svc_dir_words, .def = (dflt)                                     \
	}

static inline bool svc_dir_match(enum svc_dir dirs, const struct ferry_pkt *p)
{
	return p->dir <= FERRY_DIR_REPLY && (dirs & (1u << p->dir));
}

/*
 * Where this service's entry is in its flow's chain (0-based), found by its
 * argument node, or -1: for rules about the service's position.
 */
static inline int svc_entry_index(const struct ferry_flow_ctx *fc, const struct cfg_node *args)
{
	for (int i = 0; i < fc->flow->nr_services; i++)
		if (fc->flow->services[i].args == args)
			return i;
	return -1;
}

/* The mark of this service's entry (its name), for cfg_mark_error(). */
static inline struct cfg_mark svc_entry_mark(const struct ferry_flow_ctx *fc,
					     const struct cfg_node *args)
{
	int i = svc_entry_index(fc, args);

	return i < 0 ? cfg_node_mark(args) : fc->flow->services[i].mark;
}

#endif /* FERRY_SVC_ARGS_H */
