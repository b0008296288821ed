// SPDX-License-Identifier: BSD-2-Clause
/*
 * The YAML configuration, and the only file that knows libyaml.  Its
 * document API (not its event API) is used because the whole tree has to
 * outlive parsing: services read their own arguments later, through opaque
 * handles and argument tables (cfg_args_parse()), and every node carries the
 * start mark that error messages need.  What a flow means, for reload's
 * diff, is decided here too (config__flow_equal()).
 *
 * Each mapping is described by a table of (key, handler); a handler reports
 * its own errors and returns nothing, so one bad value never stops the walk
 * and `ferryd --check` shows every problem of a file in one run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config.h"
#include "ferry_app.h"
#include "log.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define DEFAULT_PIN_PATH "/sys/fs/bpf/ferry"
#define DEFAULT_SERVICE_DIR "/usr/lib/ferry/services"
#define MAX_QUEUES CFG_MAX_QUEUES
#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/*
 * The loaded document, kept for the services' arguments: each node of it
 * has a struct cfg_node, the handle services get.  Heap-allocated so that
 * handles survive config__move().
 */
struct cfg_node {
	struct cfg_tree *tree;
	yaml_node_t *node;       /* NULL: a service written without arguments */
	struct cfg_mark entry;   /* such a service's name, for "expected a mapping" */
	/*
	 * A service's arguments, normalised for config__flow_equal(): at load
	 * as a tree (canon()), refined by cfg_args_parse() to the values its
	 * table read (typed_canon()) unless the node is shared by an alias.
	 */
	char *canon;
	bool service_args, shared;
};

struct cfg_tree {
	yaml_document_t doc;
	bool doc_loaded;
	char file[256];
	struct cfg_node null;    /* for a missing node */
	size_t nr;
	struct cfg_node *nodes;  /* nodes[i]: the document's node i + 1 */
	/* The arguments of services written without any. */
	struct cfg_node none[CFG_MAX_FLOWS][CFG_MAX_SERVICES];
};

/* ---- error sink ---- */

static void capture_line(struct cfg_errors *errs, const char *line, size_t n)
{
	char *buf = realloc(errs->capture, errs->capture_len + n + 2);

	/* Losing a captured line is better than losing the log line or aborting. */
	if (!buf)
		return;
	memcpy(buf + errs->capture_len, line, n);
	buf[errs->capture_len + n] = '\n';
	buf[errs->capture_len + n + 1] = '\0';
	errs->capture = buf;
	errs->capture_len += n + 1;
}

__attribute__((format(printf, 4, 0))) static void
vreport(struct cfg_errors *errs, const char *file, const yaml_mark_t *mark, const char *fmt,
	va_list ap)
{
	char msg[512], line[1024];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!file)
		file = "(config)";
	if (mark)
		n = snprintf(line, sizeof(line), "%s:%zu:%zu: %s", file, mark->line + 1,
			     mark->column + 1, msg);
	else
		n = snprintf(line, sizeof(line), "%s: %s", file, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	pr_err("%s", line);
	if (!errs)
		return;
	errs->count++;
	if (errs->capture)
		capture_line(errs, line, n);
}

__attribute__((format(printf, 4, 5))) static void
report(struct cfg_errors *errs, const char *file, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(errs, file, mark, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void cfg_error(struct cfg_errors *errs,
								const yaml_node_t *node,
								const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(errs, errs ? errs->file : NULL, node ? &node->start_mark : NULL, fmt, ap);
	va_end(ap);
}

void cfg_node_error(struct cfg_errors *errs, const struct cfg_node *n, const char *fmt, ...)
{
	const char *file = n && n->tree ? n->tree->file : errs ? errs->file : NULL;
	va_list ap;

	va_start(ap, fmt);
	vreport(errs, file, n && n->node ? &n->node->start_mark : NULL, fmt, ap);
	va_end(ap);
}

void cfg_mark_error(struct cfg_errors *errs, struct cfg_mark mark, const char *fmt, ...)
{
	/* yaml marks are 0-based, cfg_marks 1-based. */
	yaml_mark_t m = { .line = mark.line ? mark.line - 1 : 0,
			  .column = mark.col ? mark.col - 1 : 0 };
	va_list ap;

	va_start(ap, fmt);
	vreport(errs, errs ? errs->file : NULL, mark.line ? &m : NULL, fmt, ap);
	va_end(ap);
}

struct cfg_mark cfg_node_mark(const struct cfg_node *n)
{
	struct cfg_mark m = { 0, 0 };

	if (n && n->node) {
		m.line = n->node->start_mark.line + 1;
		m.col = n->node->start_mark.column + 1;
	}
	return m;
}

/* ---- scalar readers, shared by the parser and by services ---- */

/* Prefix for messages: "what: " when the caller knows the key, else nothing. */
#define WHAT(w) (w) ? (w) : "", (w) ? ": " : ""

static const char *get_text(const struct cfg_node *n, const char *what, struct cfg_errors *errs)
{
	const yaml_node_t *node = n ? n->node : NULL;
	const char *s;

	if (!node || node->type != YAML_SCALAR_NODE) {
		cfg_node_error(errs, n, "%s%sexpected a scalar", WHAT(what));
		return NULL;
	}
	s = (const char *)node->data.scalar.value;
	/* A "\0" escape would silently cut every name and number short. */
	if (strlen(s) != node->data.scalar.length) {
		cfg_node_error(errs, n, "%s%sNUL character in value", WHAT(what));
		return NULL;
	}
	return s;
}

static int copy_text(const struct cfg_node *n, const char *what, char *buf, size_t len,
		     struct cfg_errors *errs)
{
	const char *s = get_text(n, what, errs);

	if (!s)
		return -EINVAL;
	if (strlen(s) >= len) {
		cfg_node_error(errs, n, "%s%s'%s' is too long (max %zu characters)", WHAT(what), s,
			       len - 1);
		return -EINVAL;
	}
	strcpy(buf, s);
	return 0;
}

int cfg_get_string(const struct cfg_node *n, char *buf, size_t len, struct cfg_errors *errs)
{
	return copy_text(n, NULL, buf, len, errs);
}

/* Strict decimal: no sign, no spaces, no 0x or 1_000; 0 or -EINVAL/-ERANGE. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0;
	bool neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		/* Saturate instead of wrapping so huge values stay out of range. */
		if (v <= UINT32_MAX)
			v = v * 10 + (unsigned int)(*s - '0');
	}
	if (*s)
		return -EINVAL;
	if (neg || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int get_u32(const struct cfg_node *n, const char *what, uint32_t min, uint32_t max,
		   uint32_t *out, struct cfg_errors *errs)
{
	const char *s = get_text(n, what, errs);
	int err;

	if (!s)
		return -EINVAL;
	err = parse_u32(s, min, max, out);
	if (err == -EINVAL)
		cfg_node_error(errs, n, "%s%sexpected a number, got '%s'", WHAT(what), s);
	else if (err)
		cfg_node_error(errs, n, "%s%svalue %s is out of range %u..%u", WHAT(what), s, min,
			       max);
	return err ? -EINVAL : 0;
}

int cfg_get_u32(const struct cfg_node *n, uint32_t min, uint32_t max, uint32_t *out,
		struct cfg_errors *errs)
{
	return get_u32(n, NULL, min, max, out, errs);
}

int cfg_get_bool(const struct cfg_node *n, bool *out, struct cfg_errors *errs)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *s = get_text(n, NULL, errs);

	if (!s)
		return -EINVAL;
	for (unsigned int i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			return 0;
		}
	}
	cfg_node_error(errs, n, "expected true or false, got '%s'", s);
	return -EINVAL;
}

/* Parses an address without prefix length into *out (plen = full length). */
static int parse_addr(const char *s, size_t len, struct cfg_prefix *out)
{
	char buf[INET6_ADDRSTRLEN];

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, &out->addr.v4) == 1) {
		out->family = AF_INET;
		out->plen = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &out->addr.v6) == 1) {
		out->family = AF_INET6;
		out->plen = 128;
		return 0;
	}
	return -EINVAL;
}

static int get_prefix(const struct cfg_node *n, const char *what, struct cfg_prefix *out,
		      struct cfg_errors *errs)
{
	const char *s = get_text(n, what, errs);
	const char *slash;
	struct cfg_prefix p;
	uint32_t plen;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (parse_addr(s, slash ? (size_t)(slash - s) : strlen(s), &p)) {
		cfg_node_error(errs, n, "%s%sbad address '%s'", WHAT(what), s);
		return -EINVAL;
	}
	if (slash) {
		int err = parse_u32(slash + 1, 0, p.plen, &plen);

		if (err == -EINVAL) {
			cfg_node_error(errs, n, "%s%sbad prefix length in '%s'", WHAT(what), s);
			return -EINVAL;
		}
		if (err) {
			cfg_node_error(errs, n, "%s%sprefix length in '%s' is out of range 0..%u",
				       WHAT(what), s, p.plen);
			return -EINVAL;
		}
		p.plen = plen;
	}
	*out = p;
	return 0;
}

int cfg_get_prefix(const struct cfg_node *n, struct cfg_prefix *out, struct cfg_errors *errs)
{
	return get_prefix(n, NULL, out, errs);
}

