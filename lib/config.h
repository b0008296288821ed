/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The YAML configuration, parsed with libyaml's document API so that every
 * node keeps its start mark: each error is reported as FILE:LINE:COL.
 * Parsing is table-driven (key, handler) per mapping; unknown keys and bad
 * values are errors, and parsing goes on after an error so one run of
 * `ferryd --check` reports all of them.
 *
 * A service's arguments are interpreted by the service, but read here: a
 * service describes them in a table (struct cfg_args) and cfg_args_parse()
 * fills the service's own struct and reports every error as FILE:LINE:COL.
 * The service sees its arguments only as opaque handles (struct cfg_node),
 * so only lib/config.c knows libyaml.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <net/if.h>
#include <stddef.h>
#include <netinet/in.h>

#define CFG_MAX_IFACES 8
#define CFG_MAX_FLOWS 64 /* == FERRY_MAX_FLOWS */
#define CFG_MAX_SERVICES 8
#define CFG_NAME_LEN 32
#define CFG_MAX_CPUS 64 /* entries of `cpus` */

enum cfg_xdp_mode {
	CFG_XDP_NATIVE = 0, /* driver mode; falls back to skb mode with a warning */
	CFG_XDP_NATIVE_ONLY, /* "native-only": no fallback, fail instead */
	CFG_XDP_SKB,        /* generic mode */
};

/* How a worker waits for an interface's packets (see lib/xdp_port.h, port_poll_mode). */
enum cfg_poll_mode {
	CFG_POLL_INTERRUPT = 0, /* sleep in poll() when idle (default) */
	CFG_POLL_BUSY,          /* "busy-poll": SO_PREFER_BUSY_POLL, run NAPI from the worker */
	CFG_POLL_SPIN,          /* never sleep; syscalls only on need_wakeup */
};

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
/* The config's private tree of nodes (lib/config.c). */
struct cfg_tree;

struct cfg_iface {
	char name[IF_NAMESIZE];
	enum cfg_xdp_mode xdp_mode;
	enum cfg_poll_mode poll_mode;
	uint32_t busy_poll_usecs;      /* SO_BUSY_POLL with busy-poll, default 20 */
	struct cfg_mark mark;
};

struct cfg_match {
	uint8_t l4_proto;              /* IPPROTO_UDP or IPPROTO_TCP */
	struct cfg_prefix dst;         /* required */
	struct cfg_port_range dport;   /* required for udp/tcp */
	struct cfg_prefix src;         /* optional: family 0 = any */
};

struct cfg_service {
	char name[CFG_NAME_LEN];       /* service type, e.g. "forward" */
	/* Its arguments: a mapping, or a node with no pairs and no mark if none. */
	const struct cfg_node *args;
	struct cfg_mark mark;
};

/* What XDP does with a flow's packets when no ferryd socket takes them. */
enum cfg_on_failure {
	CFG_ON_FAILURE_PASS = 0,       /* to the kernel stack (default) */
	CFG_ON_FAILURE_DROP,           /* dropped and counted: fail closed */
};

struct cfg_flow {
	char name[CFG_NAME_LEN];
	struct cfg_match match;
	enum cfg_on_failure on_failure; /* default pass */
	int nr_services;
	struct cfg_service services[CFG_MAX_SERVICES];
	struct cfg_mark mark;
};

/* Outside Linux's default net.ipv4.ip_local_port_range, 32768-60999. */
#define CFG_NAT_PORTS_DEFAULT_LO 61000
#define CFG_NAT_PORTS_DEFAULT_HI 65535

struct cfg_nat {
	struct cfg_port_range ports;   /* default CFG_NAT_PORTS_DEFAULT_LO-HI */
	struct cfg_mark ports_mark;    /* where nat.ports was set, 0:0 for the default */
	uint32_t max_sessions;         /* default 65536 */
	uint32_t udp_timeout_s;        /* default 60 */
	uint32_t tcp_syn_timeout_s;    /* default 30: SYN_SENT, SYN_RECV */
	uint32_t tcp_established_timeout_s; /* default 7440 */
	uint32_t tcp_closing_timeout_s; /* default 30: FIN_WAIT, TIME_WAIT, CLOSED */
	uint32_t max_sessions_per_source; /* per worker, default 4096, 0 = no limit */
};

