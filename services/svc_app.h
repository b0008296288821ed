/* SPDX-License-Identifier: BSD-2-Clause */
/* The `app` service's configuration, for ferryd's control socket and ferryctl apps. */
#ifndef FERRY_SVC_APP_H
#define FERRY_SVC_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ferry_app.h"

struct ferry_pkt;

#define SVC_APP_MIN_RING 64
#define SVC_APP_MAX_RING 4096
#define SVC_APP_DEFAULT_RING 1024

enum svc_app_failure {
	SVC_APP_BYPASS = 0, /* the packet goes on along the chain */
	SVC_APP_DROP,       /* dropped as app_unavailable */
};

/*
 * What the main thread (daemon/control.c) and the slot's workers share,
 * without locks.  `gen` is odd while an application is attached: the main
 * thread sets area and wake_app_fd, then publishes gen + 1 (release).  A
 * worker that sees a new gen (acquire) at its next process() or tick()
 * drops its state for the old one (its in-flight packets take on_failure),
 * takes up the new one, and stores it in ack[its id] (release).  The main
 * thread unmaps an area only once every worker has acknowledged the even
 * gen that detached it.
 */
struct svc_app_slot {
	_Atomic uint64_t gen;
	uint8_t *area;
	int wake_app_fd;
	/* The eventfd the application writes to wake a worker that sleeps on FROM_APP. */
	int wake_ferry_fd;
	_Atomic uint64_t ack[FERRY_APP_MAX_QUEUES];
	/* A worker's request: the application stopped answering. */
	_Atomic bool hung;
	/* Per worker, for ferryctl apps: packets out now, round trips. */
	struct {
		_Atomic uint64_t depth, rtt_ns, rtts, out, dropped, sleeps, emitted, emit_dropped;
	} wstat[FERRY_APP_MAX_QUEUES];
	/* The main thread's: who is attached (0 when nobody). */
	int pid;
	uid_t uid;
};

struct svc_app_conf {
	char name[FERRY_APP_NAME_LEN];
	uint32_t flow_id;
	bool owner_is_group;  /* owner_gid, else owner_uid */
	uid_t owner_uid;
	gid_t owner_gid;
	enum svc_app_failure on_failure;
	uint32_t ring_size;   /* frames and ring entries per worker queue */
	uint64_t timeout_ns;
	int pos;              /* the service's position in its flow's chain */
	uint64_t serial;      /* unique per configure(): a reload's new conf may reuse an address */
	struct svc_app_slot slot;
};

/* For daemon/control.c: is `ops` the app service's. */
bool svc_app__is_app(const struct ferry_service_ops *ops);
/*
 * Whether conf, configured with this serial, is still configured (main
 * thread): a reload may destroy it, and configure another at its address.
 */
bool svc_app__alive(const struct svc_app_conf *conf, uint64_t serial);

/* A UDP or TCP packet with at least one payload byte: what an application sees. */
bool svc_app__has_payload(const struct ferry_pkt *p);

#endif /* FERRY_SVC_APP_H */