/* One port, 1..65535, from s[0..len): 0, -EINVAL (not digits) or -ERANGE. */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
	char buf[8];
	uint32_t v;
	int err;

	if (!len || strspn(s, "0123456789") < len)
		return -EINVAL;
	if (len >= sizeof(buf))
		return -ERANGE;
	memcpy(buf, s, len);
	buf[len] = '\0';
	err = parse_u32(buf, 1, 65535, &v);
	if (!err)
		*out = v;
	return err;
}

static int get_port_range(const struct cfg_node *n, const char *what, struct cfg_port_range *out,
			  struct cfg_errors *errs)
{
	const char *s = get_text(n, what, errs);
	const char *dash;
	uint16_t lo, hi;
	int err;

	if (!s)
		return -EINVAL;
	/* Past the first character, so "-5" is a bad port rather than a range. */
	dash = *s ? strchr(s + 1, '-') : NULL;
	if (dash) {
		int err_lo = parse_port(s, dash - s, &lo);
		int err_hi = parse_port(dash + 1, strlen(dash + 1), &hi);

		/* A malformed half makes the whole text malformed. */
		if (err_lo == -EINVAL || err_hi == -EINVAL)
			err = -EINVAL;
		else
			err = err_lo ?: err_hi;
	} else {
		err = parse_port(s, strlen(s), &lo);
	}
	if (err == -EINVAL) {
		cfg_node_error(errs, n, "%s%sexpected a port or a range LO-HI, got '%s'",
			       WHAT(what), s);
		return -EINVAL;
	}
	if (err) {
		cfg_node_error(errs, n, "%s%sport '%s' is out of range 1..65535", WHAT(what), s);
		return -EINVAL;
	}
	if (dash && lo > hi) {
		cfg_node_error(errs, n, "%s%sport range '%s' is reversed (%u > %u)", WHAT(what), s,
			       lo, hi);
		return -EINVAL;
	}
	if (!dash)
		hi = lo;
	out->lo = lo;
	out->hi = hi;
	return 0;
}

int cfg_get_port_range(const struct cfg_node *n, struct cfg_port_range *out,
		       struct cfg_errors *errs)
{
	return get_port_range(n, NULL, out, errs);
}

int cfg_get_endpoint(const struct cfg_node *n, struct cfg_prefix *addr, uint16_t *port,
		     struct cfg_errors *errs)
{
	const char *s = get_text(n, NULL, errs);
	const char *a, *colon;
	size_t alen;
	struct cfg_prefix p;
	uint16_t v;
	int err;

	if (!s)
		return -EINVAL;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			goto syntax;
		a = s + 1;
		alen = close - a;
		colon = close + 1;
		if (parse_addr(a, alen, &p) || p.family != AF_INET6)
			goto bad_addr;
	} else {
		colon = strchr(s, ':');
		if (!colon)
			goto syntax;
		if (strchr(colon + 1, ':')) {
			cfg_node_error(errs, n, "IPv6 endpoint '%s' needs brackets: [ADDR]:PORT",
				       s);
			return -EINVAL;
		}
		a = s;
		alen = colon - s;
		if (parse_addr(a, alen, &p) || p.family != AF_INET)
			goto bad_addr;
	}
	err = parse_port(colon + 1, strlen(colon + 1), &v);
	if (err == -EINVAL)
		goto syntax;
	if (err) {
		cfg_node_error(errs, n, "port in '%s' is out of range 1..65535", s);
		return -EINVAL;
	}
	*addr = p;
	*port = v;
	return 0;
syntax:
	cfg_node_error(errs, n, "expected ADDR:PORT or [ADDR6]:PORT, got '%s'", s);
	return -EINVAL;
bad_addr:
	cfg_node_error(errs, n, "bad address in '%s'", s);
	return -EINVAL;
}

/* ---- mapping and sequence access for services ---- */

static const struct cfg_node *handle(const struct cfg_tree *t, yaml_node_t *node)
{
	if (!node)
		return &t->null;
	return &t->nodes[node - t->doc.nodes.start];
}

static yaml_node_t *child(const struct cfg_node *n, int id)
{
	return yaml_document_get_node(&n->tree->doc, id);
}

bool cfg_node_is_map(const struct cfg_node *n)
{
	return n && n->node && n->node->type == YAML_MAPPING_NODE;
}

int cfg_seq_len(const struct cfg_node *n)
{
	if (!n || !n->node || n->node->type != YAML_SEQUENCE_NODE)
		return -1;
	return (int)(n->node->data.sequence.items.top - n->node->data.sequence.items.start);
}

const struct cfg_node *cfg_seq_item(const struct cfg_node *n, int i)
{
	return handle(n->tree, child(n, n->node->data.sequence.items.start[i]));
}

static const char *key_text(const struct cfg_node *map, yaml_node_pair_t *pair)
{
	yaml_node_t *k = child(map, pair->key);

	/* A complex key matches no name, so it is reported as unknown. */
	return k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
}

const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key)
{
	if (!cfg_node_is_map(map))
		return NULL;
	for (yaml_node_pair_t *pair = map->node->data.mapping.pairs.start;
	     pair < map->node->data.mapping.pairs.top; pair++)
		if (!strcmp(key_text(map, pair), key))
			return handle(map->tree, child(map, pair->value));
	return NULL;
}

void cfg_iter_init(cfg_iter *it, const struct cfg_node *map)
{
	it->map = map;
	it->i = 0;
}

bool cfg_iter_next(cfg_iter *it, const char **key, const struct cfg_node **val)
{
	const struct cfg_node *map = it->map;
	yaml_node_pair_t *pair;

	if (!cfg_node_is_map(map) ||
	    it->i >= map->node->data.mapping.pairs.top - map->node->data.mapping.pairs.start) {
		*key = NULL;
		*val = NULL;
		return false;
	}
	pair = map->node->data.mapping.pairs.start + it->i++;
	*key = key_text(map, pair);
	*val = handle(map->tree, child(map, pair->value));
	return true;
}

int cfg_for_each_item(const struct cfg_node *seq, const char *what, int max,
		      int (*fn)(const struct cfg_node *item, int i, void *ctx), void *ctx,
		      struct cfg_errors *errs)
{
	int n = cfg_seq_len(seq), err = 0;

	if (n < 0) {
		cfg_node_error(errs, seq, "%s: expected a sequence", what);
		return -EINVAL;
	}
	if (!n) {
		cfg_node_error(errs, seq, "%s: at least one entry is required", what);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		if (i == max) {
			cfg_node_error(errs, cfg_seq_item(seq, i), "%s: too many entries (max %d)",
				       what, max);
			return -EINVAL;
		}
		if (fn(cfg_seq_item(seq, i), i, ctx))
			err = -EINVAL;
	}
	return err;
}

/* ---- normalised arguments, for config__flow_equal() ---- */

/*
 * A growing string for canon(); on allocation failure it is marked broken
 * and the flow then compares unequal to everything, which only costs a
 * restart of the flow on reload.
 */
struct strbuf {
	char *s;
	size_t len, size;
	bool broken;
};

