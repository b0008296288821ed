/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Applying a changed config to a running ferryd (SIGHUP).  See reload.c for
 * the design; reload__plan() is the pure part (what changed, which flow ids),
 * separate so the unit tests can check it without a running daemon.
 */
#ifndef FERRY_RELOAD_H
#define FERRY_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct ferry_daemon;

struct reload_plan {
	int nr_flows;                      /* flows of the new config */
	uint32_t new_id[CFG_MAX_FLOWS];    /* flow id of new flow i */
	bool unchanged[CFG_MAX_FLOWS];     /* new flow i keeps its running chain */
	bool updated[CFG_MAX_FLOWS];       /* new flow i: new chain, same id, sessions kept */
	uint64_t keep_mask;                /* ids of unchanged flows (bit = flow id) */
	uint64_t drop_mask;                /* ids of flows removed or changed */
	uint64_t add_mask;                 /* ids of flows added or changed */
	uint64_t update_mask;              /* ids of flows updated in place (kept sessions) */
	uint32_t nr_ids;                   /* highest id in use + 1 */
	int added, changed, removed, unchanged_count, updated_count;
};

/*
 * Compares the running config `old`, whose flow i has flow id old_id[i],
 * with `new`.  A change to anything but the flows (and log_level) is
 * reported through errs as "changing X needs a restart" and returns
 * -EINVAL.  Otherwise fills `plan`: a flow is unchanged when a flow of the
 * same name has an identical YAML subtree (match, services and their
 * arguments, every other key); it keeps its id.  A flow whose only changes
 * are the arguments of services that take new ones in place (lb) is updated:
 * it keeps its id and sessions, and gets a new chain.  Added and changed
 * flows get ids no flow of either config uses, when there are any left.
 */
int reload__plan(const struct ferry_config *old, const uint32_t old_id[CFG_MAX_FLOWS],
		 const struct ferry_config *new, struct reload_plan *plan, struct cfg_errors *errs);

/* Sets up what reloads need (the workers' park eventfd) before workers start. */
int reload__init(struct ferry_daemon *d);
void reload__fini(struct ferry_daemon *d);

/*
 * What a reload did or would do, for `ferryctl reload` (daemon/control.c):
 * lines "added NAME", "removed NAME", "changed NAME: why", "unchanged NAME",
 * then a summary line; or "refused: why" and the config's FILE:LINE:COL
 * errors.  dry_run: validate and diff only, apply nothing.
 */
struct reload_report {
	bool dry_run;
	char *text; /* NUL-terminated, malloc'd; NULL until something is written */
	size_t len, cap;
	bool truncated; /* ran out of memory: the text is short */
};

void reload_report__printf(struct reload_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void reload_report__free(struct reload_report *r);
/* The added/removed/changed/unchanged lines of `plan` (from reload__plan()). */
void reload__describe(const struct ferry_config *old, const struct ferry_config *new,
		      const struct reload_plan *plan, struct reload_report *r);

/*
 * Loads `file` and applies it, or keeps the running config in force and
 * logs why.  `keep_log_level`: -v was given, log_level is not applied.
 * `rep` (or NULL) gets the report; with rep->dry_run nothing is applied
 * (services' start() and worker_init() do not run: a failure of theirs
 * shows only in a real reload).  0, or -errno when refused.
 * Main thread only.
 */
int reload__run(struct ferry_daemon *d, const char *file, bool keep_log_level,
		struct reload_report *rep);

struct nh_resolver;
/*
 * After a route change: moves each reply rule to the interface the route to
 * its upstream now uses, if that is a ferry interface.  0 or -errno.
 */
int reload__follow_routes(struct ferry_daemon *d, struct nh_resolver *nh);

#endif /* FERRY_RELOAD_H */
