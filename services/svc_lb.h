/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What ferryd's publisher reads of an lb flow (services/svc_lb.c): its
 * upstreams by address, their health and counters, for ferry_lb_upstreams.
 */
#ifndef FERRY_SVC_LB_H
#define FERRY_SVC_LB_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry_shared.h"
#include "service.h"

bool svc_lb__is_lb(const struct ferry_service_ops *ops);
/*
 * Fills out[0..n) for lb's conf, n its number of upstreams (at most
 * FERRY_LB_MAX_UPSTREAMS); main thread, off the packet path.
 */
uint32_t svc_lb__upstreams(void *conf, struct ferry_lb_upstream_stats out[FERRY_LB_MAX_UPSTREAMS]);

/* Whether lb's conf lists the upstream addr:port (reload: sessions to others are removed). */
bool svc_lb__has_upstream(void *conf, const union ferry_addr *addr, uint16_t port);
/*
 * reload, before start() of the new conf `nconf` of an updated flow: each
 * upstream both list starts in the state the running `oconf` has for it,
 * with its health counters.
 */
void svc_lb__adopt(void *nconf, void *oconf);

/*
 * reload, workers parked, the running conf's worker states destroyed: each
 * upstream both list keeps its count of new sessions in the new conf.
 */
void svc_lb__carry_sessions(void *nconf, void *oconf);

/* The health state of lb's conf (lb_health.h): for the unit tests, to mark upstreams. */
struct lb_checker *svc_lb__checker(void *conf);

#endif /* FERRY_SVC_LB_H */
