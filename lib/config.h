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
#include <sys/types.h>
#include <netinet/in.h>

/* cfg_prefix, cfg_mark, cfg_node and the argument tables are the service ABI's. */
#include "ferry_service.h"

#define CFG_MAX_IFACES 8
#define CFG_MAX_FLOWS 64 /* == FERRY_MAX_FLOWS */
#define CFG_MAX_SERVICES 8
#define CFG_NAME_LEN 32
#define CFG_MAX_CPUS 64 /* entries of `cpus` */
#define CFG_MAX_QUEUES 64 /* workers, == FERRY_MAX_QUEUES */

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

/*
 * Whether a flow's established sessions may forward in XDP (daemon/offload.c):
 * auto when every service of its chain can do its per-packet work there.
 */
enum cfg_offload {
	CFG_OFFLOAD_AUTO = 0,          /* default */
	CFG_OFFLOAD_OFF,               /* every packet through the AF_XDP path */
};

struct cfg_flow {
	char name[CFG_NAME_LEN];
	struct cfg_match match;
	enum cfg_on_failure on_failure; /* default pass */
	enum cfg_offload offload;      /* default auto */
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
	uint32_t offload_max_sessions; /* sessions forwarded in XDP, all workers, default 32768, 0 = none */
};

/* What may happen to an interface's queues beyond `queues` (lib/queues.h). */
enum cfg_unserved {
	CFG_UNSERVED_REFUSE = 0,       /* ferryd does not start (default) */
	CFG_UNSERVED_KERNEL,           /* "kernel": their packets go to the kernel stack */
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
	char control_socket[108];      /* apps attach here (sun_path), default FERRY_CONTROL_SOCKET */
	bool control_group_set;        /* control_group: its members may use ferryctl's admin ops */
	gid_t control_gid;
	char log_level[16];            /* "" = keep the command line's */
	uint32_t queues;               /* workers = queues; 1 until auto is resolved */
	bool queues_auto;              /* queues: auto (default), lib/queues.h */
	struct cfg_mark queues_mark;   /* where queues was set, 0:0 for the default */
	enum cfg_unserved unserved_queues; /* default refuse */
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
 * Error sink (opaque to services): every error is printed at once as "FILE:LINE:COL: message"
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
 * Unset but for tests/tools/config_keys.c, which lists every key the parser
 * accepts for tests/check_docs.sh: called with each key of every key table
 * the parser walks, the file's own (nat, flows, ...) and each argument table
 * a service passes to cfg_args_parse().  `table` tells the tables apart.
 */
extern void (*config__key_hook)(const void *table, const char *key);

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
 * Why two flows config__flow_equal() finds different differ, in a few words
 * ("match: port", "services: forward's arguments"), the first difference
 * found; NULL when they are equal.  buf (len bytes) may hold the answer.
 */
const char *config__flow_change(const struct cfg_flow *a, const struct cfg_flow *b, char *buf,
				size_t len);

/*
 * True when the flows differ only in the arguments of some services (bit i
 * of *services: service i's), everything else as config__flow_equal() sees
 * it equal: for reload, which updates such a flow in place when every one
 * of those services can take new arguments without losing its sessions.
 */
bool config__flow_args_differ(const struct cfg_flow *a, const struct cfg_flow *b,
			      uint32_t *services);

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

#endif /* FERRY_CONFIG_H */