static void sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->broken)
		return;
	if (b->len + n + 1 > b->size) {
		size_t size = (b->len + n + 1) * 2;
		char *ns = realloc(b->s, size);

		if (!ns) {
			b->broken = true;
			return;
		}
		b->s = ns;
		b->size = size;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * NODE as normalised text: scalars quoted with '"' and '\\' escaped (so
 * the quoting and style of the file do not matter), sequences in order,
 * mappings sorted by key (their order carries no meaning).  The walk is
 * bounded because check_args() accepted the node first.
 */
static void canon(yaml_document_t *doc, yaml_node_t *node, struct strbuf *out)
{
	if (!node) {
		sb_add(out, "~", 1);
		return;
	}
	switch (node->type) {
	case YAML_SCALAR_NODE:
		sb_add(out, "\"", 1);
		for (size_t i = 0; i < node->data.scalar.length; i++) {
			const char *c = (const char *)node->data.scalar.value + i;

			if (*c == '"' || *c == '\\')
				sb_add(out, "\\", 1);
			sb_add(out, c, 1);
		}
		sb_add(out, "\"", 1);
		return;
	case YAML_SEQUENCE_NODE:
		sb_add(out, "[", 1);
		for (yaml_node_item_t *i = node->data.sequence.items.start;
		     i < node->data.sequence.items.top; i++) {
			canon(doc, yaml_document_get_node(doc, *i), out);
			sb_add(out, ",", 1);
		}
		sb_add(out, "]", 1);
		return;
	case YAML_MAPPING_NODE: {
		size_t n = node->data.mapping.pairs.top - node->data.mapping.pairs.start;
		char **pairs = calloc(n ?: 1, sizeof(*pairs));

		if (!pairs) {
			out->broken = true;
			return;
		}
		for (size_t i = 0; i < n; i++) {
			yaml_node_pair_t *pair = node->data.mapping.pairs.start + i;
			struct strbuf kv = {};

			canon(doc, yaml_document_get_node(doc, pair->key), &kv);
			sb_add(&kv, ":", 1);
			canon(doc, yaml_document_get_node(doc, pair->value), &kv);
			out->broken |= kv.broken;
			pairs[i] = kv.s;
		}
		if (!out->broken)
			qsort(pairs, n, sizeof(*pairs), cmp_str);
		sb_add(out, "{", 1);
		for (size_t i = 0; i < n; i++) {
			if (pairs[i])
				sb_add(out, pairs[i], strlen(pairs[i]));
			sb_add(out, ",", 1);
			free(pairs[i]);
		}
		free(pairs);
		sb_add(out, "}", 1);
		return;
	}
	default:
		out->broken = true;
	}
}

/* ---- argument tables ---- */

static int get_word_arg(const struct cfg_args *tbl, const struct cfg_arg *a,
			const struct cfg_node *n, int *out, struct cfg_errors *errs)
{
	char word[64], list[256] = "";
	size_t len = 0;

	if (cfg_get_string(n, word, sizeof(word), errs))
		return -EINVAL;
	for (const struct cfg_word *w = a->words; w->name; w++) {
		if (!strcmp(word, w->name)) {
			*out = w->value;
			return 0;
		}
		len += snprintf(list + len, len < sizeof(list) ? sizeof(list) - len : 0, "%s%s",
				w == a->words ? "" : ", ", w->name);
	}
	cfg_node_error(errs, n, "%s: %s: '%s' is not one of %s", tbl->prefix, a->name, word, list);
	return -EINVAL;
}

struct list_ctx {
	const struct cfg_arg *a;
	void *obj;
	struct cfg_errors *errs;
};

static int list_item(const struct cfg_node *item, int i, void *ctx)
{
	struct list_ctx *lc = ctx;

	return lc->a->item(item, i, lc->obj, lc->errs);
}

static int parse_arg(const struct cfg_args *tbl, const struct cfg_arg *a,
		     const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	void *dst = (char *)obj + a->offset;

	switch (a->type) {
	case CFG_ARG_U32:
		return cfg_get_u32(val, a->min, a->max, dst, errs);
	case CFG_ARG_BOOL:
		return cfg_get_bool(val, dst, errs);
	case CFG_ARG_STRING:
		return cfg_get_string(val, dst, a->size, errs);
	case CFG_ARG_WORD:
		return get_word_arg(tbl, a, val, dst, errs);
	case CFG_ARG_ENDPOINT: {
		struct cfg_endpoint *ep = dst;

		return cfg_get_endpoint(val, &ep->addr, &ep->port, errs);
	}
	case CFG_ARG_PREFIX:
		return cfg_get_prefix(val, dst, errs);
	case CFG_ARG_PORTS:
		return cfg_get_port_range(val, dst, errs);
	case CFG_ARG_LIST: {
		struct list_ctx lc = { .a = a, .obj = obj, .errs = errs };
		char what[96];

		snprintf(what, sizeof(what), "%s: %s", tbl->prefix, a->name);
		return cfg_for_each_item(val, what, (int)a->max, list_item, &lc, errs);
	}
	case CFG_ARG_NODE:
		return a->parse(val, obj, errs);
	}
	return -EINVAL;
}

/* A key not given: its default, for the types that have one. */
static void default_arg(const struct cfg_arg *a, void *obj)
{
	void *dst = (char *)obj + a->offset;

	switch (a->type) {
	case CFG_ARG_U32:
		*(uint32_t *)dst = a->def;
		break;
	case CFG_ARG_BOOL:
		*(bool *)dst = a->def;
		break;
	case CFG_ARG_WORD:
		*(int *)dst = (int)a->def;
		break;
	default:
		break;
	}
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct strbuf *b, const char *fmt,
							      ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		b->broken = true;
	else
		sb_add(b, buf, (size_t)n);
}

static void sb_prefix(struct strbuf *b, const struct cfg_prefix *p)
{
	sb_printf(b, "%d/%u/", p->family, p->plen);
	for (size_t i = 0; i < sizeof(p->addr.bytes); i++)
		sb_printf(b, "%02x", p->addr.bytes[i]);
}

/*
 * A service's arguments as its table read them: in table order, each value
 * as parsed (so the spelling and a spelled-out default do not matter) and,
 * where the service can tell, whether it was given.  What a callback
 * parses (lists, nested mappings) is kept as the normalised tree.
 */
static void typed_canon(const struct cfg_args *tbl, const struct cfg_node *n, const void *obj,
			uint64_t seen, struct strbuf *out)
{
	for (unsigned int i = 0; i < tbl->nr && i < 64; i++) {
		const struct cfg_arg *a = &tbl->args[i];
		const void *v = (const char *)obj + a->offset;
		const struct cfg_node *val;

		sb_printf(out, "%s%s=", a->name, a->seen && (seen >> i & 1) ? "!" : "");
		switch (a->type) {
		case CFG_ARG_U32:
			sb_printf(out, "%u", *(const uint32_t *)v);
			break;
		case CFG_ARG_BOOL:
			sb_printf(out, "%d", *(const bool *)v);
			break;
		case CFG_ARG_WORD:
			sb_printf(out, "%d", *(const int *)v);
			break;
		case CFG_ARG_STRING:
			sb_add(out, v, strnlen(v, a->size));
			break;
		case CFG_ARG_ENDPOINT:
			sb_prefix(out, &((const struct cfg_endpoint *)v)->addr);
			sb_printf(out, ":%u", ((const struct cfg_endpoint *)v)->port);
			break;
		case CFG_ARG_PREFIX:
			sb_prefix(out, v);
			break;
		case CFG_ARG_PORTS:
			sb_printf(out, "%u-%u", ((const struct cfg_port_range *)v)->lo,
				  ((const struct cfg_port_range *)v)->hi);
			break;
		case CFG_ARG_LIST:
		case CFG_ARG_NODE:
			val = seen >> i & 1 ? cfg_map_get(n, a->name) : NULL;
			canon(&n->tree->doc, val ? val->node : NULL, out);
			break;
		}
		/* A string may hold any character: its length keeps the fields apart. */
		sb_printf(out, ";%zu;", a->type == CFG_ARG_STRING ? strnlen(v, a->size) : 0);
	}
}

void (*config__key_hook)(const void *table, const char *key);

int cfg_args_parse(const struct cfg_args *tbl, const struct cfg_node *n, void *obj,
		   struct cfg_errors *errs)
{
	uint64_t seen = 0; /* one bit per table entry */
	const struct cfg_node *val;
	const char *key;
	cfg_iter it;
	int err = 0;

	if (config__key_hook)
		for (unsigned int i = 0; i < tbl->nr; i++)
			config__key_hook(tbl, tbl->args[i].name);
	if (!cfg_node_is_map(n) && !(tbl->optional && n && !n->node)) {
		/* With no arguments there is no node: point at the service's name. */
		if (n && !n->node && n->entry.line)
			cfg_mark_error(errs, n->entry, "%s: expected a mapping%s", tbl->prefix,
				       tbl->expect ?: "");
		else
			cfg_node_error(errs, n, "%s: expected a mapping%s", tbl->prefix,
				       tbl->expect ?: "");
		return -EINVAL;
	}
	cfg_iter_init(&it, n);
	while (cfg_iter_next(&it, &key, &val)) {
		unsigned int i;

		for (i = 0; i < tbl->nr && i < 64; i++)
			if (!strcmp(key, tbl->args[i].name))
				break;
		if (i == tbl->nr || i == 64) {
			cfg_node_error(errs, val, "%s: unknown key '%s'%s%s", tbl->prefix, key,
				       tbl->in ? " in " : "", tbl->in ?: "");
			err = -EINVAL;
			continue;
		}
		/* Duplicate keys were refused when the file was loaded. */
		seen |= 1ull << i;
		if (tbl->args[i].seen)
			*(bool *)((char *)obj + tbl->args[i].seen - 1) = true;
		if (parse_arg(tbl, &tbl->args[i], val, obj, errs))
			err = -EINVAL;
	}
	for (unsigned int i = 0; i < tbl->nr && i < 64; i++) {
		if (seen & (1ull << i))
			continue;
		if (tbl->args[i].required) {
			cfg_node_error(errs, n, "%s: missing key '%s'%s%s", tbl->prefix,
				       tbl->args[i].name, tbl->in ? " in " : "", tbl->in ?: "");
			err = -EINVAL;
		} else {
			default_arg(&tbl->args[i], obj);
		}
	}
	if (!err && n->service_args && !n->shared) {
		struct cfg_node *own = (struct cfg_node *)n; /* the config's own data */
		struct strbuf cs = {};

		typed_canon(tbl, n, obj, seen, &cs);
		if (!cs.broken) {
			free(own->canon);
			own->canon = cs.s;
		} else {
			free(cs.s);
		}
	}
	return err;
}

/* ---- the parser ---- */

struct parser {
	struct ferry_config *cfg;
	struct cfg_errors *errs;
	yaml_document_t *doc;
	yaml_node_t *nat_ports; /* set when nat.ports was given and valid */
};

struct key_handler;
typedef void key_fn(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj);

struct key_handler {
	const char *key;
	key_fn *fn;
	bool required;
	/* for the generic number handler */
	size_t off;
	uint32_t min, max;
	bool pow2;
};

static const struct cfg_node *node_of(struct parser *p, yaml_node_t *node)
{
	return handle(p->cfg->tree, node);
}

static struct cfg_mark mark_of(const yaml_node_t *node)
{
	struct cfg_mark m = { node->start_mark.line + 1, node->start_mark.column + 1 };

	return m;
}

static const char *scalar_of(const yaml_node_t *node)
{
	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

/* "key:" with nothing after it, or an explicit null. */
static bool is_null(const yaml_node_t *node)
{
	const char *s = scalar_of(node);

	return s && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
		!strcmp(s, "NULL"));
}

static yaml_node_t *map_get(struct parser *p, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		const char *k = scalar_of(yaml_document_get_node(p->doc, pair->key));

		if (k && !strcmp(k, key))
			return yaml_document_get_node(p->doc, pair->value);
	}
	return NULL;
}

