/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The service ABI, version 3: everything a service may use, and all an
 * out-of-tree service (a shared object loaded from service_dir) can reach.
 * `make install` puts it in $(PREFIX)/include/ferry/ferry_service.h; a
 * service is built with only that directory on its include path:
 *
 *     cc -O2 -fPIC -shared -I/usr/local/include -o NAME.so NAME.c
 *     (NAME.c: #include <ferry/ferry_service.h>)
 *
 * It includes only the C library's headers.  ferryd exports exactly the
 * functions declared here (the list is services/ferry_service.map, the
 * linker's dynamic list; nothing else of ferryd is visible to a .so), and
 * the structs below are the layouts a .so is compiled against: changing
 * any of them, or a function's signature, means raising
 * FERRY_SERVICE_ABI_VERSION, and the loader refuses objects built for
 * another version.  lib/packet.h (struct pkt_info) and lib/config.h (the
 * argument tables) take those types from here rather than define their
 * own, so changing one is visibly changing the ABI.  Packet fields are
 * read through the static inline ferry_pkt_*() accessors or the public
 * struct ferry_pkt directly: both compile to plain loads, no call per
 * packet.
 *
 * The built-in services (services/svc_*.c) use this same ABI through
 * services/service.h, which adds what only they may use (the NAT table
 * and next-hop cache themselves, steering rules, the daemon's config):
 * those are internal to ferryd and not exported.  What a service may ask
 * of them is here: a next hop (ferry_worker__route()) and a packet's
 * session, read-only (ferry_worker__session()).
 *
 * Each flow's packets pass through the chain of services its config names.
 * A service is a const struct ferry_service_ops with designated
 * initialisers.  Built-in services are listed in services/registry.c;
 * out-of-tree services are shared objects exporting the same struct under
 * the symbol FERRY_SERVICE_SYMBOL, loaded from the configured service_dir
 * and refused unless their abi_version equals FERRY_SERVICE_ABI_VERSION.
 *
 * Services see batches: process() gets every packet of one flow that a
 * worker received in one RX burst and sets a verdict on each:
 *   FERRY_VERDICT_NEXT  go on to the next service (the default)
 *   FERRY_VERDICT_TX    transmit on pkt->out_port; the chain ends here
 *   FERRY_VERDICT_DROP  free the frame, counted under pkt->drop_reason
 *   FERRY_VERDICT_HOLD  the service keeps the frame (a queue, a pacer) and
 *                       finishes it later with ferry_worker__send_held();
 *                       set only through ferry_worker__hold(), which
 *                       refuses once the worker's services hold their
 *                       budget of frames
 * A service may also emit new packets (ferry_batch__emit: a copy of a packet
 * in a fresh frame from the worker's pool); they join the batch at NEXT and
 * go on with the following services.  After the last service a packet that
 * nobody sent is dropped as "service", so a chain can never leak a frame.
 *
 * Services may rewrite headers and payload in place.  After changing the
 * payload's length or bytes they call ferry_pkt_set_payload_len() and/or
 * ferry_pkt_fix_checksums(), which fix lengths and checksums.
 *
 * Lifecycle: configure() once per flow when the config is loaded (read the
 * service's arguments with cfg_args_parse() and an argument table, which
 * reports errors as FILE:LINE:COL through errs; fc->flow_id is final only
 * from start() on, as a reload configures a flow before it picks its id);
 * start() once the interfaces are up (resolve what needs the network, add
 * steering rules); worker_init() once per worker for per-worker state, so
 * process() never takes a lock; tick() about every 100 ms on each worker;
 * stats() when counters are published; worker_destroy(), then destroy().
 * A reload calls configure() for every flow again, start()
 * and worker_init() for added and changed flows, worker_destroy() and
 * destroy() for removed and changed ones; worker_init() and
 * worker_destroy() always run on the main thread while the worker is parked
 * or stopped.  An unchanged flow keeps its conf while the document and the
 * cfg_flow it was configured from are freed: configure() copies what it
 * needs and keeps no pointer into args or fc->flow.
 * The chain runner counts packets in/out/dropped/held/emitted per service
 * itself; stats() adds what only the service knows (up to four named
 * counters, named in .counter_names).
 *
 * Packets after TX (.sees_tx): TX normally ends a packet's chain, so nothing
 * placed after forward would ever see a packet.  A service with .sees_tx set
 * is also handed the packets an earlier service of this run set to
 * FERRY_VERDICT_TX (out_port chosen), in one batch with the NEXT ones and in
 * arrival order.  It may leave such a packet at TX (it goes on to later
 * .sees_tx services, then out), DROP it, or HOLD it and finish it later
 * with ferry_worker__send_held() at TX, out_port unchanged; that is how tap
 * copies what leaves and pace delays it.  Services without the flag never
 * see a TX packet, so every existing chain behaves as before.  A packet an
 * earlier service holds (forward waiting for a neighbour) and later sends
 * itself is seen by no later service.
 *
 * The XDP fast path: once a session is established, ferryd may forward a
 * flow's packets in its XDP program without a worker (docs/design.md, "XDP fast
 * path"), when every service of the chain is one whose per-packet work the
 * program does itself: the built-ins forward, lb, filter without payload
 * rules, and ratelimit.  A chain with an out-of-tree service is never
 * offloaded: its process() sees every packet, as without the fast path.
 *
 * Timers: tick() runs about every 100 ms.  A service that must act sooner
 * (pace releasing held packets) calls ferry_worker__wake_at() with a
 * deadline on the worker clock; the worker does not sleep past the earliest
 * deadline and then runs its services' tick() early.  tick() therefore
 * measures time with ferry_worker__now_ns() and never counts calls.
 */
#ifndef FERRY_SERVICE_ABI_H
#define FERRY_SERVICE_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_SERVICE_ABI_VERSION 3
/* The symbol an out-of-tree service exports: const struct ferry_service_ops. */
#define FERRY_SERVICE_SYMBOL "ferry_service"
#define FERRY_SERVICE_COUNTERS 4

/*
 * Packet directions.  ferryd's BPF records (bpf/ferry_shared.h) hold the
 * same enum under the same condition, so either header may come first;
 * tests/unit/test_service_abi.c checks that the two agree.
 */
#ifndef FERRY_SHARED_H
/* Direction of a rule: packets from clients, or an upstream's replies. */
enum ferry_dir {
	FERRY_DIR_CLIENT = 0,
	FERRY_DIR_REPLY = 1,
};
#endif /* FERRY_SHARED_H */

/* Why a packet was dropped: the names ferryctl prints, in counter order. */
#define FERRY_DROP_REASONS(X)                                                                      \
	X(malformed)                                                                               \
	X(no_session)                                                                              \
	X(ttl_exceeded)                                                                            \
	X(no_route)                                                                                \
	X(no_neighbour)                                                                            \
	X(nat_ports_exhausted)                                                                     \
	X(session_table_full)                                                                      \
	X(tx_ring_full)                                                                            \
	X(too_big)                                                                                 \
	X(service)                                                                                 \
	X(handoff_full)                                                                            \
	X(filtered)                                                                                \
	X(rate_limited)                                                                            \
	X(bad_payload)                                                                             \
	X(queue_full)                                                                              \
	X(no_frame)                                                                                \
	X(tcp_out_of_window)                                                                       \
	X(hold_budget)                                                                             \
	X(source_session_limit)                                                                    \
	X(app_unavailable)

enum ferry_drop_reason {
#define FERRY_DROP_ENUM(name) FERRY_DROP_##name,
	FERRY_DROP_REASONS(FERRY_DROP_ENUM)
#undef FERRY_DROP_ENUM
	FERRY_DROP__MAX
};

/* ---- parsed packet headers (lib/packet.c fills them; lib/packet.h parses) ---- */

/* A v4 address is stored in the first 4 bytes, the rest zero. */
union ferry_addr {
	uint8_t b[16];
	uint32_t w[4];
};

/*
 * The packet an ICMP or ICMPv6 error quotes: an IP header of the error's own
 * family and at least the first 8 bytes of a UDP or TCP header (all RFC 792
 * promises), neither a fragment nor behind an IPv6 extension header.  The
 * quote ends where the error does (pkt_len).
 */
struct pkt_quote {
	uint16_t l3_off;      /* the quoted IP header, right after the ICMP header */
	uint16_t l4_off;      /* the quoted UDP/TCP header */
	uint8_t l4_proto;     /* IPPROTO_UDP or IPPROTO_TCP */
	uint8_t pad;
	uint16_t sport, dport; /* host byte order, as quoted */
	union ferry_addr saddr, daddr;
};

struct pkt_info {
	uint16_t l3_off;      /* start of the IP header */
	uint16_t l4_off;      /* start of the UDP/TCP header, or of the ICMP header */
	uint16_t payload_off; /* start of the L4 payload (for ICMP the quoted packet) */
	uint16_t pkt_len;     /* Ethernet header + IP total length (padding trimmed) */
	uint8_t family;       /* 4 or 6 */
	uint8_t l4_proto;     /* IPPROTO_UDP, IPPROTO_TCP, or an ICMP error: IPPROTO_ICMP(V6) */
	uint8_t ttl;          /* TTL or hop limit */
	uint8_t has_ip_options; /* IPv4 IHL > 5 (parsed, forwarded unchanged) */
	uint16_t sport, dport; /* host byte order; 0 for ICMP */
	union ferry_addr saddr, daddr;
	/* ICMP errors only (l4_proto IPPROTO_ICMP or IPPROTO_ICMPV6): */
	uint8_t icmp_type, icmp_code;
	struct pkt_quote quote;
};


/* ---- configuration: a service's arguments (lib/config.c) ---- */

/* An address with a prefix length; family is AF_INET or AF_INET6 (0 = unset). */
struct cfg_prefix {
	int family;
	uint8_t plen;
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t bytes[16];
	} addr;
};

struct cfg_port_range {
	uint16_t lo, hi; /* 0/0: any */
};

/* Where something was written, for messages after parsing. */
struct cfg_mark {
	unsigned int line, col; /* 1-based */
};

/*
 * A node of the loaded configuration (opaque), handed to services to parse
 * their arguments; it lives as long as the config it came from.
 */
struct cfg_node;

/* The error sink configure() gets (opaque): pass it on to the functions below. */
struct cfg_errors;
/* A flow of the configuration (opaque): see the ferry_flow__*() accessors. */
struct cfg_flow;


bool cfg_node_is_map(const struct cfg_node *n);
/* Entries of a sequence node, or -1 when it is not one. */
int cfg_seq_len(const struct cfg_node *n);
/* Entry i (0-based) of a sequence node, i < cfg_seq_len(). */
const struct cfg_node *cfg_seq_item(const struct cfg_node *n, int i);
/* The value of `key` in a mapping node, or NULL (for pointing errors at it). */
const struct cfg_node *cfg_map_get(const struct cfg_node *map, const char *key);

/* Iterates a mapping's pairs in file order. */
typedef struct {
	const struct cfg_node *map;
	int i;
} cfg_iter;
void cfg_iter_init(cfg_iter *it, const struct cfg_node *map);
/* Returns false at the end; *key is the key's scalar text, *val the value node. */
bool cfg_iter_next(cfg_iter *it, const char **key, const struct cfg_node **val);

/* Scalar readers: return 0 or -EINVAL after reporting the error at the node. */
int cfg_get_string(const struct cfg_node *n, char *buf, size_t len, struct cfg_errors *errs);
int cfg_get_u32(const struct cfg_node *n, uint32_t min, uint32_t max, uint32_t *out,
		struct cfg_errors *errs);
int cfg_get_bool(const struct cfg_node *n, bool *out, struct cfg_errors *errs);
/* "ADDR/PLEN" or "ADDR" (full length). */
int cfg_get_prefix(const struct cfg_node *n, struct cfg_prefix *out, struct cfg_errors *errs);
/* "N" or "LO-HI". */
int cfg_get_port_range(const struct cfg_node *n, struct cfg_port_range *out,
		       struct cfg_errors *errs);
/* "198.18.2.2:5000" or "[fd00::2]:5000"; family set, port in host order. */
int cfg_get_endpoint(const struct cfg_node *n, struct cfg_prefix *addr, uint16_t *port,
		     struct cfg_errors *errs);
struct cfg_mark cfg_node_mark(const struct cfg_node *n);
void cfg_node_error(struct cfg_errors *errs, const struct cfg_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An error at a mark kept from parsing (e.g. a service's name), in errs->file. */
void cfg_mark_error(struct cfg_errors *errs, struct cfg_mark mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Calls fn on each entry of a sequence of 1..max entries; errors name it
 * `what` ("lb: upstreams: expected a sequence").  Returns 0 or -EINVAL
 * (every entry is still visited, so all their errors are reported).
 */
int cfg_for_each_item(const struct cfg_node *seq, const char *what, int max,
		      int (*fn)(const struct cfg_node *item, int i, void *ctx), void *ctx,
		      struct cfg_errors *errs);

/* ---- argument tables ---- */

enum cfg_arg_type {
	CFG_ARG_U32,      /* uint32_t in min..max, default def */
	CFG_ARG_BOOL,     /* bool: true/yes/on or false/no/off, default def */
	CFG_ARG_STRING,   /* char[size] */
	CFG_ARG_WORD,     /* int: the value of one of words[], default def */
	CFG_ARG_ENDPOINT, /* struct cfg_endpoint: ADDR:PORT or [ADDR6]:PORT */
	CFG_ARG_PREFIX,   /* struct cfg_prefix: ADDR/PLEN or ADDR (family 0: not given) */
	CFG_ARG_PORTS,    /* struct cfg_port_range: N or LO-HI */
	CFG_ARG_LIST,     /* a sequence of 1..max entries, each handed to item() */
	CFG_ARG_NODE,     /* any node (a nested mapping), handed to parse() */
};

/* One word of a CFG_ARG_WORD argument; a table ends with a NULL name. */
struct cfg_word {
	const char *name;
	int value;
};

struct cfg_endpoint {
	struct cfg_prefix addr;
	uint16_t port; /* host order */
};

/*
 * One argument of a service: its key, its type, and where parse puts the
 * value in the caller's struct (offsetof).  A key not given gets `def`
 * (numbers, booleans, words) or stays as the caller initialised it.
 */
struct cfg_arg {
	const char *name;
	enum cfg_arg_type type;
	size_t offset;
	size_t seen;              /* CFG_SEEN(type, field): a bool set when given; 0: none */
	bool required;
	uint32_t min, max;        /* U32: the range; LIST: max entries */
	uint32_t def;             /* U32, BOOL, WORD: the value when not given */
	size_t size;              /* STRING: the buffer's size */
	const struct cfg_word *words; /* WORD */
	/* LIST: entry i of the sequence; obj is the caller's struct. */
	int (*item)(const struct cfg_node *item, int i, void *obj, struct cfg_errors *errs);
	/* NODE: the value. */
	int (*parse)(const struct cfg_node *val, void *obj, struct cfg_errors *errs);
};

#define CFG_SEEN(type, field) (offsetof(type, field) + 1)

/* A mapping of arguments: one service's, or a nested one (a filter rule). */
struct cfg_args {
	/* Messages start "<prefix>: ", e.g. "forward" or "filter: payload". */
	const char *prefix;
	/* Unknown keys are "unknown key 'k' in <in>" when set, e.g. "a rule". */
	const char *in;
	/*
	 * What is expected when the node is not a mapping (or absent):
	 * "<prefix>: expected a mapping<expect>".  With `optional`, having no
	 * arguments at all is fine: every key then gets its default.
	 */
	const char *expect;
	bool optional;
	const struct cfg_arg *args;
	unsigned int nr;
};

/*
 * Parses the mapping `n` with `tbl` into obj: unknown keys, missing required
 * keys and bad values are reported as FILE:LINE:COL (all of them, in file
 * order).  Returns 0 or -EINVAL.
 */
int cfg_args_parse(const struct cfg_args *tbl, const struct cfg_node *n, void *obj,
		   struct cfg_errors *errs);


/* ---- services ---- */

enum ferry_verdict {
	FERRY_VERDICT_NEXT = 0, /* on to the next service */
	FERRY_VERDICT_TX,       /* transmit on pkt->out_port, the chain ends here */
	FERRY_VERDICT_DROP,     /* free the frame, count pkt->drop_reason */
	FERRY_VERDICT_HOLD,     /* the service keeps the frame and finishes it later with
				 * ferry_worker__send_held(); it stays "held" in the UMEM */
};

struct nat_session; /* opaque: ferryd's NAT sessions */

struct ferry_pkt {
	uint8_t *data;         /* frame start (Ethernet header) in the UMEM */
	uint32_t len;          /* frame length */
	uint64_t addr;         /* UMEM address of data */
	struct pkt_info pi;    /* parsed headers */
	uint32_t flow_id;
	uint16_t in_port;      /* ferry port index it arrived on */
	uint16_t out_port;     /* set with FERRY_VERDICT_TX */
	uint8_t dir;           /* enum ferry_dir of the rule it matched */
	uint8_t verdict;       /* enum ferry_verdict */
	uint8_t drop_reason;   /* enum ferry_drop_reason with FERRY_VERDICT_DROP */
	/*
	 * ferryd's own, for forward: the NAT session the receiving worker
	 * found for a reply (NULL if none), so that the reply is not looked up
	 * twice.  A hint only, checked against the table before use
	 * (nat_table__lookup_reply_hint()); other services leave it alone.
	 */
	struct nat_session *reply_session;
};

struct ferry_batch {
	struct ferry_pkt **pkts;
	uint32_t n;
	uint32_t cap;          /* room in pkts[] for emitted packets */
};

struct ferry_worker;  /* opaque: one worker thread of ferryd */
struct ferry_daemon;  /* opaque: ferryd */

/* What a flow's service knows about where it runs. */
struct ferry_flow_ctx {
	const struct cfg_flow *flow; /* opaque: read it with ferry_flow__*() */
	uint32_t flow_id;
	struct ferry_daemon *daemon;
};

struct ferry_service_ops {
	const char *name;
	uint32_t abi_version;  /* FERRY_SERVICE_ABI_VERSION */
	int (*configure)(const struct ferry_flow_ctx *fc, const struct cfg_node *args,
			 struct cfg_errors *errs, void **conf);
	int (*start)(const struct ferry_flow_ctx *fc, void *conf);
	int (*worker_init)(void *conf, struct ferry_worker *w, void **wstate);
	void (*process)(void *conf, void *wstate, struct ferry_worker *w, struct ferry_batch *b);
	void (*tick)(void *conf, void *wstate, struct ferry_worker *w);
	/* Adds this worker's service-specific counts into counters[i] (named below). */
	void (*stats)(void *conf, void *wstate, uint64_t counters[FERRY_SERVICE_COUNTERS]);
	void (*worker_destroy)(void *conf, void *wstate);
	void (*destroy)(void *conf);
	const char *counter_names[FERRY_SERVICE_COUNTERS];
	/* Also gets the packets earlier services set to TX (see above). */
	bool sees_tx;
};

/* ---- the packet view: static inline, plain loads on the per-packet path ---- */

static inline uint8_t *ferry_pkt_data(const struct ferry_pkt *p)
{
	return p->data;
}

/* The frame's length from ferry_pkt_data(). */
static inline uint32_t ferry_pkt_len(const struct ferry_pkt *p)
{
	return p->len;
}

/* Offsets from ferry_pkt_data(): the IP header, the UDP/TCP (or ICMP) header, the payload. */
static inline uint32_t ferry_pkt_l3_off(const struct ferry_pkt *p)
{
	return p->pi.l3_off;
}

static inline uint32_t ferry_pkt_l4_off(const struct ferry_pkt *p)
{
	return p->pi.l4_off;
}

static inline uint32_t ferry_pkt_payload_off(const struct ferry_pkt *p)
{
	return p->pi.payload_off;
}

/* Where the IP packet ends (Ethernet padding excluded): never write at or past it. */
static inline uint32_t ferry_pkt_ip_end(const struct ferry_pkt *p)
{
	return p->pi.pkt_len;
}

/* 4 or 6. */
static inline unsigned int ferry_pkt_family(const struct ferry_pkt *p)
{
	return p->pi.family;
}

/* IPPROTO_UDP, IPPROTO_TCP, or for an ICMP error IPPROTO_ICMP / IPPROTO_ICMPV6. */
static inline unsigned int ferry_pkt_l4_proto(const struct ferry_pkt *p)
{
	return p->pi.l4_proto;
}

/* Ports in host byte order (0 for ICMP). */
static inline uint16_t ferry_pkt_sport(const struct ferry_pkt *p)
{
	return p->pi.sport;
}

static inline uint16_t ferry_pkt_dport(const struct ferry_pkt *p)
{
	return p->pi.dport;
}

/* Addresses in network byte order: 4 bytes for IPv4, 16 for IPv6. */
static inline const uint8_t *ferry_pkt_saddr(const struct ferry_pkt *p)
{
	return p->pi.saddr.b;
}

static inline const uint8_t *ferry_pkt_daddr(const struct ferry_pkt *p)
{
	return p->pi.daddr.b;
}

/* The clients' packets or the upstream's replies. */
static inline enum ferry_dir ferry_pkt_dir(const struct ferry_pkt *p)
{
	return (enum ferry_dir)p->dir;
}

static inline uint32_t ferry_pkt_flow_id(const struct ferry_pkt *p)
{
	return p->flow_id;
}

/* ---- verdicts ---- */

static inline void ferry_pkt_drop(struct ferry_pkt *p, enum ferry_drop_reason reason)
{
	p->verdict = FERRY_VERDICT_DROP;
	p->drop_reason = reason;
}

static inline void ferry_pkt_tx(struct ferry_pkt *p, uint16_t out_port)
{
	p->verdict = FERRY_VERDICT_TX;
	p->out_port = out_port;
}

/*
 * Holds p (FERRY_VERDICT_HOLD) if the worker's services together hold fewer
 * frames than the worker's budget, which keeps enough frames for its FILL
 * rings; otherwise drops it as hold_budget and returns -ENOBUFS.  Called
 * from process() before the service keeps the packet anywhere.
 */
int ferry_worker__hold(struct ferry_worker *w, struct ferry_pkt *p);
/*
 * Finishes packets a service held (FERRY_VERDICT_HOLD) after their chain run:
 * each must now be FERRY_VERDICT_TX (queued on out_port) or FERRY_VERDICT_DROP
 * (freed and counted for its flow_id).  The TX queues are flushed before it
 * returns, so it may be called from process() or tick() alike.
 */
void ferry_worker__send_held(struct ferry_worker *w, struct ferry_pkt **pkts, uint32_t n);

/* ---- new packets and payload edits ---- */

/*
 * A copy of `from` (frame bytes and parsed headers) in a new frame from the
 * worker's pool, appended to the batch at FERRY_VERDICT_NEXT: the emitting
 * service does not see it again, the following services do.  NULL when the
 * pool or the batch is full: the caller counts that as a drop of its own.
 */
struct ferry_pkt *ferry_batch__emit(struct ferry_worker *w, struct ferry_batch *b,
				    const struct ferry_pkt *from);
/* Bytes a packet's frame can hold from its data start (for payload growth). */
uint32_t ferry_worker__frame_room(const struct ferry_worker *w, const struct ferry_pkt *p);
/*
 * After a service changed a UDP packet's payload length: sets the IP and UDP
 * length fields, p->len and p->pi, and recomputes the checksums.  -EMSGSIZE
 * when the frame has no room, -EINVAL for anything but UDP.
 */
int ferry_pkt_set_payload_len(struct ferry_worker *w, struct ferry_pkt *p, uint32_t len);
/* Recomputes the IPv4 header checksum and the L4 checksum from scratch. */
void ferry_pkt_fix_checksums(struct ferry_pkt *p);

/* ---- the worker: clock, timers, identity ---- */

/* The worker's clock (CLOCK_MONOTONIC, ns), read once per loop iteration. */
uint64_t ferry_worker__now_ns(const struct ferry_worker *w);
/* 0 .. queues - 1: for per-worker names (a socket, a log line). */
uint32_t ferry_worker__id(const struct ferry_worker *w);
/*
 * Asks the worker to run its services' tick() at `deadline_ns` (worker
 * clock) instead of waiting for the next 100 ms tick; the earliest deadline
 * asked for wins, and each early run forgets it, so a service asks again
 * for every deadline it still has.
 */
void ferry_worker__wake_at(struct ferry_worker *w, uint64_t deadline_ns);

/* ---- next hops: sending a packet towards an address ---- */

/*
 * A service that sends packets where ferry did not route them (a tunnel
 * end, a collector) asks the worker's next-hop cache, the one forward,
 * lb, mirror and fanout use: routes and neighbours come from the kernel
 * and follow its notifications, frames wait in the cache's hold queue
 * while a neighbour resolves, within the worker's hold budget.
 *
 * ferry_worker__route_init() from worker_init() shares the worker's cache
 * (creating it with sizes from the nat and umem sections if no service
 * has yet); each is paired with a ferry_worker__route_fini() from
 * worker_destroy().  ferry_worker__route_poll() from process(), before the
 * batch, and from tick() reads the kernel's notifications and runs queued
 * lookups (without waiting; rate-limited, so calling it often is cheap).
 */
int ferry_worker__route_init(struct ferry_worker *w);
void ferry_worker__route_fini(struct ferry_worker *w);
void ferry_worker__route_poll(struct ferry_worker *w);

/* ferry_worker__route(): the packet waits for its neighbour. */
#define FERRY_ROUTE_HELD 1

/*
 * Sends p towards `daddr` (family AF_INET or AF_INET6; 4 or 16 bytes in
 * network order, usually the packet's own destination after the service
 * rewrote it): sets the Ethernet destination and source MACs of the next
 * hop and returns 0 with p at FERRY_VERDICT_TX on the port the route uses.
 * A destination not yet in the cache is looked up at the worker's next
 * lookup slot, never on the packet path; meanwhile, or while the kernel
 * resolves the neighbour, p is held (FERRY_VERDICT_HOLD, counted against
 * the hold budget) and FERRY_ROUTE_HELD returned: the worker sends it with
 * the MACs once known, or drops it.  Otherwise p is dropped with its
 * reason and a negative errno returned: -ENETUNREACH (no_route: no route
 * through a ferry interface), -EHOSTUNREACH (no_neighbour), -ENOBUFS
 * (hold_budget), -EMSGSIZE (too_big: over the egress MTU), -EINVAL
 * (malformed: a family other than the two), -ENODEV (no_route: no
 * ferry_worker__route_init() on this worker).  The IP header is not
 * touched: TTL and addresses are the service's.
 */
int ferry_worker__route(struct ferry_worker *w, struct ferry_pkt *p, int family,
			const void *daddr);

/* ---- sessions: forward's and lb's NAT sessions, read-only ---- */

/* One direction of a session, as struct pkt_info holds a packet's. */
struct ferry_tuple {
	union ferry_addr saddr, daddr; /* network byte order */
	uint16_t sport, dport;         /* host byte order */
	uint8_t family;                /* 4 or 6 */
	uint8_t l4_proto;              /* IPPROTO_UDP or IPPROTO_TCP */
	uint16_t pad;
};

/* A NAT session of the worker (opaque); valid during the process() call that got it. */
struct ferry_session;

/*
 * The session p belongs to on this worker, for a service placed before or
 * after (.sees_tx) forward or lb: a client's packet by its tuple as
 * received, a reply (or an ICMP error about one) by the upstream's tuple;
 * forward's rewrite leaves p's parsed headers as received, so both places
 * find it.  NULL when p has no session of its flow on this worker (a
 * client's first packet before forward created one, a flow without NAT).
 */
const struct ferry_session *ferry_worker__session(struct ferry_worker *w,
						  const struct ferry_pkt *p);
/* The id of the flow that created the session. */
uint32_t ferry_session__flow_id(const struct ferry_session *s);
/* The client's side as received: client address:port -> the flow's address:port. */
void ferry_session__client(const struct ferry_session *s, struct ferry_tuple *out);
/* The upstream side as sent: NAT (egress) address:NAT port -> upstream address:port. */
void ferry_session__upstream(const struct ferry_session *s, struct ferry_tuple *out);
/* Time since the session was created, and since its last packet, on the worker clock. */
uint64_t ferry_session__age_ns(const struct ferry_session *s, const struct ferry_worker *w);
uint64_t ferry_session__idle_ns(const struct ferry_session *s, const struct ferry_worker *w);

/* ---- the flow a service is configured for ---- */

/* The flow's name. */
const char *ferry_flow__name(const struct ferry_flow_ctx *fc);
/* AF_INET or AF_INET6: the family of the flow's match.dst. */
int ferry_flow__family(const struct ferry_flow_ctx *fc);
/* IPPROTO_UDP or IPPROTO_TCP: the flow's match.proto. */
unsigned int ferry_flow__l4_proto(const struct ferry_flow_ctx *fc);

/* ---- logging ---- */

enum ferry_service_log_level {
	FERRY_SERVICE_LOG_ERR = 0,
	FERRY_SERVICE_LOG_WARN,
	FERRY_SERVICE_LOG_INFO,
	FERRY_SERVICE_LOG_DEBUG,
};

/* One message through ferryd's log (stderr or the journal), when `level` is enabled. */
void ferry_service__log(enum ferry_service_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* FERRY_SERVICE_ABI_H */