struct cfg_umem {
	uint32_t frames;               /* per worker, default 8192 */
	uint32_t frame_size;           /* 2048 or 4096, default 4096 */
	uint32_t ring_size;            /* rx/tx/fill/comp, default 2048 */
	uint32_t batch;                /* default 64 */
};

struct ferry_config {
	char file[256];
	char pin_path[256];            /* default /sys/fs/bpf/ferry */
	char service_dir[256];         /* out-of-tree services, default /usr/lib/ferry/services */
	char log_level[16];            /* "" = keep the command line's */
	uint32_t queues;               /* workers = queues, default 1 */
	int nr_cpus;                   /* 0: workers are not pinned */
	uint16_t cpus[CFG_MAX_CPUS];   /* worker i runs on cpus[i % nr_cpus] */
	uint32_t worker_priority;      /* SCHED_FIFO priority of the workers, 0 = SCHED_OTHER */
	uint32_t coalesce_usecs;       /* interrupt mode: nap after a busy loop, 0 = none */
	int nr_ifaces;
	struct cfg_iface ifaces[CFG_MAX_IFACES];
	int nr_flows;
	struct cfg_flow flows[CFG_MAX_FLOWS];
	struct cfg_nat nat;
	struct cfg_umem umem;
	/* private: the nodes services' args point into; moved, never copied. */
	struct cfg_tree *tree;
};

/*
 * Error sink: every error is printed at once as "FILE:LINE:COL: message"
 * through the log, and counted.
 */
struct cfg_errors {
	const char *file;
	int count;
	/*
	 * When set, messages go here too (one per line) instead of only the
	 * log; for tests.  Start it as a malloc'd "" (capture_len 0): it is
	 * grown with realloc and freed by the caller.
	 */
	char *capture;
	size_t capture_len;
};

/*
 * Parse FILE into *cfg (zeroed, then defaults, then the file).  Returns 0, or
 * -EINVAL when the file has errors (each already reported through errs),
 * or another -errno when it cannot be read.
 */
int config__load(struct ferry_config *cfg, const char *file, struct cfg_errors *errs);
/* Same from a string, for tests; `name` stands in for the file name. */
int config__load_string(struct ferry_config *cfg, const char *name, const char *yaml,
			struct cfg_errors *errs);
void config__free(struct ferry_config *cfg);
/* Moves a loaded config to `dst` (uninitialised); `src` is left empty. */
void config__move(struct ferry_config *dst, struct ferry_config *src);

const struct cfg_flow *config__find_flow(const struct ferry_config *cfg, const char *name);

/*
 * Whether two flows mean the same: compared as parsed and normalised (a
 * prefix written with or without /32, key order, quoting and YAML style, a
 * spelled-out default carry no meaning).  A service's arguments compare as
 * the values its argument table read once it was configured (defaults
 * included), before that as normalised trees (mappings by key, scalars by
 * text); compare two flows whose services were both configured, or neither.
 */
bool config__flow_equal(const struct cfg_flow *a, const struct cfg_flow *b);

/*
 * At start, in ferryd's network namespace: nat.ports must not overlap the
 * host's local port range (the file `local_range_path`, normally
 * /proc/sys/net/ipv4/ip_local_port_range) nor contain a port a socket of the
 * host listens on (TCP) or is bound to (UDP), for the protocols of the
 * config's flows (the tables tcp, tcp6, udp, udp6 in `proc_net_dir`,
 * normally /proc/net).  Returns 0, -EADDRINUSE after reporting each
 * conflict through errs, or another -errno when a file cannot be read.
 */
int config__check_host_ports(const struct ferry_config *cfg, const char *local_range_path,
			     const char *proc_net_dir, struct cfg_errors *errs);

/* ---- reading a service's arguments ---- */

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

#endif /* FERRY_CONFIG_H */
