/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Records shared by the XDP program (bpf/ferry_steer.bpf.c) and user space
 * (daemon/steer.c, daemon/ferryctl.c).  Both sides include this one header so
 * the layout of a flow rule or a counter record cannot drift apart, and the
 * BTF that clang emits for these structs is what makes
 * `bpftool map dump pinned /sys/fs/bpf/ferry/...` print named fields.
 *
 * Only fixed-width __u types: the header is compiled for -target bpf and for
 * the host.
 */
#ifndef FERRY_SHARED_H
#define FERRY_SHARED_H

#include <linux/types.h>

#define FERRY_MAX_RULES 128  /* flow-table slots the XDP program scans */
#define FERRY_MAX_FLOWS 64   /* configured flows (counters are per flow) */
#define FERRY_MAX_QUEUES 64  /* XSKMAP slots: one AF_XDP socket per RX queue */
#define FERRY_FLOW_NAME_LEN 32

/*
 * enum ferry_dir is also the service ABI's: services/ferry_service.h has
 * the same definition, under the same condition, so either header may come
 * first (tests/unit/test_service_abi.c checks that the two agree).
 */
#ifndef FERRY_SERVICE_ABI_H
/* Direction of a rule: packets from clients, or an upstream's replies. */
enum ferry_dir {
	FERRY_DIR_CLIENT = 0,
	FERRY_DIR_REPLY = 1,
};
#endif /* FERRY_SERVICE_ABI_H */

/*
 * With no AF_XDP socket on the packet's queue (ferryd dead or not up yet),
 * drop the flow's packets instead of passing them to the kernel: the flow's
 * on_failure: drop.
 */
#define FERRY_RULE_F_DROP_NO_SOCKET 0x01

/*
 * One flow-table entry.  A packet matches when every set field matches;
 * rules are tried in slot order and the first match wins.  A zero-length
 * prefix matches any address, a zero port range (lo = hi = 0) any port.
 * Slots are filled from 0 upwards; the first slot with `enabled == 0` ends
 * the table.  Addresses are in network byte order (IPv4 in addr[0]),
 * ports in host byte order.
 */
struct ferry_rule {
	__u32 flow_id;   /* index into the per-flow counter maps */
	__u8 enabled;
	__u8 family;     /* 4 or 6 */
	__u8 l4_proto;   /* IPPROTO_UDP, IPPROTO_TCP, ... */
	__u8 dir;        /* enum ferry_dir */
	__u8 dst_plen;   /* prefix length of dst, 0 = any */
	__u8 src_plen;   /* prefix length of src, 0 = any */
	__u8 flags;      /* FERRY_RULE_F_* */
	__u8 pad;
	__u16 dport_lo, dport_hi;
	__u16 sport_lo, sport_hi;
	__u32 ifindex;   /* only on this interface, 0 = any */
	__u32 dst[4];
	__u32 src[4];
};

/*
 * Per-flow steering counters, one per CPU (BPF_MAP_TYPE_PERCPU_ARRAY indexed
 * by flow_id), written only by the XDP program.
 */
struct ferry_flow_stats {
	__u64 packets;         /* matched this flow (both directions) */
	__u64 bytes;
	__u64 redirected;      /* handed to the queue's AF_XDP socket */
	__u64 passed_no_socket; /* no socket on that queue: XDP_PASS fallback */
	__u64 passed_fragment; /* IPv4 fragments, IPv6 extension headers: to the kernel, never steered */
	__u64 reply_packets;   /* of `packets`, matched a reply rule */
	__u64 icmp_errors;     /* of `reply_packets`, ICMP errors quoting a reply-rule tuple */
	__u64 dropped_no_socket; /* no socket on that queue, on_failure: drop: XDP_DROP */
	/*
	 * on_failure: drop, an IPv4 first fragment or an IPv6 packet with
	 * extension headers, which the kernel would otherwise get: XDP_DROP.
	 */
	__u64 dropped_fragment;
	__u64 dropped_source_route; /* IPv4 LSRR/SSRR option, any flow: XDP_DROP */
	/*
	 * Of `packets`, forwarded by the XDP fast path (an offloaded session:
	 * rewritten and redirected, never seen by a worker), and their bytes;
	 * the `_reply` ones of those, back to clients.  ferryd adds them into
	 * ferry_fwd_stats and ferry_svc_stats, so those count every packet of
	 * the flow whichever path it took.
	 */
	__u64 offloaded;
	__u64 offloaded_bytes;
	__u64 offloaded_reply;
	__u64 offloaded_reply_bytes;
	/* An offloaded session's packet the fast path could not redirect (no egress device): XDP_PASS. */
	__u64 offload_redirect_failed;
	/*
	 * An offloaded session's packet over its flow's ratelimit bucket in
	 * the fast path (struct ferry_rl_params): XDP_DROP, counted in
	 * `packets` too, never in `offloaded`.  Its bytes; the `_reply` ones
	 * of those; of all of them, those the byte bucket (not the packet
	 * bucket) was short for.  ferryd adds them into ferry_fwd_stats
	 * (rx, drop_rate_limited) and the chain's ferry_svc_stats.
	 */
	__u64 offload_rate_limited;
	__u64 offload_rate_limited_bytes;
	__u64 offload_rate_limited_reply;
	__u64 offload_rate_limited_reply_bytes;
	__u64 offload_rate_limited_over_bytes;
};