/*
 * Walks MAP with TBL.  CTX names the mapping in messages ("nat",
 * "flow 'x'"); NULL is the top level.
 */
static void parse_map(struct parser *p, yaml_node_t *map, const struct key_handler *tbl,
		      unsigned int n, const char *ctx, void *obj)
{
	const char *sep = ctx ? ": " : "";
	yaml_node_pair_t *pair;
	unsigned int seen = 0; /* one bit per table entry: tables are short */

	if (config__key_hook)
		for (unsigned int i = 0; i < n; i++)
			config__key_hook(tbl, tbl[i].key);
	if (!ctx)
		ctx = "";
	if (!map || map->type != YAML_MAPPING_NODE) {
		cfg_error(p->errs, map, "%s%sexpected a mapping", ctx, sep);
		return;
	}
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *knode = yaml_document_get_node(p->doc, pair->key);
		yaml_node_t *val = yaml_document_get_node(p->doc, pair->value);
		const char *key = scalar_of(knode);
		unsigned int i;

		if (!key) {
			cfg_error(p->errs, knode, "%s%sexpected a scalar key", ctx, sep);
			continue;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(key, tbl[i].key))
				break;
		if (i == n) {
			cfg_error(p->errs, knode, "unknown key '%s' in %s", key,
				  *ctx ? ctx : "top level");
			continue;
		}
		if (seen & (1u << i)) {
			cfg_error(p->errs, knode, "%s%sduplicate key '%s'", ctx, sep, key);
			continue;
		}
		seen |= 1u << i;
		tbl[i].fn(p, &tbl[i], val, obj);
	}
	for (unsigned int i = 0; i < n; i++)
		if (tbl[i].required && !(seen & (1u << i)))
			cfg_error(p->errs, map, "%s%smissing key '%s'", ctx, sep, tbl[i].key);
}

typedef void item_fn(struct parser *p, yaml_node_t *item, void *obj);

/* Calls FN on each entry of SEQ, which must hold 1..MAX entries. */
static void walk_seq(struct parser *p, yaml_node_t *seq, const char *what, int max, item_fn *fn,
		     void *obj)
{
	yaml_node_item_t *it;
	int i = 0;

	if (!seq || seq->type != YAML_SEQUENCE_NODE) {
		cfg_error(p->errs, seq, "%s: expected a sequence", what);
		return;
	}
	if (seq->data.sequence.items.start == seq->data.sequence.items.top) {
		cfg_error(p->errs, seq, "%s: at least one entry is required", what);
		return;
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++, i++) {
		yaml_node_t *item = yaml_document_get_node(p->doc, *it);

		if (i == max) {
			cfg_error(p->errs, item, "%s: too many entries (max %d)", what, max);
			return;
		}
		fn(p, item, obj);
	}
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static void h_u32(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	const struct cfg_node *n = node_of(p, val);
	uint32_t v;

	if (get_u32(n, h->key, h->min, h->max, &v, p->errs))
		return;
	if (h->pow2 && !is_pow2(v)) {
		cfg_error(p->errs, val, "%s: %u is not a power of two", h->key, v);
		return;
	}
	*(uint32_t *)((char *)obj + h->off) = v;
}

static void h_pin_path(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct ferry_config *cfg = obj;
	const struct cfg_node *n = node_of(p, val);
	char path[sizeof(cfg->pin_path)];

	if (copy_text(n, h->key, path, sizeof(path), p->errs))
		return;
	if (path[0] != '/') {
		cfg_error(p->errs, val, "%s: '%s' is not an absolute path", h->key, path);
		return;
	}
	strcpy(cfg->pin_path, path);
}

/* Where out-of-tree services are loaded from; the loader checks ownership at start. */
static void h_service_dir(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			  void *obj)
{
	struct ferry_config *cfg = obj;
	const struct cfg_node *n = node_of(p, val);
	char path[sizeof(cfg->service_dir)];

	if (copy_text(n, h->key, path, sizeof(path), p->errs))
		return;
	if (path[0] != '/') {
		cfg_error(p->errs, val, "%s: '%s' is not an absolute path", h->key, path);
		return;
	}
	strcpy(cfg->service_dir, path);
}

/*
 * Where applications attach to `app` slots (daemon/control.c): an absolute
 * path that fits an AF_UNIX address (sun_path, NUL included).
 */
static void h_control_socket(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			     void *obj)
{
	struct ferry_config *cfg = obj;
	const struct cfg_node *n = node_of(p, val);
	char path[sizeof(cfg->control_socket)];

	if (copy_text(n, h->key, path, sizeof(path), p->errs))
		return;
	if (path[0] != '/' || !path[1] || path[strlen(path) - 1] == '/') {
		cfg_error(p->errs, val, "%s: '%s' is not an absolute path to a file", h->key,
			  path);
		return;
	}
	strcpy(cfg->control_socket, path);
}

/*
 * Who besides root and ferryd's own user may use ferryctl's admin ops on
 * the control socket (reload, sessions): a group, by name or number.
 */
static void h_control_group(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			    void *obj)
{
	struct ferry_config *cfg = obj;
	const struct cfg_node *n = node_of(p, val);
	char name[64], *end;
	struct group *gr;
	unsigned long v;

	if (copy_text(n, h->key, name, sizeof(name), p->errs))
		return;
	if (name[0] >= '0' && name[0] <= '9') {
		errno = 0;
		v = strtoul(name, &end, 10);
		if (errno || *end || v >= (gid_t)-1) {
			cfg_error(p->errs, val, "%s: '%s' is not a group id", h->key, name);
			return;
		}
		cfg->control_gid = (gid_t)v;
	} else {
		gr = getgrnam(name);
		if (!gr) {
			cfg_error(p->errs, val, "%s: no group '%s'", h->key, name);
			return;
		}
		cfg->control_gid = gr->gr_gid;
	}
	cfg->control_group_set = true;
}

/* A scalar that must be one of a few words, each standing for a value. */
/*
 * Reads the word at `val` into *out; reports "KEY: 'x' is not one of a, b, c"
 * with the table's own words, so the message never drifts from the table.
 */
static bool get_word(struct parser *p, const struct key_handler *h, yaml_node_t *val,
		     const struct cfg_word *words, size_t nr, int *out)
{
	const struct cfg_node *n = node_of(p, val);
	const char *s = get_text(n, h->key, p->errs);
	char list[128] = "";
	size_t len = 0;

	if (!s)
		return false;
	for (size_t i = 0; i < nr; i++) {
		if (!strcmp(s, words[i].name)) {
			*out = words[i].value;
			return true;
		}
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
					words[i].name);
		if (len >= sizeof(list))
			len = sizeof(list) - 1;
	}
	cfg_error(p->errs, val, "%s: '%s' is not one of %s", h->key, s, list);
	return false;
}

static void h_log_level(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct ferry_config *cfg = obj;
	const struct cfg_node *n = node_of(p, val);
	enum ferry_log_level level;
	const char *s = get_text(n, h->key, p->errs);

	if (!s)
		return;
	/* log__parse_level's names all fit cfg->log_level. */
	if (log__parse_level(s, &level)) {
		cfg_error(p->errs, val, "%s: '%s' is not one of error, warn, info, debug", h->key,
			  s);
		return;
	}
	snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", s);
}

/* `auto` or a count: lib/queues.h resolves and checks it against the interfaces at start. */
static void h_queues(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct ferry_config *cfg = obj;

	cfg->queues_mark = mark_of(val);
	if (val->type == YAML_SCALAR_NODE && !strcmp((const char *)val->data.scalar.value, "auto")) {
		cfg->queues_auto = true;
		return;
	}
	cfg->queues_auto = false;
	h_u32(p, &(struct key_handler){ .key = h->key, .off = offsetof(struct ferry_config, queues),
					 .min = h->min, .max = h->max }, val, obj);
}

static void h_unserved_queues(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			      void *obj)
{
	static const struct cfg_word words[] = {
		{ "refuse", CFG_UNSERVED_REFUSE },
		{ "kernel", CFG_UNSERVED_KERNEL },
	};
	struct ferry_config *cfg = obj;
	int v;

	if (get_word(p, h, val, words, ARRAY_SIZE(words), &v))
		cfg->unserved_queues = (enum cfg_unserved)v;
}

/* interfaces */

static void h_iface_name(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			 void *obj)
{
	struct cfg_iface *ifc = obj;
	const struct cfg_node *n = node_of(p, val);
	const char *s = get_text(n, "interface name", p->errs);

	if (!s)
		return;
	if (strlen(s) >= sizeof(ifc->name)) {
		cfg_error(p->errs, val, "interface name '%s' is too long (max %d characters)", s,
			  IF_NAMESIZE - 1);
		return;
	}
	/* The kernel's dev_valid_name() rules. */
	if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strpbrk(s, "/: \t\n")) {
		cfg_error(p->errs, val, "bad interface name '%s'", s);
		return;
	}
	strcpy(ifc->name, s);
}

