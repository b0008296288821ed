// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness: the YAML config loader and the services' argument
 * parsers on arbitrary text.
 *
 * Errors are fine; crashes, leaks (LeakSanitizer runs at exit of each
 * input batch) and inconsistent results are not.  A load reports failure
 * if and only if it reported an error, and a config it accepts must obey
 * every rule ferry.yaml(5) (docs/man/) states, so a value that
 * slips past validation is caught here, not by ferryd at start-up.  When
 * the file is accepted, each flow's services are configured and destroyed
 * as ferryd does it, which runs forward's own argument parser.
 *
 * A NUL byte splits the input into two configs, the running one and the one
 * a reload (SIGHUP) would load: both go through the above, and when both
 * load, reload__plan() (daemon/reload.c) diffs them.  Its plan must be
 * consistent (every id unique and in range, the unchanged flows keeping
 * their old ids, the masks and counts adding up), and a config diffed
 * against itself must keep every flow.  Without a NUL, the one config is
 * diffed against itself.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "daemon.h"
#include "fuzz.h"
#include "log.h"
#include "reload.h"
#include "service.h"

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

/* Services may ask for the daemon's config while they configure: it lives in one. */
static struct ferry_daemon daemon_, next_;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log__init("fuzz_config");
	log__set_level(FERRY_LOG_ERR);
	return 0;
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static void check_prefix(const struct cfg_prefix *p, const char *what)
{
	unsigned int len = p->family == AF_INET ? 4 : 16;

	FUZZ_CHECK(p->family == AF_INET || p->family == AF_INET6, "%s: family %d", what,
		   p->family);
	FUZZ_CHECK(p->plen <= len * 8, "%s: prefix length %u", what, p->plen);
	/* Host bits past the prefix length are cleared. */
	for (unsigned int bit = p->plen; bit < len * 8; bit++)
		FUZZ_CHECK(!(p->addr.bytes[bit / 8] & (0x80 >> bit % 8)),
			   "%s: host bit %u set past /%u", what, bit, p->plen);
}

static void check_valid(const struct ferry_config *c)
{
	FUZZ_CHECK(c->pin_path[0] == '/', "pin_path '%s'", c->pin_path);
	FUZZ_CHECK(c->queues >= 1 && c->queues <= 64, "queues %u", c->queues);
	FUZZ_CHECK(c->nr_ifaces >= 1 && c->nr_ifaces <= CFG_MAX_IFACES, "%d interfaces",
		   c->nr_ifaces);
	for (int i = 0; i < c->nr_ifaces; i++) {
		const char *n = c->ifaces[i].name;

		FUZZ_CHECK(n[0] && strnlen(n, IF_NAMESIZE) < IF_NAMESIZE, "interface name");
		FUZZ_CHECK(strcmp(n, ".") && strcmp(n, "..") && !strpbrk(n, "/: \t\n\r\v\f"),
			   "bad interface name '%s' accepted", n);
		for (int j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(n, c->ifaces[j].name), "interface '%s' twice", n);
	}
	FUZZ_CHECK(c->nat.ports.lo >= 1 && c->nat.ports.lo <= c->nat.ports.hi,
		   "nat ports %u-%u", c->nat.ports.lo, c->nat.ports.hi);
	FUZZ_CHECK((uint32_t)(c->nat.ports.hi - c->nat.ports.lo) + 1 >= c->queues,
		   "nat ports %u-%u for %u queues", c->nat.ports.lo, c->nat.ports.hi, c->queues);
	FUZZ_CHECK(c->nat.max_sessions >= 1 && c->nat.max_sessions <= 16777216, "max_sessions %u",
		   c->nat.max_sessions);
	FUZZ_CHECK(c->nat.udp_timeout_s >= 1 && c->nat.udp_timeout_s <= 86400, "udp_timeout %u",
		   c->nat.udp_timeout_s);
	FUZZ_CHECK(pow2(c->umem.frames) && c->umem.frames >= 512 && c->umem.frames <= 1048576,
		   "frames %u", c->umem.frames);
	FUZZ_CHECK(c->umem.frame_size == 2048 || c->umem.frame_size == 4096, "frame_size %u",
		   c->umem.frame_size);
	FUZZ_CHECK(pow2(c->umem.ring_size) && c->umem.ring_size >= 64 &&
			   c->umem.ring_size <= 16384,
		   "ring_size %u", c->umem.ring_size);
	FUZZ_CHECK(c->umem.frames >= 2 * c->umem.ring_size, "frames %u, ring_size %u",
		   c->umem.frames, c->umem.ring_size);
	FUZZ_CHECK(c->umem.batch >= 1 && c->umem.batch <= 256 && c->umem.batch <= c->umem.ring_size,
		   "batch %u", c->umem.batch);

	FUZZ_CHECK(c->nr_flows >= 1 && c->nr_flows <= CFG_MAX_FLOWS, "%d flows", c->nr_flows);
	for (int f = 0; f < c->nr_flows; f++) {
		const struct cfg_flow *fl = &c->flows[f];
		const struct cfg_match *m = &fl->match;
		size_t len = strnlen(fl->name, CFG_NAME_LEN);

		FUZZ_CHECK(len >= 1 && len < CFG_NAME_LEN && strspn(fl->name, NAME_CHARS) == len,
			   "bad flow name '%.*s' accepted", (int)len, fl->name);
		for (int j = 0; j < f; j++)
			FUZZ_CHECK(strcmp(fl->name, c->flows[j].name), "flow '%s' twice", fl->name);
		FUZZ_CHECK(m->l4_proto == IPPROTO_UDP || m->l4_proto == IPPROTO_TCP,
			   "flow '%s': protocol %u", fl->name, m->l4_proto);
		check_prefix(&m->dst, "match.destination");
		if (m->src.family) {
			check_prefix(&m->src, "match.source");
			FUZZ_CHECK(m->src.family == m->dst.family,
				   "flow '%s': source and destination families differ", fl->name);
		}
		FUZZ_CHECK(m->dport.lo >= 1 && m->dport.lo <= m->dport.hi, "flow '%s': port %u-%u",
			   fl->name, m->dport.lo, m->dport.hi);
		FUZZ_CHECK(fl->nr_services >= 1 && fl->nr_services <= CFG_MAX_SERVICES,
			   "flow '%s': %d services", fl->name, fl->nr_services);
		for (int s = 0; s < fl->nr_services; s++)
			FUZZ_CHECK(fl->services[s].name[0], "flow '%s': empty service name",
				   fl->name);
	}
}

