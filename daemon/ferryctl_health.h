/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ferryctl health: is the ferryd pinned at a pin path alive and forwarding,
 * once or as a watcher that runs commands (a routing daemon's announce and
 * withdraw) when the answer changes.  See daemon/ferryctl_health.c.
 */
#ifndef FERRY_FERRYCTL_HEALTH_H
#define FERRY_FERRYCTL_HEALTH_H

/* argv[0] is "health"; returns ferryctl's exit status. */
int ferryctl_health(const char *pin_path, int argc, char **argv);

#endif /* FERRY_FERRYCTL_HEALTH_H */
