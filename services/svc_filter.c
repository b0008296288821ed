// SPDX-License-Identifier: BSD-2-Clause
/*
 * filter: an access list on a flow's packets.
 *
 *   filter:
 *     deny:  [{source: 198.18.7.0/24}]
 *     allow: [{source_port: 1024-65535, payload: {offset: 0, mask: "0xff00", value: "0x1200"}}]
 *     default: deny
 *
 * A rule matches when every key it gives matches: source and destination
 * prefixes, source and destination port ranges, and a payload match (the
 * payload bytes at `offset`, ANDed with `mask`, equal `value`; a payload too
 * short to hold them does not match).  A rule without keys matches every
 * packet.  Rules are tried in the order they are written, across both lists
 * (the list written first is tried first), and the first match decides;
 * when none matches, `default` does (allow when not given).  Denied packets
 * are dropped as "filtered".
 *
 * A flow's chain runs for both directions.  By default only the clients'
 * packets are judged: the upstream's replies belong to what an earlier
 * allowed packet started, so they pass unchecked (counted as `skipped`).
 * `direction: reply` or `both` judges those instead or too; rules then see
 * the reply's own addresses (the upstream as source).  An ICMP error that
 * forward relays has no ports and no payload of its own: port and payload
 * rules never match it.
 *
 * The rules are compiled at configure() into fixed arrays: a match is a few
 * masked word compares and a bounded byte compare, with no allocation or
 * lock in process().  Per-worker state holds only counters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "service.h"
#include "svc_args.h"

#define FILTER_MAX_RULES 64 /* allow and deny together */
#define FILTER_MAX_MATCH 16 /* bytes of one payload match */
#define FILTER_MAX_OFFSET 65535

struct filter_rule {
	bool allow;
	uint8_t family; /* 4 or 6 when an address is given, 0: either */
	bool has_src, has_dst, has_payload;
	uint32_t src_mask[4], src[4]; /* network order words, pre-masked */
	uint32_t dst_mask[4], dst[4];
	struct cfg_port_range sport, dport; /* 0/0: any */
	uint16_t payload_off;
	uint8_t payload_len;
	uint8_t mask[FILTER_MAX_MATCH];
	uint8_t value[FILTER_MAX_MATCH];
};

struct filter_conf {
	enum svc_dir dirs;
	bool default_allow;
	uint32_t nr_rules;
	struct filter_rule rules[FILTER_MAX_RULES];
};

enum filter_counter {
	FILTER_ALLOWED,	  /* judged packets let through, by a rule or the default */
	FILTER_DENIED,	  /* judged packets dropped as filtered */
	FILTER_DEFAULTED, /* of both, those no rule matched */
	FILTER_SKIPPED,	  /* packets of a direction not judged (by default the replies) */
};

struct filter_worker {
	uint64_t counters[FERRY_SERVICE_COUNTERS];
};

