/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kernel's counters of a network interface (rtnetlink RTM_GETLINK,
 * IFLA_STATS64), for what the kernel dropped before or after ferry: a full
 * veth ring, an XDP redirect that failed, a transmit the device refused.
 * One netlink request and reply per call: main thread only, never on the
 * packet path.
 */
#ifndef FERRY_LINK_STATS_H
#define FERRY_LINK_STATS_H

#include "ferry_shared.h"

/* 0, -ENODEV when no interface has that index here, or another -errno. */
int link_stats__get(int ifindex, struct ferry_link_stats *out);

#endif /* FERRY_LINK_STATS_H */
