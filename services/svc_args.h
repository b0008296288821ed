/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Argument helpers shared by compress, decompress, pace, tap, filter and
 * ratelimit.
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

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "service.h"

enum svc_dir {
	SVC_DIR_CLIENT = 1 << FERRY_DIR_CLIENT, /* the clients' packets, towards the upstream */
	SVC_DIR_REPLY = 1 << FERRY_DIR_REPLY,	/* the upstream's replies */
	SVC_DIR_BOTH = SVC_DIR_CLIENT | SVC_DIR_REPLY,
};

/* "client", "reply" or "both"; 0 or -EINVAL after reporting the error at the node. */
static inline int svc_dir_parse(const struct cfg_node *n, const char *svc, enum svc_dir *out,
				struct cfg_errors *errs)
{
	char buf[16];

	if (cfg_get_string(n, buf, sizeof(buf), errs))
		return -EINVAL;
	if (!strcmp(buf, "client"))
		*out = SVC_DIR_CLIENT;
	else if (!strcmp(buf, "reply"))
		*out = SVC_DIR_REPLY;
	else if (!strcmp(buf, "both"))
		*out = SVC_DIR_BOTH;
	else {
		cfg_node_error(errs, n, "%s: direction '%s' is not one of client, reply, both", svc,
			       buf);
		return -EINVAL;
	}
	return 0;
}

static inline bool svc_dir_match(enum svc_dir dirs, const struct ferry_pkt *p)
{
	return p->dir <= FERRY_DIR_REPLY && (dirs & (1u << p->dir));
}

/*
 * One of two words a and b, each shorter than 8 characters: *is_b says
 * which.  Returns 0, or -EINVAL after reporting the error at the node
 * ("<what>: '<word>' is not one of <a>, <b>"), *is_b unchanged.
 */
static inline int svc_word_parse(const struct cfg_node *n, const char *what, const char *a,
				 const char *b, bool *is_b, struct cfg_errors *errs)
{
	char word[8];

	if (cfg_get_string(n, word, sizeof(word), errs))
		return -EINVAL;
	if (strcmp(word, a) && strcmp(word, b)) {
		cfg_node_error(errs, n, "%s: '%s' is not one of %s, %s", what, word, a, b);
		return -EINVAL;
	}
	*is_b = !strcmp(word, b);
	return 0;
}

/*
 * Where this service's entry is in its flow's chain (0-based), found by its
 * argument node, or -1.  For messages about the entry as a whole, whose
 * arguments may be absent, and for rules about the service's position.
 */
static inline int svc_entry_index(const struct ferry_flow_ctx *fc, const struct cfg_node *args)
{
	for (int i = 0; i < fc->flow->nr_services; i++)
		if (&fc->flow->services[i].args == args ||
		    (args->node && fc->flow->services[i].args.node == args->node))
			return i;
	return -1;
}

/* The mark of this service's entry, for cfg_mark_error(). */
static inline struct cfg_mark svc_entry_mark(const struct ferry_flow_ctx *fc,
					     const struct cfg_node *args)
{
	int i = svc_entry_index(fc, args);

	return i < 0 ? cfg_node_mark(args) : fc->flow->services[i].mark;
}

#endif /* FERRY_SVC_ARGS_H */