static void h_xdp_mode(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	static const struct cfg_word modes[] = {
		{ "native", CFG_XDP_NATIVE },
		{ "native-only", CFG_XDP_NATIVE_ONLY },
		{ "skb", CFG_XDP_SKB },
	};
	struct cfg_iface *ifc = obj;
	int v;

	if (get_word(p, h, val, modes, ARRAY_SIZE(modes), &v))
		ifc->xdp_mode = (enum cfg_xdp_mode)v;
}

static void h_poll_mode(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			void *obj)
{
	static const struct cfg_word modes[] = {
		{ "interrupt", CFG_POLL_INTERRUPT },
		{ "busy-poll", CFG_POLL_BUSY },
		{ "spin", CFG_POLL_SPIN },
	};
	struct cfg_iface *ifc = obj;
	int v;

	if (get_word(p, h, val, modes, ARRAY_SIZE(modes), &v))
		ifc->poll_mode = (enum cfg_poll_mode)v;
}

static const struct key_handler iface_keys[] = {
	{ .key = "name", .fn = h_iface_name, .required = true },
	{ .key = "xdp_mode", .fn = h_xdp_mode },
	{ .key = "poll_mode", .fn = h_poll_mode },
	{ .key = "busy_poll_usecs",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_iface, busy_poll_usecs),
	  .min = 1,
	  .max = 10000 },
};

static void iface_item(struct parser *p, yaml_node_t *item, void *obj)
{
	struct ferry_config *cfg = obj;
	struct cfg_iface *ifc = &cfg->ifaces[cfg->nr_ifaces];
	yaml_node_t *name = map_get(p, item, "name");
	char ctx[64];

	memset(ifc, 0, sizeof(*ifc));
	ifc->mark = mark_of(item);
	ifc->busy_poll_usecs = 20;
	if (scalar_of(name))
		snprintf(ctx, sizeof(ctx), "interface '%s'", scalar_of(name));
	else
		snprintf(ctx, sizeof(ctx), "interface");
	parse_map(p, item, iface_keys, ARRAY_SIZE(iface_keys), ctx, ifc);
	/* A value that would silently do nothing is more likely a mistake. */
	if (ifc->poll_mode != CFG_POLL_BUSY && map_get(p, item, "busy_poll_usecs"))
		cfg_error(p->errs, map_get(p, item, "busy_poll_usecs"),
			  "%s: busy_poll_usecs applies only to poll_mode busy-poll", ctx);
	if (!ifc->name[0])
		return;
	for (int i = 0; i < cfg->nr_ifaces; i++) {
		if (!strcmp(cfg->ifaces[i].name, ifc->name)) {
			cfg_error(p->errs, name, "duplicate interface '%s' (first at line %u)",
				  ifc->name, cfg->ifaces[i].mark.line);
			return;
		}
	}
	cfg->nr_ifaces++;
}

static void h_interfaces(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			 void *obj)
{
	walk_seq(p, val, h->key, CFG_MAX_IFACES, iface_item, obj);
}

/* nat */

static void h_nat_ports(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct cfg_nat *nat = obj;
	const struct cfg_node *n = node_of(p, val);

	if (!get_port_range(n, h->key, &nat->ports, p->errs)) {
		p->nat_ports = val;
		nat->ports_mark = mark_of(val);
	}
}

static const struct key_handler nat_keys[] = {
	{ .key = "ports", .fn = h_nat_ports },
	{ .key = "max_sessions",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, max_sessions),
	  .min = 1,
	  .max = 16777216 },
	{ .key = "udp_timeout",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, udp_timeout_s),
	  .min = 1,
	  .max = 86400 },
	{ .key = "tcp_syn_timeout",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, tcp_syn_timeout_s),
	  .min = 1,
	  .max = 86400 },
	{ .key = "tcp_established_timeout",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, tcp_established_timeout_s),
	  .min = 1,
	  .max = 86400 },
	{ .key = "tcp_closing_timeout",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, tcp_closing_timeout_s),
	  .min = 1,
	  .max = 86400 },
	{ .key = "max_sessions_per_source",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, max_sessions_per_source),
	  .min = 0,
	  .max = 16777216 },
	{ .key = "offload_max_sessions",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_nat, offload_max_sessions),
	  .min = 0,
	  .max = 1048576 },
};

static void h_nat(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct ferry_config *cfg = obj;

	parse_map(p, val, nat_keys, ARRAY_SIZE(nat_keys), h->key, &cfg->nat);
}

/* umem */

static void h_frame_size(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			 void *obj)
{
	struct cfg_umem *umem = obj;
	const struct cfg_node *n = node_of(p, val);
	uint32_t v;

	if (get_u32(n, h->key, 0, UINT32_MAX, &v, p->errs))
		return;
	/* XDP needs a frame to hold a page's worth of packet plus headroom. */
	if (v != 2048 && v != 4096) {
		cfg_error(p->errs, val, "%s: must be 2048 or 4096, got %u", h->key, v);
		return;
	}
	umem->frame_size = v;
}

static const struct key_handler umem_keys[] = {
	{ .key = "frames",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_umem, frames),
	  .min = 512,
	  .max = 1048576,
	  .pow2 = true },
	{ .key = "frame_size", .fn = h_frame_size },
	{ .key = "ring_size",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_umem, ring_size),
	  .min = 64,
	  .max = 16384,
	  .pow2 = true },
	{ .key = "batch",
	  .fn = h_u32,
	  .off = offsetof(struct cfg_umem, batch),
	  .min = 1,
	  .max = 256 },
};

static void h_umem(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct ferry_config *cfg = obj;
	struct cfg_umem *u = &cfg->umem;
	int before = p->errs->count;
	yaml_node_t *at;

	parse_map(p, val, umem_keys, ARRAY_SIZE(umem_keys), h->key, u);
	/* A rejected value kept its default; comparing with it would only add noise. */
	if (p->errs->count != before)
		return;
	/*
	 * The fill ring and the RX ring each hold up to ring_size frames at
	 * once; with fewer frames than both, the worker starves its own RX.
	 */
	if (u->ring_size * 2 > u->frames) {
		at = map_get(p, val, "ring_size") ?: map_get(p, val, "frames");
		cfg_error(p->errs, at, "umem: ring_size %u needs at least %u frames, have %u",
			  u->ring_size, u->ring_size * 2, u->frames);
	}
	if (u->batch > u->ring_size) {
		at = map_get(p, val, "batch") ?: map_get(p, val, "ring_size");
		cfg_error(p->errs, at, "umem: batch %u is larger than ring_size %u", u->batch,
			  u->ring_size);
	}
}

/* flows */

struct flow_ctx {
	struct cfg_flow *flow;
	char ctx[64]; /* "flow 'name'" for messages */
};

struct match_ctx {
	struct cfg_match *m;
	yaml_node_t *dst, *src; /* set when valid */
};

static void h_flow_name(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			void *obj)
{
	struct flow_ctx *fc = obj;
	const struct cfg_node *n = node_of(p, val);
	char name[CFG_NAME_LEN];

	if (copy_text(n, "flow name", name, sizeof(name), p->errs))
		return;
	/* Names end up in ferryctl output and pin names: keep them plain. */
	if (!name[0] || strspn(name, NAME_CHARS) != strlen(name)) {
		cfg_error(p->errs, val, "bad flow name '%s' (use A-Z a-z 0-9 _ . -)", name);
		return;
	}
	strcpy(fc->flow->name, name);
}

static void h_protocol(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	static const struct cfg_word protos[] = {
		{ "udp", IPPROTO_UDP },
		{ "tcp", IPPROTO_TCP },
	};
	struct match_ctx *mc = obj;
	int v;

	if (get_word(p, h, val, protos, ARRAY_SIZE(protos), &v))
		mc->m->l4_proto = (uint8_t)v;
}

/* Host bits are accepted but cleared, so equal prefixes compare equal. */
static void mask_prefix(struct cfg_prefix *pfx)
{
	unsigned int len = pfx->family == AF_INET ? 4 : 16;

	for (unsigned int i = 0; i < len; i++) {
		unsigned int bits = i * 8;

		if (bits >= pfx->plen)
			pfx->addr.bytes[i] = 0;
		else if (pfx->plen - bits < 8)
			pfx->addr.bytes[i] &= (uint8_t)(0xff << (8 - (pfx->plen - bits)));
	}
}

static void h_match_prefix(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			   void *obj)
{
	struct match_ctx *mc = obj;
	const struct cfg_node *n = node_of(p, val);
	bool dst = !strcmp(h->key, "destination");
	struct cfg_prefix *pfx = dst ? &mc->m->dst : &mc->m->src;

	if (get_prefix(n, h->key, pfx, p->errs))
		return;
	mask_prefix(pfx);
	if (dst)
		mc->dst = val;
	else
		mc->src = val;
}

static void h_match_port(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			 void *obj)
{
	struct match_ctx *mc = obj;
	const struct cfg_node *n = node_of(p, val);

	get_port_range(n, h->key, &mc->m->dport, p->errs);
}

static const struct key_handler match_keys[] = {
	{ .key = "protocol", .fn = h_protocol, .required = true },
	{ .key = "destination", .fn = h_match_prefix, .required = true },
	{ .key = "port", .fn = h_match_port, .required = true },
	{ .key = "source", .fn = h_match_prefix },
};

