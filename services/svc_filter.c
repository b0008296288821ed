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

/* The config parser checks only the top level of a service's mapping for duplicates. */
static bool duplicate_key(const char *const *keys, unsigned int nkeys, const char *key,
			  unsigned int *seen, const struct cfg_node *val, struct cfg_errors *errs)
{
	for (unsigned int i = 0; i < nkeys; i++) {
		if (strcmp(key, keys[i]))
			continue;
		if (*seen & (1u << i)) {
			cfg_node_error(errs, val, "filter: duplicate key '%s'", key);
			return true;
		}
		*seen |= 1u << i;
	}
	return false;
}

static int parse_payload(const struct cfg_node *n, struct filter_rule *r, struct cfg_errors *errs)
{
	static const char *const keys[] = {"offset", "mask", "value"};
	unsigned int seen = 0;
	struct cfg_node val, value_node = { 0 };
	uint8_t mask_len = 0;
	bool have_mask = false, have_value = false;
	uint32_t off = 0;
	const char *key;
	cfg_iter it;
	int err = 0;

	if (!cfg_node_is_map(n)) {
		cfg_node_error(errs, n,
			       "filter: payload: expected a mapping {offset, mask, value}");
		return -EINVAL;
	}
	cfg_iter_init(&it, n);
	while (cfg_iter_next(&it, &key, &val)) {
		if (duplicate_key(keys, sizeof(keys) / sizeof(keys[0]), key, &seen, &val, errs)) {
			err = -EINVAL;
			continue;
		}
		if (!strcmp(key, "offset")) {
			if (cfg_get_u32(&val, 0, FILTER_MAX_OFFSET, &off, errs))
				err = -EINVAL;
		} else if (!strcmp(key, "mask")) {
			if (get_hex(&val, "mask", r->mask, &mask_len, errs))
				err = -EINVAL;
			have_mask = true;
		} else if (!strcmp(key, "value")) {
			if (get_hex(&val, "value", r->value, &r->payload_len, errs))
				err = -EINVAL;
			value_node = val;
			have_value = true;
		} else {
			cfg_node_error(errs, &val, "filter: payload: unknown key '%s'", key);
			err = -EINVAL;
		}
	}
	if (err)
		return err;
	if (!have_value) {
		cfg_node_error(errs, n, "filter: payload: missing key 'value'");
		return -EINVAL;
	}
	if (!have_mask) {
		memset(r->mask, 0xff, r->payload_len);
	} else if (mask_len != r->payload_len) {
		cfg_node_error(errs, &value_node,
			       "filter: payload: mask has %u bytes and value %u; they must be "
			       "equally long",
			       mask_len, r->payload_len);
		return -EINVAL;
	}
	/* Such a rule could never match: surely a typo. */
	for (unsigned int i = 0; i < r->payload_len; i++) {
		if (r->value[i] & ~r->mask[i]) {
			cfg_node_error(errs, &value_node,
				       "filter: payload: value has bits set outside the mask (byte "
				       "%u)",
				       i);
			return -EINVAL;
		}
	}
	r->payload_off = (uint16_t)off;
	r->has_payload = true;
	return 0;
}

/* One rule's family is its addresses'; they must agree with each other and the flow. */
static int rule_family(const struct ferry_flow_ctx *fc, const struct cfg_node *n,
		       struct filter_rule *r, const struct cfg_prefix *p, const char *what,
		       struct cfg_errors *errs)
{
	uint8_t fam = p->family == AF_INET ? 4 : 6;

	if (p->family != fc->flow->match.dst.family) {
		cfg_node_error(errs, n,
			       "filter: %s is IPv%u, but flow '%s' matches IPv%u: the rule could "
			       "never match",
			       what, fam, fc->flow->name,
			       fc->flow->match.dst.family == AF_INET ? 4 : 6);
		return -EINVAL;
	}
	r->family = fam;
	return 0;
}

static int parse_rule(const struct ferry_flow_ctx *fc, const struct cfg_node *n,
		      struct filter_rule *r, struct cfg_errors *errs)
{
	static const char *const keys[] = {"source", "destination", "source_port",
					   "destination_port", "payload"};
	unsigned int seen = 0;
	struct cfg_prefix pfx;
	struct cfg_node val;
	const char *key;
	cfg_iter it;
	int err = 0;