/*
 * Interface-wide counters of the XDP program (PERCPU_ARRAY, one entry),
 * so an operator can see what ferry did *not* take.
 */
struct ferry_xdp_stats {
	__u64 packets;         /* seen by the program */
	__u64 steered;         /* matched a rule */
	__u64 passed;          /* no rule matched: XDP_PASS */
	__u64 passed_malformed; /* could not be parsed: XDP_PASS */
	__u64 passed_fragment; /* a flow's fragment or IPv6 extension headers: XDP_PASS */
	__u64 dropped_policy;  /* a flow's dropped_fragment and dropped_source_route: XDP_DROP */
	__u64 offloaded;       /* of `steered`, forwarded in XDP by an offloaded session */
};

/*
 * Why the user-space data path dropped a packet (FERRY_DROP_REASONS, enum
 * ferry_drop_reason; the order is the layout of struct ferry_fwd_stats
 * below): services name them, so the service ABI defines them.  The XDP
 * program never drops with one.
 */
#ifndef __bpf__
#include "ferry_service.h"
#endif

/*
 * Per-flow data-path counters of the user-space workers.  Also a
 * PERCPU_ARRAY indexed by flow_id: ferryd publishes worker i's counters in
 * CPU slot i (modulo the number of CPUs) about once a second, so readers sum
 * the slots exactly as for the XDP counters.  The drop fields are spelled out
 * (not an array) so bpftool shows each reason by name.
 */
struct ferry_fwd_stats {
	__u64 rx_packets;      /* received from the AF_XDP sockets */
	__u64 rx_bytes;
	__u64 tx_packets;      /* transmitted towards an upstream */
	__u64 tx_bytes;
	__u64 reply_packets;   /* transmitted back towards a client */
	__u64 reply_bytes;
	__u64 sessions_created;
	__u64 sessions_expired;
	__u64 icmp_translated; /* ICMP errors about a session, rewritten for its client */
	__u64 handoff_packets; /* replies passed to the worker owning their NAT port */
	__u64 nat_port_probes; /* NAT ports tried for new sessions (bounded per attempt) */
	__u64 sessions_early_dropped; /* unreplied sessions evicted for new ones (table under pressure) */
	__u64 nh_lookups;      /* next-hop cache misses this flow's packets queued a kernel lookup for */
	__u64 sessions_offloaded;  /* sessions installed in the XDP fast path (ferry_sessions) */
	__u64 offload_full;        /* sessions left in user space: the fast path's table was full */
	__u64 drop_malformed;
	__u64 drop_no_session;
	__u64 drop_ttl_exceeded;
	__u64 drop_no_route;
	__u64 drop_no_neighbour;
	__u64 drop_nat_ports_exhausted;
	__u64 drop_session_table_full;
	__u64 drop_tx_ring_full;
	__u64 drop_too_big;
	__u64 drop_service;
	__u64 drop_handoff_full;
	__u64 drop_filtered;       /* denied by a filter service */
	__u64 drop_rate_limited;   /* over a ratelimit service's bucket */
	__u64 drop_bad_payload;    /* e.g. a compressed payload that does not inflate */
	__u64 drop_queue_full;     /* a service's bounded queue (pace) was full */
	__u64 drop_no_frame;       /* a service could not get a frame to emit a packet */
	__u64 drop_tcp_out_of_window; /* TCP RST or FIN outside the receiver's window */
	__u64 drop_hold_budget;    /* the worker's services held as many frames as they may */
	__u64 drop_source_session_limit; /* the client address has nat.max_sessions_per_source */
	__u64 drop_app_unavailable; /* an app slot with on_failure drop and no app answering */
};

#define FERRY_MAX_SERVICES 8   /* services per flow (== CFG_MAX_SERVICES) */
#define FERRY_SVC_NAME_LEN 32
#define FERRY_SVC_COUNTERS 4   /* service-specific counters, named in ferry_svc_info */

