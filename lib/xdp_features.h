/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What XDP can do with an interface, as its driver says (the kernel's
 * netdev generic netlink family, NETDEV_A_DEV_XDP_FEATURES, Linux 6.3 on).
 * ferryd asks whether an interface can take packets redirected to it by an
 * XDP program in driver mode (NDO_XMIT): a veth can only while its peer
 * runs an XDP program or has GRO on, and a redirect it cannot take is lost.
 * Main thread only; one request per call.
 */
#ifndef FERRY_XDP_FEATURES_H
#define FERRY_XDP_FEATURES_H

#include <stdint.h>

/* enum netdev_xdp_act (linux/netdev.h, newer than Debian 12's headers). */
#define XDP_FEAT_BASIC 0x01
#define XDP_FEAT_REDIRECT 0x02
#define XDP_FEAT_NDO_XMIT 0x04

/*
 * The interface's XDP feature bits into *features; 0, or -errno (-ENOENT
 * when the kernel has no netdev family: older than 6.3).
 */
int xdp_features__get(int ifindex, uint64_t *features);

#endif /* FERRY_XDP_FEATURES_H */