	if (!cfg_node_is_map(n)) {
		cfg_node_error(errs, n,
			       "filter: a rule is a mapping of source, destination, source_port, "
			       "destination_port, payload");
		return -EINVAL;
	}
	cfg_iter_init(&it, n);
	while (cfg_iter_next(&it, &key, &val)) {
		if (duplicate_key(keys, sizeof(keys) / sizeof(keys[0]), key, &seen, &val, errs)) {
			err = -EINVAL;
			continue;
		}
		if (!strcmp(key, "source") || !strcmp(key, "destination")) {
			bool src = key[0] == 's';

			if (cfg_get_prefix(&val, &pfx, errs) ||
			    rule_family(fc, &val, r, &pfx, key, errs)) {
				err = -EINVAL;
				continue;
			}
			prefix_words(&pfx, src ? r->src_mask : r->dst_mask, src ? r->src : r->dst);
			if (src)
				r->has_src = true;
			else
				r->has_dst = true;
		} else if (!strcmp(key, "source_port")) {
			if (cfg_get_port_range(&val, &r->sport, errs))
				err = -EINVAL;
		} else if (!strcmp(key, "destination_port")) {
			if (cfg_get_port_range(&val, &r->dport, errs))
				err = -EINVAL;
		} else if (!strcmp(key, "payload")) {
			if (parse_payload(&val, r, errs))
				err = -EINVAL;
		} else {
			cfg_node_error(errs, &val, "filter: unknown key '%s' in a rule", key);
			err = -EINVAL;
		}
	}
	return err;
}

static int parse_list(const struct ferry_flow_ctx *fc, const struct cfg_node *n, bool allow,
		      struct filter_conf *c, struct cfg_errors *errs)
{
	const char *what = allow ? "allow" : "deny";
	yaml_node_item_t *item;
	int err = 0;

	if (!n->node || n->node->type != YAML_SEQUENCE_NODE) {
		cfg_node_error(errs, n, "filter: %s: expected a sequence of rules", what);
		return -EINVAL;
	}
	for (item = n->node->data.sequence.items.start; item < n->node->data.sequence.items.top;
	     item++) {
		struct cfg_node rn = {.doc = n->doc, .file = n->file};

		rn.node = yaml_document_get_node(n->doc, *item);
		if (c->nr_rules == FILTER_MAX_RULES) {
			cfg_node_error(errs, &rn,
				       "filter: too many rules (max %d in allow and deny)",
				       FILTER_MAX_RULES);
			return -EINVAL;
		}
		c->rules[c->nr_rules].allow = allow;
		if (parse_rule(fc, &rn, &c->rules[c->nr_rules], errs))
			err = -EINVAL;
		c->nr_rules++;
	}
	return err;
}

static int filter_configure(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			    struct cfg_errors *errs, void **confp)
{
	bool have_allow = false, have_deny = false;
	struct filter_conf *c;
	struct cfg_node val;
	const char *key;
	cfg_iter it;
	int err = 0;

	if (!cfg_node_is_map(args)) {
		/* With no arguments there is no node: point at the entry itself. */
		cfg_mark_error(errs, svc_entry_mark(fc, args),
			       "filter: expected a mapping of allow, deny, default, direction");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->default_allow = true;
	c->dirs = SVC_DIR_CLIENT;
	cfg_iter_init(&it, args);
	while (cfg_iter_next(&it, &key, &val)) {
		if (!strcmp(key, "allow") || !strcmp(key, "deny")) {
			bool allow = key[0] == 'a';

			/* The config parser already refused duplicate keys. */
			if (allow)
				have_allow = true;
			else
				have_deny = true;
			if (parse_list(fc, &val, allow, c, errs))
				err = -EINVAL;
		} else if (!strcmp(key, "direction")) {
			if (svc_dir_parse(&val, "filter", &c->dirs, errs))
				err = -EINVAL;
		} else if (!strcmp(key, "default")) {
			bool deny;

			if (svc_word_parse(&val, "filter: default", "allow", "deny", &deny, errs))
				err = -EINVAL;
			else
				c->default_allow = !deny;
		} else {
			cfg_node_error(errs, &val, "filter: unknown key '%s'", key);
			err = -EINVAL;
		}
	}
	if (!err && !have_allow && !have_deny) {
		cfg_node_error(errs, args, "filter: no rules: give 'allow' or 'deny' (or both)");
		err = -EINVAL;
	}
	if (err) {
		free(c);
		return err;
	}
	*confp = c;
	return 0;
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
