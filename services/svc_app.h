/* SPDX-License-Identifier: BSD-2-Clause */
/* The `app` service's configuration, for ferryd's control socket and ferryctl apps. */
#ifndef FERRY_SVC_APP_H
#define FERRY_SVC_APP_H

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

struct svc_app_conf {
	char name[FERRY_APP_NAME_LEN];
	uint32_t flow_id;
	bool owner_is_group;  /* owner_gid, else owner_uid */
	uid_t owner_uid;
	gid_t owner_gid;
	enum svc_app_failure on_failure;
	uint32_t ring_size;   /* frames and ring entries per worker queue */
	uint64_t timeout_ns;
};

/* A UDP or TCP packet with at least one payload byte: what an application sees. */
bool svc_app__has_payload(const struct ferry_pkt *p);

#endif /* FERRY_SVC_APP_H */