static void h_match(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct flow_ctx *fc = obj;
	struct match_ctx mc = { .m = &fc->flow->match };
	char ctx[80];

	snprintf(ctx, sizeof(ctx), "%s match", fc->ctx);
	parse_map(p, val, match_keys, ARRAY_SIZE(match_keys), ctx, &mc);
	if (mc.dst && mc.src && mc.m->src.family != mc.m->dst.family)
		cfg_error(p->errs, mc.src, "%s: source and destination are of different families",
			  ctx);
}

/*
 * Service arguments are the service's business, except that YAML keys are
 * unique at every level, not only the top one: a service would silently
 * take one of two values, and a reload, comparing flows key by key, would
 * see an identical flow as changed and restart it.  The walk is bounded in
 * depth and in nodes visited: an alias may name a node that contains it,
 * or expand to an exponential tree ("billion laughs"), and every later walk
 * of the arguments (services, reload's comparison) would then never end.
 */
#define ARGS_MAX_DEPTH 32
#define ARGS_MAX_NODES 65536

struct args_walk {
	struct parser *p;
	unsigned int nodes;
};

static bool check_args(struct args_walk *aw, yaml_node_t *node, unsigned int depth)
{
	struct parser *p = aw->p;
	yaml_node_pair_t *a, *b;

	if (!node)
		return true;
	if (depth > ARGS_MAX_DEPTH || ++aw->nodes > ARGS_MAX_NODES) {
		cfg_error(p->errs, node,
			  "service arguments nested deeper than %d levels or over %d nodes "
			  "(an alias to an enclosing node?)",
			  ARGS_MAX_DEPTH, ARGS_MAX_NODES);
		return false;
	}
	if (node->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = node->data.sequence.items.start;
		     i < node->data.sequence.items.top; i++)
			if (!check_args(aw, yaml_document_get_node(p->doc, *i), depth + 1))
				return false;
		return true;
	}
	if (node->type != YAML_MAPPING_NODE)
		return true;
	for (b = node->data.mapping.pairs.start; b < node->data.mapping.pairs.top; b++) {
		yaml_node_t *kb = yaml_document_get_node(p->doc, b->key);

		if (!check_args(aw, kb, depth + 1) ||
		    !check_args(aw, yaml_document_get_node(p->doc, b->value), depth + 1))
			return false;
		if (!scalar_of(kb))
			continue;
		for (a = node->data.mapping.pairs.start; a < b; a++) {
			const char *ka = scalar_of(yaml_document_get_node(p->doc, a->key));

			if (ka && !strcmp(ka, scalar_of(kb))) {
				cfg_error(p->errs, kb, "duplicate key '%s'", ka);
				break;
			}
		}
	}
	return true;
}

static void service_item(struct parser *p, yaml_node_t *item, void *obj)
{
	struct flow_ctx *fc = obj;
	struct cfg_flow *f = fc->flow;
	struct cfg_service *svc = &f->services[f->nr_services];
	struct cfg_tree *t = p->cfg->tree;
	yaml_node_t *name = NULL, *args = NULL;
	struct cfg_node *an;
	struct strbuf cs = {};
	const char *s;

	if (item->type == YAML_SCALAR_NODE) {
		name = item;
	} else if (item->type == YAML_MAPPING_NODE &&
		   item->data.mapping.pairs.top - item->data.mapping.pairs.start == 1) {
		name = yaml_document_get_node(p->doc, item->data.mapping.pairs.start->key);
		args = yaml_document_get_node(p->doc, item->data.mapping.pairs.start->value);
	} else {
		cfg_error(p->errs, item,
			  "%s: a service is a name or a one-key mapping 'name: {arguments}'",
			  fc->ctx);
		return;
	}
	s = scalar_of(name);
	if (!s) {
		cfg_error(p->errs, name, "%s: expected a scalar service name", fc->ctx);
		return;
	}
	if (!*s || strlen(s) >= sizeof(svc->name) || strspn(s, NAME_CHARS) != strlen(s)) {
		cfg_error(p->errs, name, "%s: bad service name '%s'", fc->ctx, s);
		return;
	}
	memset(svc, 0, sizeof(*svc));
	strcpy(svc->name, s);
	svc->mark = mark_of(name);
	an = &t->none[p->cfg->nr_flows][f->nr_services];
	if (args && !is_null(args)) {
		if (args->type != YAML_MAPPING_NODE) {
			cfg_error(p->errs, args, "%s: service '%s': expected a mapping", fc->ctx,
				  s);
			return;
		}
		if (!check_args(&(struct args_walk){ .p = p }, args, 0))
			return;
		an = (struct cfg_node *)node_of(p, args);
		/* Written without arguments or with none ({}): the same meaning. */
		if (args->data.mapping.pairs.top != args->data.mapping.pairs.start)
			canon(p->doc, args, &cs);
	}
	an->entry = svc->mark;
	/* An alias may give two services one node: keep it as the tree then. */
	an->shared = an->service_args;
	an->service_args = true;
	free(an->canon);
	an->canon = cs.broken ? NULL : cs.s;
	if (cs.broken)
		free(cs.s);
	svc->args = an;
	f->nr_services++;
}

static void h_services(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	struct flow_ctx *fc = obj;
	char what[80];

	snprintf(what, sizeof(what), "%s services", fc->ctx);
	walk_seq(p, val, what, CFG_MAX_SERVICES, service_item, fc);
}

static void h_on_failure(struct parser *p, const struct key_handler *h, yaml_node_t *val,
			 void *obj)
{
	static const struct cfg_word actions[] = {
		{ "pass", CFG_ON_FAILURE_PASS },
		{ "drop", CFG_ON_FAILURE_DROP },
	};
	struct flow_ctx *fc = obj;
	int v;

	if (get_word(p, h, val, actions, ARRAY_SIZE(actions), &v))
		fc->flow->on_failure = (enum cfg_on_failure)v;
}

static void h_offload(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	static const struct cfg_word modes[] = {
		{ "auto", CFG_OFFLOAD_AUTO },
		{ "off", CFG_OFFLOAD_OFF },
	};
	struct flow_ctx *fc = obj;
	int v;

	if (get_word(p, h, val, modes, ARRAY_SIZE(modes), &v))
		fc->flow->offload = (enum cfg_offload)v;
}

static const struct key_handler flow_keys[] = {
	{ .key = "name", .fn = h_flow_name, .required = true },
	{ .key = "match", .fn = h_match, .required = true },
	{ .key = "services", .fn = h_services, .required = true },
	{ .key = "on_failure", .fn = h_on_failure },
	{ .key = "offload", .fn = h_offload },
};

static void flow_item(struct parser *p, yaml_node_t *item, void *obj)
{
	struct ferry_config *cfg = obj;
	struct flow_ctx fc = { .flow = &cfg->flows[cfg->nr_flows] };
	yaml_node_t *name = map_get(p, item, "name");
	struct cfg_flow *f = fc.flow;

	memset(f, 0, sizeof(*f));
	f->mark = mark_of(item);
	if (scalar_of(name))
		snprintf(fc.ctx, sizeof(fc.ctx), "flow '%s'", scalar_of(name));
	else
		snprintf(fc.ctx, sizeof(fc.ctx), "flow");
	parse_map(p, item, flow_keys, ARRAY_SIZE(flow_keys), fc.ctx, &fc);
	if (!f->name[0])
		return;
	for (int i = 0; i < cfg->nr_flows; i++) {
		if (!strcmp(cfg->flows[i].name, f->name)) {
			cfg_error(p->errs, name, "duplicate flow name '%s' (first at line %u)",
				  f->name, cfg->flows[i].mark.line);
			return;
		}
	}
	cfg->nr_flows++;
}

static void h_flows(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	walk_seq(p, val, h->key, CFG_MAX_FLOWS, flow_item, obj);
}

/* cpus */

static void cpu_item(struct parser *p, yaml_node_t *item, void *obj)
{
	struct ferry_config *cfg = obj;
	const struct cfg_node *n = node_of(p, item);
	uint32_t cpu;

	/* The CPU's existence is checked when the worker is pinned, at start-up. */
	if (get_u32(n, "cpus", 0, CPU_SETSIZE - 1, &cpu, p->errs))
		return;
	cfg->cpus[cfg->nr_cpus++] = (uint16_t)cpu;
}

static void h_cpus(struct parser *p, const struct key_handler *h, yaml_node_t *val, void *obj)
{
	walk_seq(p, val, h->key, CFG_MAX_CPUS, cpu_item, obj);
}

static const struct key_handler root_keys[] = {
	{ .key = "pin_path", .fn = h_pin_path },
	{ .key = "log_level", .fn = h_log_level },
	{ .key = "service_dir", .fn = h_service_dir },
	{ .key = "control_socket", .fn = h_control_socket },
	{ .key = "control_group", .fn = h_control_group },
	{ .key = "queues", .fn = h_queues, .min = 1, .max = MAX_QUEUES },
	{ .key = "unserved_queues", .fn = h_unserved_queues },
	{ .key = "cpus", .fn = h_cpus },
	{ .key = "worker_priority",
	  .fn = h_u32,
	  .off = offsetof(struct ferry_config, worker_priority),
	  .min = 0,
	  .max = 99 },
	{ .key = "coalesce_usecs",
	  .fn = h_u32,
	  .off = offsetof(struct ferry_config, coalesce_usecs),
	  .min = 0,
	  .max = 1000 },
	{ .key = "interfaces", .fn = h_interfaces, .required = true },
	{ .key = "nat", .fn = h_nat },
	{ .key = "umem", .fn = h_umem },
	{ .key = "flows", .fn = h_flows, .required = true },
};