/*
 * Like ferry_daemon__configure_flows() and __destroy_flows() (daemon/daemon.c),
 * but for built-in services only (no shared object is ever loaded for a
 * fuzzed name), destroying each conf at once and checking that configure()'s
 * result agrees with the errors it reported; nothing is started.
 */
static void configure_services(struct ferry_daemon *d, struct cfg_errors *errs)
{
	const struct ferry_config *c = &d->cfg;

	for (int f = 0; f < c->nr_flows; f++) {
		const struct cfg_flow *flow = &c->flows[f];
		struct ferry_flow_ctx fc = { .flow = flow, .flow_id = (uint32_t)f, .daemon = d };

		for (int s = 0; s < flow->nr_services; s++) {
			const struct ferry_service_ops *ops = service__find(flow->services[s].name);
			int before = errs->count, err;
			void *conf = NULL;

			if (!ops || !ops->configure)
				continue;
			err = ops->configure(&fc, flow->services[s].args, errs, &conf);
			FUZZ_CHECK(!err == (errs->count == before),
				   "service '%s' returned %d after %d errors", ops->name, err,
				   errs->count - before);
			if (!err && ops->destroy)
				ops->destroy(conf);
		}
	}
}

/* Loads `text` into d->cfg and checks it; 0 when it loaded (free it then). */
static int load(struct ferry_daemon *d, const char *name, const char *text)
{
	struct cfg_errors errs = { 0 };
	int err;

	/* Capture too, so the capture path runs; the log line is printed anyway. */
	errs.capture = calloc(1, 1);
	FUZZ_CHECK(errs.capture, "out of memory");
	memset(d, 0, sizeof(*d));
	err = config__load_string(&d->cfg, name, text, &errs);
	FUZZ_CHECK(err == 0 || err == -EINVAL, "load returned %d", err);
	FUZZ_CHECK(!err == (errs.count == 0), "load returned %d after %d errors", err, errs.count);
	FUZZ_CHECK(strlen(errs.capture) == errs.capture_len, "capture length");
	if (!err) {
		check_valid(&d->cfg);
		configure_services(d, &errs);
	} else {
		config__free(&d->cfg);
	}
	free(errs.capture);
	return err;
}