/*
 * Per-flow, per-service counters (PERCPU_ARRAY keyed by
 * flow_id * FERRY_MAX_SERVICES + position in the chain), published by ferryd
 * like ferry_fwd_stats.  The chain runner counts the generic fields for
 * every service; `counters` are the service's own, named in ferry_svc_info.
 */
struct ferry_svc_stats {
	__u64 packets_in;      /* handed to the service */
	__u64 bytes_in;
	__u64 passed;          /* went on to the next service */
	__u64 sent;            /* left the chain here for transmission */
	__u64 dropped;
	__u64 held;            /* kept by the service, sent or dropped later */
	__u64 emitted;         /* new packets it created */
	__u64 counters[FERRY_SVC_COUNTERS];
};

/* What each ferry_svc_stats slot is: its service and counter names. */
struct ferry_svc_info {
	char service[FERRY_SVC_NAME_LEN];
	char counter_names[FERRY_SVC_COUNTERS][FERRY_SVC_NAME_LEN];
	__u32 configured;
	__u32 pad;
};

/*
 * The flows' `app` slots (services/svc_app.c), for `ferryctl apps`: an
 * ARRAY of FERRY_MAX_APP_SLOTS written by ferryd's main thread at each
 * publish, in config order; unused entries have configured 0.
 */
#define FERRY_MAX_APP_SLOTS 64
#define FERRY_APP_SLOT_NAME_LEN 32

struct ferry_app_slot_stats {
	char slot[FERRY_APP_SLOT_NAME_LEN];
	__u32 configured;
	__u32 flow_id;
	__u32 owner_is_group;  /* owner_gid, else owner_uid */
	__u32 owner_uid;
	__u32 owner_gid;
	__u32 attached_pid;    /* 0: no application attached */
	__u32 attached_uid;
	__u32 on_failure_drop; /* 1: on_failure drop, 0: bypass */
	__u64 in;              /* payloads given to the application */
	__u64 out;             /* returned with PASS and sent on */
	__u64 dropped;         /* returned with DROP, or on_failure drop */
	__u64 bypassed;        /* on_failure bypass: no application, full queue, timeout */
	__u64 bad_desc;        /* descriptors that failed validation */
	__u64 timeouts;
	__u64 queue_depth;     /* packets with the application now, all queues */
	__u64 rtt_avg_ns;      /* average round trip, since the slot was configured */
	__u64 sleeps;          /* idle worker waits for the application's wake-up (eventfd) */
	__u64 emitted;         /* FERRY_APP_EMIT packets sent on */
	__u64 emit_dropped;    /* FERRY_APP_EMIT refused: no free frame (or hold budget) */
};

/*
 * lb's upstreams (services/svc_lb.c), for ferryctl stats: an ARRAY keyed by
 * flow_id * FERRY_LB_MAX_UPSTREAMS + the upstream's place in its list,
 * written by ferryd's main thread at each publish; unused entries have
 * configured 0.  Each names its upstream by address, so bpftool's dump reads
 * as ferryctl's.
 */
#define FERRY_LB_MAX_UPSTREAMS 16
#define FERRY_LB_ADDR_LEN 48

struct ferry_lb_upstream_stats {
	char address[FERRY_LB_ADDR_LEN]; /* "ADDR:PORT" or "[ADDR6]:PORT" */
	__u32 configured;
	__u32 up;               /* 1: takes new sessions by health; 0: marked down */
	__u32 weight;           /* 0: drained (no new sessions) */
	__u32 checked;          /* 1: the flow's lb has health checks */
	__u64 sessions;         /* new sessions it got */
	__u64 checks_ok;        /* good rounds (probe answered, no passive failure) */
	__u64 checks_failed;    /* failed rounds */
	__u64 passive_failures; /* ICMP unreachable about its sessions, RSTs to SYNs */
	__u64 went_down;        /* up -> down transitions */
	__u64 went_up;          /* down -> up transitions */
};

/* Name of each flow, so that ferryctl needs no config file to label counters. */
struct ferry_flow_info {
	char name[FERRY_FLOW_NAME_LEN];
	__u32 configured;      /* 1 when this flow_id is in use */
	__u32 offload;         /* 1: its established sessions may forward in XDP */
	char offload_why[48];  /* offload 0: why not ("offload: off", a service) */
};

#define FERRY_MAX_IFACES 8   /* configured interfaces (== CFG_MAX_IFACES) */

