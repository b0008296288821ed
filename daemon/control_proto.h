/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ferryctl's operations on ferryd's control socket (config `control_socket`),
 * beside the applications' FERRY_CTL_ATTACH (services/ferry_app.h, whose ABI
 * this leaves alone: an admin request has the same first 16 bytes, magic,
 * version, op, and its own ops' numbers are far from the apps' ones).
 * Not installed: ferryd and ferryctl are built from the same tree.
 *
 * Admin ops are allowed to root, ferryd's own uid and members of the
 * config's `control_group`, by the peer's credentials (SO_PEERCRED,
 * SO_PEERGROUPS); anyone else gets -EPERM and the connection is closed.
 *
 * FERRY_CTL_RELOAD: ferryd's main loop reloads its config file as on SIGHUP
 * (or, with FERRY_CTL_DRY_RUN, validates and diffs it without applying) and
 * answers with a text report in one or more struct ferry_ctl_text messages,
 * the last with `more` 0.  status 0: applied (or would apply); -EINVAL and
 * others: refused, the text says why.
 *
 * FERRY_CTL_SESSIONS: one chunk of the NAT sessions, from the cursor
 * (worker, slot) on, filtered; answered with one struct
 * ferry_ctl_sessions_reply and its records.  The client asks again from
 * next_worker/next_slot until `done`.  Each chunk is a snapshot of part of
 * one worker's table taken by that worker between two packet bursts; the
 * listing as a whole is not one snapshot (sessions created or removed
 * meanwhile may or may not show).
 */
#ifndef FERRY_CONTROL_PROTO_H
#define FERRY_CONTROL_PROTO_H

#include <stdint.h>

#include "ferry_app.h"

enum ferry_ctl_admin_op {
	FERRY_CTL_RELOAD = 0x100,
	FERRY_CTL_SESSIONS = 0x101,
};

#define FERRY_CTL_DRY_RUN 0x1 /* FERRY_CTL_RELOAD: report, apply nothing */

/* Filters of FERRY_CTL_SESSIONS (flags). */
#define FERRY_CTL_SESS_FLOW 0x1 /* only flow `flow` */
#define FERRY_CTL_SESS_ADDR 0x2 /* only sessions whose client or upstream address is `addr` */

/* Records per chunk at most: a reply stays well under the socket's buffer. */
#define FERRY_CTL_SESS_CHUNK 256

struct ferry_ctl_admin_request {
	uint32_t magic;   /* FERRY_APP_MAGIC */
	uint32_t version; /* FERRY_APP_VERSION */
	uint32_t op;      /* enum ferry_ctl_admin_op */
	uint32_t flags;
	/* FERRY_CTL_SESSIONS */
	uint32_t worker;  /* cursor: start at this worker's ... */
	uint32_t slot;    /* ... table slot */
	uint32_t max;     /* records wanted, 1..FERRY_CTL_SESS_CHUNK */
	uint8_t family;   /* of addr: 4 or 6 */
	uint8_t pad[3];
	uint8_t addr[16];
	char flow[FERRY_APP_NAME_LEN];
};

struct ferry_ctl_text {
	uint32_t magic;
	uint32_t version;
	int32_t status; /* the outcome, the same in every part */
	uint32_t more;  /* 1: another part follows */
	uint32_t len;   /* of text, no NUL */
	uint32_t pad;
	char text[4072];
};

enum ferry_ctl_sess_flag {
	FERRY_CTL_SESS_OFFLOADED = 0x1, /* forwarded in XDP: its counters include the fast path's */
	FERRY_CTL_SESS_REPLIED = 0x2,
	FERRY_CTL_SESS_ASSURED = 0x4,
};

struct ferry_ctl_session {
	uint8_t family;     /* 4 or 6 */
	uint8_t proto;      /* IPPROTO_UDP, IPPROTO_TCP */
	uint8_t tcp_state;  /* lib/tcp_state.h's enum, TCP only */
	uint8_t flags;      /* enum ferry_ctl_sess_flag */
	uint32_t flow_id;
	uint32_t worker;
	uint32_t pad;
	uint8_t client[16]; /* addresses in network order, IPv4 in the first 4 bytes */
	uint8_t flow[16];   /* the flow address the client sent to */
	uint8_t nat[16];    /* ferry's egress address, with nat_port */
	uint8_t upstream[16];
	uint16_t client_port, flow_port, nat_port, upstream_port; /* host order */
	uint64_t age_ms, idle_ms;
	uint64_t packets_out, bytes_out; /* client -> upstream */
	uint64_t packets_in, bytes_in;   /* upstream -> client */
	char flow_name[FERRY_APP_NAME_LEN];
};

struct ferry_ctl_sessions_reply {
	uint32_t magic;
	uint32_t version;
	int32_t status;
	uint32_t nr;          /* records that follow */
	uint32_t next_worker; /* the cursor to ask from next */
	uint32_t next_slot;
	uint32_t done;        /* 1: every worker's table was walked */
	uint32_t nr_workers;
	uint64_t total;       /* sessions in every table now, unfiltered */
	char message[96];     /* why, when status != 0 */
};

#endif /* FERRY_CONTROL_PROTO_H */