/* reload__plan(old -> new), checked against what reload.h promises. */
static void check_plan(const struct ferry_config *old, const struct ferry_config *new,
		       uint32_t id_base)
{
	struct cfg_errors errs = { 0 };
	struct reload_plan plan;
	uint32_t old_id[CFG_MAX_FLOWS];
	uint64_t old_mask = 0, ids = 0, add = 0, upd = 0;
	uint32_t nr_ids = 0;
	int err, changed = 0, updated = 0;

	/* Running flows have ids 0..63 in an order the input picks (5 is odd: no repeats). */
	for (int i = 0; i < old->nr_flows; i++) {
		old_id[i] = (id_base + 5u * (uint32_t)i) % CFG_MAX_FLOWS;
		old_mask |= 1ull << old_id[i];
	}
	errs.capture = calloc(1, 1);
	FUZZ_CHECK(errs.capture, "out of memory");
	err = reload__plan(old, old_id, new, &plan, &errs);
	FUZZ_CHECK(err == 0 || err == -EINVAL, "plan returned %d", err);
	FUZZ_CHECK(!err == (errs.count == 0), "plan returned %d after %d errors", err, errs.count);
	free(errs.capture);
	if (err)
		return;
	FUZZ_CHECK(plan.nr_flows == new->nr_flows, "plan of %d flows for %d", plan.nr_flows,
		   new->nr_flows);
	for (int i = 0; i < new->nr_flows; i++) {
		uint32_t id = plan.new_id[i];
		int j;

		FUZZ_CHECK(id < CFG_MAX_FLOWS && !(ids >> id & 1), "flow %d: id %u twice or too big",
			   i, id);
		ids |= 1ull << id;
		if (id + 1 > nr_ids)
			nr_ids = id + 1;
		for (j = 0; j < old->nr_flows; j++)
			if (!strcmp(old->flows[j].name, new->flows[i].name))
				break;
		FUZZ_CHECK(!(plan.unchanged[i] && plan.updated[i]),
			   "flow '%s' both unchanged and updated", new->flows[i].name);
		if (plan.unchanged[i]) {
			FUZZ_CHECK(j < old->nr_flows && old_id[j] == id,
				   "unchanged flow '%s' does not keep its id", new->flows[i].name);
			continue;
		}
		/* Updated in place (lb's arguments): its id and sessions, a new chain. */
		if (plan.updated[i]) {
			FUZZ_CHECK(j < old->nr_flows && old_id[j] == id,
				   "updated flow '%s' does not keep its id", new->flows[i].name);
			upd |= 1ull << id;
			updated++;
			continue;
		}
		add |= 1ull << id;
		changed += j < old->nr_flows;
	}
	FUZZ_CHECK(ids == (plan.keep_mask | plan.add_mask | plan.update_mask) &&
			   add == plan.add_mask && upd == plan.update_mask &&
			   !(plan.keep_mask & plan.add_mask) && !(plan.keep_mask & plan.update_mask) &&
			   !(plan.add_mask & plan.update_mask),
		   "keep %llx add %llx update %llx for ids %llx", (unsigned long long)plan.keep_mask,
		   (unsigned long long)plan.add_mask, (unsigned long long)plan.update_mask,
		   (unsigned long long)ids);
	FUZZ_CHECK(plan.drop_mask == (old_mask & ~plan.keep_mask & ~plan.update_mask),
		   "drop mask %llx", (unsigned long long)plan.drop_mask);
	FUZZ_CHECK(plan.nr_ids == nr_ids, "nr_ids %u, want %u", plan.nr_ids, nr_ids);
	FUZZ_CHECK(plan.changed == changed && plan.updated_count == updated && plan.added >= 0 &&
			   plan.removed >= 0 &&
			   plan.added + plan.changed + plan.updated_count + plan.unchanged_count ==
				   new->nr_flows &&
			   plan.removed + plan.changed + plan.updated_count + plan.unchanged_count ==
				   old->nr_flows,
		   "counts: %d added %d changed %d updated %d removed %d unchanged", plan.added,
		   plan.changed, plan.updated_count, plan.removed, plan.unchanged_count);
	if (old == new)
		FUZZ_CHECK(plan.unchanged_count == new->nr_flows,
			   "a config diffed against itself changes %d flows",
			   new->nr_flows - plan.unchanged_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *second = NULL;
	uint32_t id_base = 0;
	char *text;

	/* config__load_string() takes C strings: the first NUL ends the first config. */
	text = malloc(size + 1);
	FUZZ_CHECK(text, "out of memory");
	memcpy(text, data, size);
	text[size] = '\0';
	if (strlen(text) < size)
		second = text + strlen(text) + 1;
	for (size_t i = 0; i < size; i++)
		id_base += data[i];

	if (load(&daemon_, "fuzz.yaml", text) == 0) {
		check_plan(&daemon_.cfg, &daemon_.cfg, id_base);
		if (second && load(&next_, "next.yaml", second) == 0) {
			check_plan(&daemon_.cfg, &next_.cfg, id_base);
			check_plan(&next_.cfg, &daemon_.cfg, id_base + 1);
			config__free(&next_.cfg);
		}
		config__free(&daemon_.cfg);
	} else if (second && load(&next_, "next.yaml", second) == 0) {
		config__free(&next_.cfg);
	}
	free(text);
	return 0;
}
