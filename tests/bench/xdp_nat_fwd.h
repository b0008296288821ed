/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Records shared by xdp_nat_fwd.bpf.c and its loader xdp_nat_fwd.c.
 * Addresses and ports are in network byte order unless a comment says not.
 */
#ifndef FERRY_BENCH_XDP_NAT_FWD_H
#define FERRY_BENCH_XDP_NAT_FWD_H

#include <linux/types.h>

#define NAT_FWD_MAX_SESSIONS 65536

struct nat_fwd_cfg {
	__u32 flow_addr;       /* F: what clients send to */
	__u32 upstream_addr;   /* U */
	__u32 egress_addr;     /* E: the proxy's source towards U */
	__u16 flow_port;       /* f */
	__u16 upstream_port;   /* u */
	__u32 port_lo, port_hi; /* NAT ports, host order */
	__u32 upstream_ifindex;
	__u8 upstream_mac[6];  /* U's next hop */
	__u8 egress_mac[6];    /* the proxy's MAC on the upstream side */
};

/* A client as the proxy sees it: source address and port. */
struct nat_fwd_key {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

struct nat_fwd_session {
	__u8 client_mac[6];       /* learned from the client's first frame */
	__u8 proxy_client_mac[6]; /* the proxy's MAC on the client side */
	__u32 client_ifindex;
	__u16 nat_port;
	__u16 pad;
};

struct nat_fwd_stats {
	__u64 to_upstream;
	__u64 to_client;
	__u64 sessions;
	__u64 no_port;     /* no free NAT port (or a racing insert): dropped */
	__u64 no_session;  /* a reply with no session: dropped */
	__u64 passed;      /* not the flow: to the kernel */
};

#endif /* FERRY_BENCH_XDP_NAT_FWD_H */