/*
 * An application attaches to an `app` slot by its name (daemon/control.c),
 * so a name must be unique across all flows.  The service checks the rest
 * of its arguments (services/svc_app.c); a name that is not a scalar is
 * left to it.
 */
static void check_app_names(struct parser *p)
{
	const struct ferry_config *cfg = p->cfg;

	for (int fi = 0; fi < cfg->nr_flows; fi++) {
		const struct cfg_flow *f = &cfg->flows[fi];

		for (int si = 0; si < f->nr_services; si++) {
			const struct cfg_node *n = f->services[si].args, *m;
			const yaml_node_t *y;

			if (strcmp(f->services[si].name, "app"))
				continue;
			n = cfg_map_get(n, "name");
			if (!n || !n->node || n->node->type != YAML_SCALAR_NODE)
				continue;
			y = n->node;
			for (int fj = 0; fj <= fi; fj++) {
				const struct cfg_flow *g = &cfg->flows[fj];
				int end = fj == fi ? si : g->nr_services;

				for (int sj = 0; sj < end; sj++) {
					if (strcmp(g->services[sj].name, "app"))
						continue;
					m = cfg_map_get(g->services[sj].args, "name");
					if (!m || !m->node || m->node->type != YAML_SCALAR_NODE ||
					    strcmp((const char *)m->node->data.scalar.value,
						   (const char *)y->data.scalar.value))
						continue;
					cfg_node_error(p->errs, n,
						       "app: name '%s' is taken already by flow '%s' (line %u)",
						       (const char *)y->data.scalar.value, g->name,
						       g->services[sj].mark.line);
					goto next;
				}
			}
next:;
		}
	}
}

/* `key`, set at the top level, needs every interface in poll_mode interrupt. */
static void require_interrupt_mode(struct parser *p, yaml_node_t *root, const char *key,
				   const char *why)
{
	const struct ferry_config *cfg = p->cfg;

	for (int i = 0; i < cfg->nr_ifaces; i++) {
		const struct cfg_iface *ifc = &cfg->ifaces[i];

		if (ifc->poll_mode == CFG_POLL_INTERRUPT)
			continue;
		cfg_error(p->errs, map_get(p, root, key),
			  "%s: needs poll_mode interrupt, but interface '%s' (line %u) is %s: %s",
			  key, ifc->name, ifc->mark.line,
			  ifc->poll_mode == CFG_POLL_BUSY ? "busy-poll" : "spin", why);
		return;
	}
}

static void parse_root(struct parser *p, yaml_node_t *root)
{
	struct ferry_config *cfg = p->cfg;
	const struct cfg_port_range *r = &cfg->nat.ports;

	parse_map(p, root, root_keys, ARRAY_SIZE(root_keys), NULL, cfg);
	check_app_names(p);
	/*
	 * A real-time worker that never sleeps starves whatever else runs on
	 * its CPU, the kernel's receive processing (a threaded NAPI, ksoftirqd)
	 * included, and with it the very packets it waits for.  Only a worker
	 * that sleeps when its rings are empty may outrank them.
	 */
	if (cfg->worker_priority)
		require_interrupt_mode(p, root, "worker_priority",
				       "a real-time worker that never sleeps starves the kernel's "
				       "receive processing on its CPU");
	/* A worker that never sleeps never naps either: the key would do nothing. */
	if (cfg->coalesce_usecs)
		require_interrupt_mode(p, root, "coalesce_usecs",
				       "only a worker that sleeps when idle naps");
	/* Each worker allocates NAT ports from its own slice of the range. */
	if (p->nat_ports && !cfg->queues_auto && (uint32_t)(r->hi - r->lo) + 1 < cfg->queues)
		cfg_error(p->errs, p->nat_ports,
			  "ports: range %u-%u has fewer ports than queues (%u)", r->lo, r->hi,
			  cfg->queues);
}

/* ---- loading ---- */

static void defaults(struct ferry_config *cfg, const char *name)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->file, sizeof(cfg->file), "%s", name);
	snprintf(cfg->pin_path, sizeof(cfg->pin_path), "%s", DEFAULT_PIN_PATH);
	snprintf(cfg->service_dir, sizeof(cfg->service_dir), "%s", DEFAULT_SERVICE_DIR);
	snprintf(cfg->control_socket, sizeof(cfg->control_socket), "%s", FERRY_CONTROL_SOCKET);
	/* Resolved at start (lib/queues.h); one until then, e.g. for --check. */
	cfg->queues = 1;
	cfg->queues_auto = true;
	/*
	 * Linux's default ephemeral range is 32768-60999: the rest of IANA's
	 * dynamic range (49152-65535), where no registered service listens.
	 */
	cfg->nat.ports.lo = CFG_NAT_PORTS_DEFAULT_LO;
	cfg->nat.ports.hi = CFG_NAT_PORTS_DEFAULT_HI;
	cfg->nat.max_sessions = 65536;
	cfg->nat.udp_timeout_s = 60;
	cfg->nat.tcp_syn_timeout_s = 30;
	cfg->nat.tcp_established_timeout_s = 7440;
	cfg->nat.tcp_closing_timeout_s = 30;
	cfg->nat.max_sessions_per_source = 4096;
	cfg->nat.offload_max_sessions = 32768;
	cfg->umem.frames = 8192;
	cfg->umem.frame_size = 4096;
	cfg->umem.ring_size = 2048;
	cfg->umem.batch = 64;
}

static void syntax_error(struct cfg_errors *errs, const char *file, const yaml_parser_t *parser)
{
	const yaml_mark_t *mark = &parser->problem_mark;

	if (parser->error == YAML_MEMORY_ERROR) {
		report(errs, file, NULL, "out of memory");
		return;
	}
	/* The reader reports a byte offset, not a mark: use where it stopped. */
	if (parser->error == YAML_READER_ERROR)
		mark = &parser->mark;
	if (parser->context)
		report(errs, file, mark, "syntax error: %s (%s)",
		       parser->problem ?: "unknown problem", parser->context);
	else
		report(errs, file, mark, "syntax error: %s", parser->problem ?: "unknown problem");
}

/* One handle per node of the document just loaded. */
static int init_tree(struct cfg_tree *t)
{
	t->nr = t->doc.nodes.top - t->doc.nodes.start;
	t->nodes = calloc(t->nr ?: 1, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	for (size_t i = 0; i < t->nr; i++) {
		t->nodes[i].tree = t;
		t->nodes[i].node = t->doc.nodes.start + i;
	}
	t->null.tree = t;
	for (int f = 0; f < CFG_MAX_FLOWS; f++)
		for (int s = 0; s < CFG_MAX_SERVICES; s++)
			t->none[f][s].tree = t;
	return 0;
}

static int load_buf(struct ferry_config *cfg, const unsigned char *buf, size_t len,
		    struct cfg_errors *errs)
{
	struct parser p = { .cfg = cfg, .errs = errs };
	int before = errs->count;
	yaml_document_t extra;
	yaml_parser_t parser;
	yaml_node_t *root;

	cfg->tree = calloc(1, sizeof(*cfg->tree));
	if (!cfg->tree || !yaml_parser_initialize(&parser)) {
		free(cfg->tree);
		cfg->tree = NULL;
		report(errs, cfg->file, NULL, "out of memory");
		return -ENOMEM;
	}
	p.doc = &cfg->tree->doc;
	snprintf(cfg->tree->file, sizeof(cfg->tree->file), "%s", cfg->file);
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, p.doc)) {
		syntax_error(errs, cfg->file, &parser);
		yaml_parser_delete(&parser);
		config__free(cfg);
		return -EINVAL;
	}
	cfg->tree->doc_loaded = true;
	if (init_tree(cfg->tree)) {
		yaml_parser_delete(&parser);
		report(errs, cfg->file, NULL, "out of memory");
		config__free(cfg);
		return -ENOMEM;
	}
	/* A second document would otherwise be ignored without a word. */
	if (!yaml_parser_load(&parser, &extra)) {
		syntax_error(errs, cfg->file, &parser);
	} else {
		root = yaml_document_get_root_node(&extra);
		if (root)
			report(errs, cfg->file, &root->start_mark,
			       "only one YAML document is allowed");
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&parser);

	root = yaml_document_get_root_node(p.doc);
	if (!root) {
		yaml_mark_t start = { 0, 0, 0 };

		report(errs, cfg->file, &start, "empty configuration");
	} else {
		parse_root(&p, root);
	}
	if (errs->count != before) {
		config__free(cfg);
		return -EINVAL;
	}
	return 0;
}

int config__load_string(struct ferry_config *cfg, const char *name, const char *yaml,
			struct cfg_errors *errs)
{
	struct cfg_errors local = { 0 };

	if (!errs)
		errs = &local;
	defaults(cfg, name);
	errs->file = cfg->file;
	return load_buf(cfg, (const unsigned char *)yaml, strlen(yaml), errs);
}