/*
 * The kernel's own counters of an interface (rtnetlink IFLA_STATS64, struct
 * rtnl_link_stats64): what it dropped never reaches ferry's counters.  A
 * veth counts here, as rx_dropped, the frames its peer could not queue to it
 * (a full ring: its NAPI thread did not run) and the XDP redirects into a
 * socket that failed; as tx_dropped, what ferry sent that the peer's ring
 * refused.
 */
struct ferry_link_stats {
	__u64 rx_packets;
	__u64 tx_packets;
	__u64 rx_dropped;
	__u64 tx_dropped;
	__u64 rx_errors;
	__u64 tx_errors;
	__u64 rx_missed_errors;
};

/*
 * One AF_XDP socket, (interface, queue): its kernel XDP_STATISTICS and
 * ferry's own port counters.  An ARRAY keyed by port * FERRY_MAX_QUEUES +
 * queue, where port is the interface's position in the config; the main
 * thread refreshes it at each publish (the XDP program never touches it).
 */
struct ferry_queue_stats {
	char ifname[16];
	__u32 ifindex;
	__u32 queue;
	__u32 configured;      /* 1 when this slot is a live socket */
	__u32 zerocopy;        /* 1 in zero-copy mode, 0 in copy mode */
	/* struct xdp_statistics, from getsockopt(SOL_XDP, XDP_STATISTICS) */
	__u64 rx_dropped;
	__u64 rx_invalid_descs;
	__u64 tx_invalid_descs;
	__u64 rx_ring_full;
	__u64 rx_fill_ring_empty_descs;
	__u64 tx_ring_empty_descs;
	/* ferry's struct port_stats */
	__u64 rx_packets;
	__u64 tx_packets;
	__u64 tx_ring_full;
	__u64 tx_kicks;
	__u64 fill_kicks;
	__u64 rx_invalid;
	__u64 busy_polls;
	/*
	 * Steered packets the worker could not parse or classify (a UDP length
	 * that disagrees with the IP length, say), dropped: they belong to no
	 * flow, so this interface-level counter is where they are counted.
	 */
	__u64 drop_malformed;
	/* The whole interface's (every queue's slot has the same copy). */
	struct ferry_link_stats link;
};

/*
 * The XDP fast path (daemon/offload.c installs, bpf/ferry_steer.bpf.c
 * forwards).  One entry per direction of an offloaded session, keyed by
 * the packet as it arrives: addresses and ports in network byte order
 * (IPv4 in [0], the rest zero), the interface it arrives on, and zeroed
 * padding, since the whole key is hashed.
 */
struct ferry_sess_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u32 ifindex;
	__u8 family;          /* 4 or 6 */
	__u8 l4_proto;        /* IPPROTO_UDP or IPPROTO_TCP */
	__u8 pad[2];
};

/*
 * What a packet of that key becomes: the session's precomputed rewrite
 * (lib/nat.h struct nat_rw: the same deltas the workers apply, so both
 * paths write the same bytes), and where it goes.
 */
struct ferry_sess {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 saddr[4];       /* the new source and destination, network order */
	__u32 daddr[4];
	__u16 sport;          /* network byte order */
	__u16 dport;
	__u16 ip_delta;       /* IPv4 header checksum: addresses and the TTL decrement */
	__u16 l4_delta;       /* L4 checksum: pseudo-header addresses and ports */
	__u32 egress_ifindex; /* key of ferry_tx_ports */
	__u16 mtu;            /* egress MTU, IP packet; 0 = unchecked */
	__u8 dir;             /* enum ferry_dir */
	__u8 pad;
	__u32 flow_id;
	__u32 stats_slot;     /* index in ferry_sess_stats */
	__u32 worker;         /* the worker that owns the session */
	__u32 pad2;
};

/*
 * Per entry and per CPU (PERCPU_ARRAY at ferry_sess.stats_slot), written by
 * the fast path only: what it forwarded, when (bpf_ktime_get_ns(), the
 * workers' CLOCK_MONOTONIC), and for TCP the furthest sequence end and
 * acknowledgement (with its window) the sender sent, which the owner takes
 * back into its window tracking when a FIN or RST reaches it
 * (offload__merge_stats() merges the CPUs' records).
 */
struct ferry_sess_stats {
	__u64 packets;
	__u64 bytes;
	__u64 last_seen_ns;
	__u32 tcp_seq_end;    /* host byte order */
	__u32 tcp_ack;
	__u32 tcp_win;        /* as sent, unscaled */
	__u32 tcp_valid;      /* 1 once a TCP segment was forwarded here */
};

