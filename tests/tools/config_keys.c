// SPDX-License-Identifier: BSD-2-Clause
/*
 * config_keys: prints every key the config parser accepts, one per line as
 * "SECTION<TAB>KEY", where SECTION is "-" for the file's own keys (top
 * level, interfaces, nat, umem, flows, match) and the service's name for a
 * built-in service's arguments, nested ones (an lb upstream, a filter rule
 * and its payload) included.  tests/check_docs.sh checks each against
 * ferry.yaml(5).
 *
 * The keys come from the parser's own tables, not from a list kept here:
 * lib/config.c's config__key_hook is told every key of each table the
 * parser walks.  This program walks them all by trying, from each table
 * found, each of its keys with an empty mapping and with a sequence of one
 * empty mapping as its value, so that a nested table (a key whose value is
 * parsed with its own table) is found too, down to MAX_DEPTH levels.  Every
 * one of those configs is wrong; the errors are thrown away, only the walk
 * matters.  A service's arguments are parsed by its configure(), as ferryd
 * does once the file has loaded, so each service is tried inside a valid
 * file.
 *
 *   config_keys        exit status 0, or 1 when the walk went wrong
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "service.h"

#define MAX_DEPTH 8
#define MAX_TABLES 256
#define MAX_KEYS 64   /* per table */
#define MAX_OUT 4096

struct step {
	const char *key;
	bool seq; /* the value is [{}] rather than {} */
};

struct path {
	int n;
	struct step s[MAX_DEPTH];
};

struct table {
	const void *ptr;
	const char *section; /* "-" or the service's name */
	struct path path;    /* the values that led the parser to it */
	int nr_keys;
	const char *keys[MAX_KEYS];
};

static struct table tables[MAX_TABLES];
static int nr_tables;
static const char *cur_section;
static const struct path *cur_path;
static bool overflow;

static struct table *find_table(const void *ptr)
{
	for (int i = 0; i < nr_tables; i++)
		if (tables[i].ptr == ptr)
			return &tables[i];
	return NULL;
}

static void key_hook(const void *ptr, const char *key)
{
	struct table *t = find_table(ptr);

	if (!t) {
		if (nr_tables == MAX_TABLES) {
			overflow = true;
			return;
		}
		t = &tables[nr_tables++];
		t->ptr = ptr;
		t->section = cur_section;
		t->path = *cur_path;
	} else if (t->section != cur_section || t->path.n != cur_path->n ||
		   memcmp(&t->path, cur_path, sizeof(*cur_path))) {
		/* Walked again on the way to another: its keys are known. */
		return;
	}
	for (int i = 0; i < t->nr_keys; i++)
		if (!strcmp(t->keys[i], key))
			return;
	if (t->nr_keys == MAX_KEYS) {
		overflow = true;
		return;
	}
	t->keys[t->nr_keys++] = key;
}

/* Appends the flow-style YAML of PATH's values, innermost {}, to BUF. */
static void nest(char *buf, size_t len, const struct path *path)
{
	size_t at = strlen(buf);

	for (int i = 0; i < path->n; i++)
		at += snprintf(buf + at, at < len ? len - at : 0, "{%s: %s", path->s[i].key,
			       path->s[i].seq ? "[" : "");
	at += snprintf(buf + at, at < len ? len - at : 0, "{}");
	for (int i = path->n - 1; i >= 0; i--)
		at += snprintf(buf + at, at < len ? len - at : 0, "%s}", path->s[i].seq ? "]" : "");
}

/* Loads the file with PATH's values at the top level, or in SVC's arguments. */
static void try_path(const struct ferry_service_ops *svc, const struct path *path)
{
	struct cfg_errors errs = { 0 };
	struct ferry_daemon *d;
	char yaml[4096];

	d = calloc(1, sizeof(*d));
	if (!d) {
		overflow = true;
		return;
	}
	yaml[0] = '\0';
	if (svc)
		snprintf(yaml, sizeof(yaml),
			 "interfaces: [{name: eth0}]\n"
			 "flows:\n"
			 "  - name: f\n"
			 "    match: {protocol: udp, destination: 198.18.1.1, port: 5000}\n"
			 "    services:\n"
			 "      - %s: ",
			 svc->name);
	nest(yaml, sizeof(yaml), path);
	strncat(yaml, "\n", sizeof(yaml) - strlen(yaml) - 1);
	cur_section = svc ? svc->name : "-";
	cur_path = path;
	if (config__load_string(&d->cfg, "keys.yaml", yaml, &errs) == 0) {
		if (svc && svc->configure) {
			const struct cfg_flow *flow = &d->cfg.flows[0];
			struct ferry_flow_ctx fc = { .flow = flow, .flow_id = 0, .daemon = d };
			void *conf = NULL;

			if (!svc->configure(&fc, flow->services[0].args, &errs, &conf) &&
			    svc->destroy)
				svc->destroy(conf);
		}
		config__free(&d->cfg);
	}
	free(d);
}

/* Tries every key of every table found from FIRST on, as found. */
static void walk(const struct ferry_service_ops *svc, int first)
{
	for (int i = first; i < nr_tables; i++) {
		struct table *t = &tables[i];

		if (t->path.n == MAX_DEPTH)
			continue;
		for (int k = 0; k < t->nr_keys; k++) {
			for (int seq = 0; seq < 2; seq++) {
				struct path p = t->path;

				p.s[p.n].key = t->keys[k];
				p.s[p.n].seq = seq;
				p.n++;
				try_path(svc, &p);
			}
		}
	}
}

static void walk_service(const struct ferry_service_ops *ops, void *ctx)
{
	struct path none = { 0 };
	int first = nr_tables;

	try_path(ops, &none);
	walk(ops, first);
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	static char *out[MAX_OUT];
	struct path none = { 0 };
	int nr_out = 0, null_fd;

	/* The parser reports every error of these configs: none matters. */
	log__init("config_keys");
	null_fd = open("/dev/null", O_WRONLY);
	if (null_fd < 0 || dup2(null_fd, STDERR_FILENO) < 0)
		return 1;
	close(null_fd);
	config__key_hook = key_hook;

	try_path(NULL, &none);
	walk(NULL, 0);
	service__foreach(walk_service, NULL);
	config__key_hook = NULL;

	for (int i = 0; i < nr_tables; i++) {
		for (int k = 0; k < tables[i].nr_keys; k++) {
			if (nr_out == MAX_OUT ||
			    asprintf(&out[nr_out], "%s\t%s", tables[i].section, tables[i].keys[k]) < 0)
				return 1;
			nr_out++;
		}
	}
	qsort(out, nr_out, sizeof(out[0]), cmp_line);
	for (int i = 0; i < nr_out; i++)
		if (!i || strcmp(out[i], out[i - 1]))
			printf("%s\n", out[i]);
	/* No table at all, or one the walk could not hold: a broken walk, not a result. */
	if (overflow || !nr_tables) {
		printf("config_keys: the walk went wrong (%d tables)\n", nr_tables);
		return 1;
	}
	return 0;
}