/* The prefix as masked network-order words, so a match is four ANDs. */
static void prefix_words(const struct cfg_prefix *p, uint32_t mask[4], uint32_t addr[4])
{
	uint8_t m[16] = {0}, a[16] = {0};
	unsigned int len = p->family == AF_INET ? 4 : 16;

	for (unsigned int i = 0; i < len; i++) {
		unsigned int bits = p->plen > i * 8 ? p->plen - i * 8 : 0;

		m[i] = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
		a[i] = p->addr.bytes[i] & m[i];
	}
	memcpy(mask, m, 16);
	memcpy(addr, a, 16);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "0x1200" or "1200": 1..FILTER_MAX_MATCH bytes, two digits each. */
static int get_hex(const struct cfg_node *n, const char *what, uint8_t *out, uint8_t *len,
		   struct cfg_errors *errs)
{
	char s[2 * FILTER_MAX_MATCH + 8];
	const char *d;
	size_t nd;

	if (cfg_get_string(n, s, sizeof(s), errs))
		return -EINVAL;
	d = s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? s + 2 : s;
	nd = strlen(d);
	if (!nd || nd % 2 || nd > 2 * FILTER_MAX_MATCH) {
		cfg_node_error(errs, n,
			       "filter: payload %s: '%s' is not 1..%d bytes of hex, two digits a "
			       "byte",
			       what, s, FILTER_MAX_MATCH);
		return -EINVAL;
	}
	for (size_t i = 0; i < nd; i += 2) {
		int hi = hex_digit(d[i]), lo = hex_digit(d[i + 1]);

		if (hi < 0 || lo < 0) {
			cfg_node_error(errs, n, "filter: payload %s: '%s' is not hex", what, s);
			return -EINVAL;
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = (uint8_t)(nd / 2);
	return 0;
}

/* What parse_payload() reads before checking the parts agree. */
struct payload_args {
	struct filter_rule *r;
	uint32_t offset;
	uint8_t mask_len;
	bool have_mask;
};

static int parse_payload_mask(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct payload_args *pa = obj;

	return get_hex(val, "mask", pa->r->mask, &pa->mask_len, errs);
}

static int parse_payload_value(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	struct payload_args *pa = obj;

	return get_hex(val, "value", pa->r->value, &pa->r->payload_len, errs);
}

static const struct cfg_arg payload_arg_list[] = {
	{ .name = "offset",
	  .type = CFG_ARG_U32,
	  .offset = offsetof(struct payload_args, offset),
	  .min = 0,
	  .max = FILTER_MAX_OFFSET },
	{ .name = "mask",
	  .type = CFG_ARG_NODE,
	  .seen = CFG_SEEN(struct payload_args, have_mask),
	  .parse = parse_payload_mask },
	{ .name = "value", .type = CFG_ARG_NODE, .required = true, .parse = parse_payload_value },
};

static const struct cfg_args payload_args = {
	.prefix = "filter: payload",
	.expect = " {offset, mask, value}",
	.args = payload_arg_list,
	.nr = sizeof(payload_arg_list) / sizeof(payload_arg_list[0]),
};

static int parse_payload(const struct cfg_node *n, void *obj, struct cfg_errors *errs)
{
	struct filter_rule *r = *(struct filter_rule **)obj;
	struct payload_args pa = { .r = r };
	const struct cfg_node *value_node = cfg_map_get(n, "value");

	if (cfg_args_parse(&payload_args, n, &pa, errs))
		return -EINVAL;
	if (!pa.have_mask) {
		memset(r->mask, 0xff, r->payload_len);
	} else if (pa.mask_len != r->payload_len) {
		cfg_node_error(errs, value_node,
			       "filter: payload: mask has %u bytes and value %u; they must be "
			       "equally long",
			       pa.mask_len, r->payload_len);
		return -EINVAL;
	}
	/* Such a rule could never match: surely a typo. */
	for (unsigned int i = 0; i < r->payload_len; i++) {
		if (r->value[i] & ~r->mask[i]) {
			cfg_node_error(errs, value_node,
				       "filter: payload: value has bits set outside the mask (byte "
				       "%u)",
				       i);
			return -EINVAL;
		}
	}
	r->payload_off = (uint16_t)pa.offset;
	r->has_payload = true;
	return 0;
}

/* One rule's family is its addresses'; they must agree with each other and the flow. */
static int rule_family(const struct ferry_flow_ctx *fc, const struct cfg_node *n,
		       struct filter_rule *r, const struct cfg_prefix *p, const char *what,
		       struct cfg_errors *errs)
{
	uint8_t fam = p->family == AF_INET ? 4 : 6;

	if (p->family != ferry_flow__family(fc)) {
		cfg_node_error(errs, n,
			       "filter: %s is IPv%u, but flow '%s' matches IPv%u: the rule could "
			       "never match",
			       what, fam, ferry_flow__name(fc),
			       ferry_flow__family(fc) == AF_INET ? 4 : 6);
		return -EINVAL;
	}
	r->family = fam;
	return 0;
}

/* One rule being read; `r` first, for parse_payload(). */
struct rule_args {
	struct filter_rule *r;
	const struct ferry_flow_ctx *fc;
};

static int parse_rule_addr(const struct cfg_node *val, struct rule_args *ra, bool src,
			   struct cfg_errors *errs)
{
	struct filter_rule *r = ra->r;
	struct cfg_prefix pfx;

	if (cfg_get_prefix(val, &pfx, errs) ||
	    rule_family(ra->fc, val, r, &pfx, src ? "source" : "destination", errs))
		return -EINVAL;
	prefix_words(&pfx, src ? r->src_mask : r->dst_mask, src ? r->src : r->dst);
	if (src)
		r->has_src = true;
	else
		r->has_dst = true;
	return 0;
}

static int parse_rule_src(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return parse_rule_addr(val, obj, true, errs);
}

static int parse_rule_dst(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return parse_rule_addr(val, obj, false, errs);
}

static int parse_rule_sport(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return cfg_get_port_range(val, &((struct rule_args *)obj)->r->sport, errs);
}

static int parse_rule_dport(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return cfg_get_port_range(val, &((struct rule_args *)obj)->r->dport, errs);
}

static const struct cfg_arg rule_arg_list[] = {
	{ .name = "source", .type = CFG_ARG_NODE, .parse = parse_rule_src },
	{ .name = "destination", .type = CFG_ARG_NODE, .parse = parse_rule_dst },
	{ .name = "source_port", .type = CFG_ARG_NODE, .parse = parse_rule_sport },
	{ .name = "destination_port", .type = CFG_ARG_NODE, .parse = parse_rule_dport },
	{ .name = "payload", .type = CFG_ARG_NODE, .parse = parse_payload },
};

static const struct cfg_args rule_args = {
	.prefix = "filter",
	.in = "a rule",
	.args = rule_arg_list,
	.nr = sizeof(rule_arg_list) / sizeof(rule_arg_list[0]),
};

static int parse_rule(const struct ferry_flow_ctx *fc, const struct cfg_node *n,
		      struct filter_rule *r, struct cfg_errors *errs)
{
	struct rule_args ra = { .r = r, .fc = fc };

	if (!cfg_node_is_map(n)) {
		cfg_node_error(errs, n,
			       "filter: a rule is a mapping of source, destination, source_port, "
			       "destination_port, payload");
		return -EINVAL;
	}
	return cfg_args_parse(&rule_args, n, &ra, errs);
}

/* What filter_configure() reads; `fc` and `c` for the rule lists. */
struct filter_args {
	const struct ferry_flow_ctx *fc;
	struct filter_conf *c;
	int dirs, default_allow;
	bool have_allow, have_deny;
};

static int parse_list(const struct cfg_node *n, bool allow, struct filter_args *fa,
		      struct cfg_errors *errs)
{
	const char *what = allow ? "allow" : "deny";
	struct filter_conf *c = fa->c;
	int nr = cfg_seq_len(n), err = 0;

	if (nr < 0) {
		cfg_node_error(errs, n, "filter: %s: expected a sequence of rules", what);
		return -EINVAL;
	}
	for (int i = 0; i < nr; i++) {
		const struct cfg_node *rn = cfg_seq_item(n, i);

		if (c->nr_rules == FILTER_MAX_RULES) {
			cfg_node_error(errs, rn,
				       "filter: too many rules (max %d in allow and deny)",
				       FILTER_MAX_RULES);
			return -EINVAL;
		}
		c->rules[c->nr_rules].allow = allow;
		if (parse_rule(fa->fc, rn, &c->rules[c->nr_rules], errs))
			err = -EINVAL;
		c->nr_rules++;
	}
	return err;
}

static int parse_allow(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return parse_list(val, true, obj, errs);
}

static int parse_deny(const struct cfg_node *val, void *obj, struct cfg_errors *errs)
{
	return parse_list(val, false, obj, errs);
}

static const struct cfg_word filter_default_words[] = {
	{ "allow", 1 },
	{ "deny", 0 },
	{ NULL, 0 },
};

static const struct cfg_arg filter_arg_list[] = {
	{ .name = "allow",
	  .type = CFG_ARG_NODE,
	  .seen = CFG_SEEN(struct filter_args, have_allow),
	  .parse = parse_allow },
	{ .name = "deny",
	  .type = CFG_ARG_NODE,
	  .seen = CFG_SEEN(struct filter_args, have_deny),
	  .parse = parse_deny },
	SVC_DIR_ARG(struct filter_args, dirs, SVC_DIR_CLIENT),
	{ .name = "default",
	  .type = CFG_ARG_WORD,
	  .offset = offsetof(struct filter_args, default_allow),
	  .words = filter_default_words,
	  .def = 1 },
};

static const struct cfg_args filter_args_tbl = {
	.prefix = "filter",
	.expect = " of allow, deny, default, direction",
	.args = filter_arg_list,
	.nr = sizeof(filter_arg_list) / sizeof(filter_arg_list[0]),
};

static int filter_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			    struct cfg_errors *errs, void **confp)
{
	struct filter_args fa = { .fc = fc };
	struct filter_conf *c;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	fa.c = c;
	if (cfg_args_parse(&filter_args_tbl, args, &fa, errs))
		goto err_free;
	if (!fa.have_allow && !fa.have_deny) {
		cfg_node_error(errs, args, "filter: no rules: give 'allow' or 'deny' (or both)");
		goto err_free;
	}
	c->dirs = (enum svc_dir)fa.dirs;
	c->default_allow = fa.default_allow;
	*confp = c;
	return 0;

err_free:
	free(c);
	return -EINVAL;
}

static int filter_worker_init(void *conf, struct ferry_worker *w, void **wstate)
{
	struct filter_worker *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return -ENOMEM;
	*wstate = fw;
	return 0;
}

static bool addr_match(const uint32_t pkt[4], const uint32_t mask[4], const uint32_t want[4])
{
	return ((pkt[0] & mask[0]) ^ want[0]) == 0 && ((pkt[1] & mask[1]) ^ want[1]) == 0 &&
	       ((pkt[2] & mask[2]) ^ want[2]) == 0 && ((pkt[3] & mask[3]) ^ want[3]) == 0;
}

static bool port_match(const struct cfg_port_range *r, uint16_t port)
{
	return (!r->lo && !r->hi) || (port >= r->lo && port <= r->hi);
}

static bool payload_match(const struct filter_rule *r, const struct ferry_pkt *p)
{
	uint32_t off = (uint32_t)p->pi.payload_off + r->payload_off;
	const uint8_t *d;

	/* An ICMP error's "payload" is the packet it quotes. */
	if (p->pi.l4_proto != IPPROTO_UDP && p->pi.l4_proto != IPPROTO_TCP)
		return false;
	/* pkt_len ends the IP packet: Ethernet padding is not payload. */
	if (off + r->payload_len > p->pi.pkt_len)
		return false;
	d = p->data + off;
	for (unsigned int i = 0; i < r->payload_len; i++)
		if ((d[i] & r->mask[i]) != r->value[i])
			return false;
	return true;
}

static bool rule_match(const struct filter_rule *r, const struct ferry_pkt *p)
{
	const struct pkt_info *pi = &p->pi;

	if (r->family && r->family != pi->family)
		return false;
	if (r->has_src && !addr_match(pi->saddr.w, r->src_mask, r->src))
		return false;
	if (r->has_dst && !addr_match(pi->daddr.w, r->dst_mask, r->dst))
		return false;
	/* An ICMP error's ports are 0: a port range (1..65535) never matches it. */
	if (!port_match(&r->sport, pi->sport) || !port_match(&r->dport, pi->dport))
		return false;
	return !r->has_payload || payload_match(r, p);
}

static void filter_process(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b)
{
	const struct filter_conf *c = conf;
	struct filter_worker *fw = wstate;

	for (uint32_t i = 0; i < b->n; i++) {
		struct ferry_pkt *p = b->pkts[i];
		bool allow = c->default_allow;
		uint32_t r;

		if (!svc_dir_match(c->dirs, p)) {
			fw->counters[FILTER_SKIPPED]++;
			continue;
		}
		for (r = 0; r < c->nr_rules; r++) {
			if (rule_match(&c->rules[r], p)) {
				allow = c->rules[r].allow;
				break;
			}
		}
		if (r == c->nr_rules)
			fw->counters[FILTER_DEFAULTED]++;
		if (allow) {
			fw->counters[FILTER_ALLOWED]++;
		} else {
			fw->counters[FILTER_DENIED]++;
			ferry_pkt_drop(p, FERRY_DROP_filtered);
		}
	}
}

static void filter_stats(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct filter_worker *fw = wstate;

	for (int i = 0; i < FERRY_SERVICE_COUNTERS; i++)
		counters[i] += fw->counters[i];
}

static void filter_worker_destroy(void *conf, void *wstate)
{
	free(wstate);
}

static void filter_destroy(void *conf)
{
	free(conf);
}

/*
 * The XDP fast path judges nothing: it forwards the packets of sessions
 * whose first packets this filter allowed.  That is the filter's own
 * verdict only when the verdict cannot change within a session, that is
 * when no rule looks at the payload: addresses and ports are the session's.
 */
bool svc_filter__offloadable(const void *conf, char *why, size_t len)
{
	const struct filter_conf *c = conf;

	for (uint32_t r = 0; r < c->nr_rules; r++) {
		if (c->rules[r].has_payload) {
			snprintf(why, len, "filter: rule %u matches payload bytes", r + 1);
			return false;
		}
	}
	return true;
}

/*
 * The fast path's packets, as filter_process() would have counted them:
 * allowed when judged (every packet of an offloaded session is), skipped
 * when not.  by_default only when no rule allows, so that every allowed
 * packet was allowed by the default; otherwise which one allowed a session
 * is not known here, and by_default counts the packets a worker judged.
 */
void svc_filter__offload_counters(const void *conf, uint64_t client, uint64_t reply,
				  uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	const struct filter_conf *c = conf;
	uint64_t judged = 0, skipped = 0;
	bool allow_rule = false;

	if (c->dirs & SVC_DIR_CLIENT)
		judged += client;
	else
		skipped += client;
	if (c->dirs & SVC_DIR_REPLY)
		judged += reply;
	else
		skipped += reply;
	for (uint32_t r = 0; r < c->nr_rules; r++)
		allow_rule |= c->rules[r].allow;
	counters[FILTER_ALLOWED] += judged;
	counters[FILTER_SKIPPED] += skipped;
	if (!allow_rule)
		counters[FILTER_DEFAULTED] += judged;
}

const struct ferry_service_ops svc_filter_ops = {
	.name = "filter",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.configure = filter_configure,
	.worker_init = filter_worker_init,
	.process = filter_process,
	.stats = filter_stats,
	.worker_destroy = filter_worker_destroy,
	.destroy = filter_destroy,
	.counter_names = {
		[FILTER_ALLOWED] = "allowed",
		[FILTER_DENIED] = "denied",
		[FILTER_DEFAULTED] = "by_default",
		[FILTER_SKIPPED] = "skipped",
	},
};