int config__load(struct ferry_config *cfg, const char *file, struct cfg_errors *errs)
{
	struct cfg_errors local = { 0 };
	char *buf = NULL, *nbuf;
	size_t len = 0, size = 0, n;
	FILE *f;
	int err;

	if (!errs)
		errs = &local;
	defaults(cfg, file);
	errs->file = cfg->file;
	f = fopen(file, "re");
	if (!f) {
		err = -errno;
		report(errs, cfg->file, NULL, "cannot open: %s", strerror(-err));
		return err;
	}
	for (;;) {
		if (len == size) {
			size = size ? size * 2 : 16384;
			nbuf = realloc(buf, size);
			if (!nbuf) {
				err = -ENOMEM;
				report(errs, cfg->file, NULL, "out of memory");
				goto out;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, size - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		/* fread() keeps errno from the failing read(), e.g. EISDIR. */
		err = errno ? -errno : -EIO;
		report(errs, cfg->file, NULL, "cannot read: %s", strerror(-err));
		goto out;
	}
	err = load_buf(cfg, (const unsigned char *)buf, len, errs);
out:
	free(buf);
	fclose(f);
	return err;
}

/*
 * A loaded config is moved, never copied: it owns its tree, whose nodes the
 * services' argument handles point at; the tree itself stays where it is.
 */
void config__move(struct ferry_config *dst, struct ferry_config *src)
{
	memcpy(dst, src, sizeof(*dst));
	src->tree = NULL;
	src->nr_flows = 0;
}

void config__free(struct ferry_config *cfg)
{
	struct cfg_tree *t = cfg->tree;

	if (!t)
		return;
	for (size_t i = 0; i < t->nr; i++)
		free(t->nodes[i].canon);
	for (int f = 0; f < CFG_MAX_FLOWS; f++)
		for (int s = 0; s < CFG_MAX_SERVICES; s++)
			free(t->none[f][s].canon);
	free(t->nodes);
	if (t->doc_loaded)
		yaml_document_delete(&t->doc);
	free(t);
	cfg->tree = NULL;
	/* The services' argument handles pointed into the tree. */
	for (int i = 0; i < cfg->nr_flows; i++)
		for (int j = 0; j < cfg->flows[i].nr_services; j++)
			cfg->flows[i].services[j].args = NULL;
}

static bool prefix_equal(const struct cfg_prefix *a, const struct cfg_prefix *b)
{
	return a->family == b->family && a->plen == b->plen &&
	       !memcmp(a->addr.bytes, b->addr.bytes, sizeof(a->addr.bytes));
}

static bool args_equal(const struct cfg_node *a, const struct cfg_node *b)
{
	const char *ca = a && a->canon ? a->canon : "", *cb = b && b->canon ? b->canon : "";

	return !strcmp(ca, cb);
}

bool config__flow_equal(const struct cfg_flow *a, const struct cfg_flow *b)
{
	const struct cfg_match *ma = &a->match, *mb = &b->match;

	if (strcmp(a->name, b->name) || ma->l4_proto != mb->l4_proto ||
	    !prefix_equal(&ma->dst, &mb->dst) || !prefix_equal(&ma->src, &mb->src) ||
	    ma->dport.lo != mb->dport.lo || ma->dport.hi != mb->dport.hi ||
	    a->on_failure != b->on_failure || a->offload != b->offload ||
	    a->nr_services != b->nr_services)
		return false;
	for (int i = 0; i < a->nr_services; i++)
		if (strcmp(a->services[i].name, b->services[i].name) ||
		    !args_equal(a->services[i].args, b->services[i].args))
			return false;
	return true;
}

/* What config__flow_equal() found different, first difference only, for reload's report. */
const char *config__flow_change(const struct cfg_flow *a, const struct cfg_flow *b, char *buf,
				size_t len)
{
	const struct cfg_match *ma = &a->match, *mb = &b->match;

	if (ma->l4_proto != mb->l4_proto)
		return "match: protocol";
	if (!prefix_equal(&ma->dst, &mb->dst))
		return "match: destination";
	if (ma->dport.lo != mb->dport.lo || ma->dport.hi != mb->dport.hi)
		return "match: port";
	if (!prefix_equal(&ma->src, &mb->src))
		return "match: source";
	if (a->on_failure != b->on_failure)
		return "on_failure";
	if (a->offload != b->offload)
		return "offload";
	if (a->nr_services != b->nr_services)
		return "services: the chain";
	for (int i = 0; i < a->nr_services; i++) {
		if (strcmp(a->services[i].name, b->services[i].name)) {
			snprintf(buf, len, "services: %s replaces %s", b->services[i].name,
				 a->services[i].name);
			return buf;
		}
		if (!args_equal(a->services[i].args, b->services[i].args)) {
			snprintf(buf, len, "services: %s's arguments", b->services[i].name);
			return buf;
		}
	}
	return strcmp(a->name, b->name) ? "name" : NULL;
}

/* Only some services' arguments differ: see config.h. */
bool config__flow_args_differ(const struct cfg_flow *a, const struct cfg_flow *b,
			      uint32_t *services)
{
	const struct cfg_match *ma = &a->match, *mb = &b->match;

	*services = 0;
	if (strcmp(a->name, b->name) || ma->l4_proto != mb->l4_proto ||
	    !prefix_equal(&ma->dst, &mb->dst) || !prefix_equal(&ma->src, &mb->src) ||
	    ma->dport.lo != mb->dport.lo || ma->dport.hi != mb->dport.hi ||
	    a->on_failure != b->on_failure || a->offload != b->offload ||
	    a->nr_services != b->nr_services)
		return false;
	for (int i = 0; i < a->nr_services; i++) {
		if (strcmp(a->services[i].name, b->services[i].name))
			return false;
		if (!args_equal(a->services[i].args, b->services[i].args))
			*services |= 1u << i;
	}
	return *services != 0;
}

const struct cfg_flow *config__find_flow(const struct ferry_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nr_flows; i++)
		if (!strcmp(cfg->flows[i].name, name))
			return &cfg->flows[i];
	return NULL;
}

/* ---- nat.ports against the host's own ports ---- */

/* The host's local port range, as net.ipv4.ip_local_port_range has it: "LO HI". */
static int read_local_range(const char *path, unsigned int *lo, unsigned int *hi)
{
	FILE *f = fopen(path, "re");
	int n, err;

	if (!f)
		return -errno;
	n = fscanf(f, "%u %u", lo, hi);
	err = n == 2 && *lo <= *hi && *hi <= 65535 ? 0 : -EINVAL;
	fclose(f);
	return err;
}

/*
 * The first port in [lo, hi] that a socket in the /proc/net table `path`
 * (tcp, tcp6, udp, udp6) has as its local port: for TCP only listeners
 * (state 0A), for UDP any bound socket.  Returns the port, 0 when there is
 * none, -ENOENT without the table (no IPv6), another -errno when unreadable.
 */
static int find_bound_port(const char *path, bool tcp, unsigned int lo, unsigned int hi)
{
	char line[512];
	int found = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* The first line names the columns. */
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned int port, state;

		if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &port, &state) != 2)
			continue;
		if (tcp && state != 0x0a)
			continue;
		if (port >= lo && port <= hi)
			found = (int)port;
	}
	fclose(f);
	return found;
}

int config__check_host_ports(const struct ferry_config *cfg, const char *local_range_path,
			     const char *proc_net_dir, struct cfg_errors *errs)
{
	static const struct {
		const char *table;
		uint8_t proto;
		const char *what;
	} tables[] = {
		{ "udp", IPPROTO_UDP, "UDP" },
		{ "udp6", IPPROTO_UDP, "UDP" },
		{ "tcp", IPPROTO_TCP, "TCP" },
		{ "tcp6", IPPROTO_TCP, "TCP" },
	};
	const struct cfg_port_range *r = &cfg->nat.ports;
	unsigned int llo, lhi;
	int err, ret = 0;
	char path[512];

	err = read_local_range(local_range_path, &llo, &lhi);
	if (err) {
		cfg_mark_error(errs, cfg->nat.ports_mark, "nat.ports: cannot read %s: %s",
			       local_range_path, strerror(-err));
		return err;
	}
	/* The kernel picks its own connections' source ports there: their replies would be ferry's. */
	if (r->lo <= lhi && r->hi >= llo) {
		cfg_mark_error(errs, cfg->nat.ports_mark,
			       "nat.ports: range %u-%u overlaps this host's local port range %u-%u "
			       "(net.ipv4.ip_local_port_range): ferry would take the replies of the "
			       "host's own connections; choose a range outside it",
			       r->lo, r->hi, llo, lhi);
		ret = -EADDRINUSE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		bool used = false;
		int port;

		for (int f = 0; f < cfg->nr_flows; f++)
			used |= cfg->flows[f].match.l4_proto == tables[i].proto;
		if (!used)
			continue;
		snprintf(path, sizeof(path), "%s/%s", proc_net_dir, tables[i].table);
		port = find_bound_port(path, tables[i].proto == IPPROTO_TCP, r->lo, r->hi);
		if (port == -ENOENT)
			continue;
		if (port < 0) {
			cfg_mark_error(errs, cfg->nat.ports_mark, "nat.ports: cannot read %s: %s",
				       path, strerror(-port));
			return port;
		}
		if (port) {
			cfg_mark_error(errs, cfg->nat.ports_mark,
				       "nat.ports: range %u-%u contains %s port %d, which a socket of "
				       "this host %s: ferry would take its packets; choose a range "
				       "without it",
				       r->lo, r->hi, tables[i].what, port,
				       tables[i].proto == IPPROTO_TCP ? "listens on" : "is bound to");
			ret = -EADDRINUSE;
		}
	}
	return ret;
}