/*
 * A flow's `ratelimit` service in the fast path (ARRAY keyed by flow_id,
 * written by ferryd at start and at each reload from the service's
 * configuration: services/svc_ratelimit.c).  The same integer token
 * buckets as the workers': a bucket holds up to `cap` units, refills `rate`
 * units per nanosecond (full after `fill_ns`), a packet costs `cost` units
 * of the packet bucket and frame bytes * `cost` units of the byte bucket.
 * A bucket with rate 0 is not configured.  `gen` 0: the flow has no
 * ratelimit; any other value names this configuration, and a bucket left
 * by another one (a reload, a reused flow id) starts again full.
 */
struct ferry_rl_bucket_params {
	__u64 rate;
	__u64 cap;
	__u64 cost;
	__u64 fill_ns;
};

struct ferry_rl_params {
	__u64 gen;
	struct ferry_rl_bucket_params pkt;
	struct ferry_rl_bucket_params byte;
	__u8 dirs;            /* 1 << enum ferry_dir: the directions limited */
	__u8 per_source;      /* 1: a bucket per source address, else one per flow */
	__u8 pad[6];
};

/*
 * One bucket, per CPU: in ferry_rl_flow (PERCPU_ARRAY by flow_id) or
 * ferry_rl_sources (LRU_PERCPU_HASH by struct ferry_rl_src_key).  All
 * zero, or of another `gen`, it is full.
 */
struct ferry_rl_bucket {
	__u64 pkt_tokens;
	__u64 byte_tokens;
	__u64 last_ns;
	__u64 gen;
};

struct ferry_rl_src_key {
	__u32 addr[4];        /* the packet's source, network order, IPv4 in [0] */
	__u32 flow_id;
	__u8 family;
	__u8 pad[3];
};

/* Source buckets for all flows together (ferry_rl_sources): the least recently used go. */
#define FERRY_RL_MAX_SOURCES 16384

/*
 * ferryd's liveness, for `ferryctl health` (and a routing daemon's announcer
 * driven by it, docs/fleet.md).  One entry, written by the main thread at
 * start, at every publish and at stop; the XDP program never touches it.
 * Times are CLOCK_MONOTONIC nanoseconds, which every namespace shares.
 */
enum ferry_health_state {
	FERRY_HEALTH_STARTING = 0, /* pinned, not yet forwarding */
	FERRY_HEALTH_RUNNING = 1,
	FERRY_HEALTH_STOPPING = 2, /* SIGTERM: tearing down */
};

struct ferry_health_port {
	char ifname[16];
	__u32 ifindex;
	__u32 prog_id;         /* ferry_steer's program id on it, as attached */
};

struct ferry_health {
	__u64 published_ns;    /* the main loop's last write */
	__u64 interval_ns;     /* how often it writes */
	__u32 state;           /* enum ferry_health_state */
	__u32 pid;             /* ferryd's, in its own pid namespace */
	__u32 nr_workers;
	__u32 nr_ports;
	/* The last write at which worker i's loop count had moved (they loop at least every 100 ms). */
	__u64 worker_loop_ns[FERRY_MAX_QUEUES];
	struct ferry_health_port ports[FERRY_MAX_IFACES];
};

/* Pin names under the configured pin path (default /sys/fs/bpf/ferry). */
#define FERRY_PIN_RULES "ferry_rules"
#define FERRY_PIN_FLOW_STATS "ferry_flow_stats"
#define FERRY_PIN_FWD_STATS "ferry_fwd_stats"
#define FERRY_PIN_FLOW_INFO "ferry_flow_info"
#define FERRY_PIN_XDP_STATS "ferry_xdp_stats"
#define FERRY_PIN_XSKS "ferry_xsks"
#define FERRY_PIN_SVC_STATS "ferry_svc_stats"
#define FERRY_PIN_SVC_INFO "ferry_svc_info"
#define FERRY_PIN_APP_SLOTS "ferry_app_slots"
#define FERRY_PIN_LB_UPSTREAMS "ferry_lb_upstreams"
#define FERRY_PIN_QUEUE_STATS "ferry_queue_stats"
#define FERRY_PIN_SESSIONS "ferry_sessions"
#define FERRY_PIN_SESS_STATS "ferry_sess_stats"
#define FERRY_PIN_TX_PORTS "ferry_tx_ports"
#define FERRY_PIN_RL_PARAMS "ferry_rl_params"
#define FERRY_PIN_RL_FLOW "ferry_rl_flow"
#define FERRY_PIN_RL_SOURCES "ferry_rl_sources"
/* ferry_steer attached alone on interface IF: FERRY_PIN_PROG "_" IF (daemon/steer.c). */
#define FERRY_PIN_PROG "ferry_steer"
#define FERRY_PIN_HEALTH "ferry_health"

#endif /* FERRY_SHARED_H */
