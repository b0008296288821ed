/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * How many workers ferryd starts: `queues` against the interfaces' channels.
 *
 * A worker serves queue i of every interface (one AF_XDP socket per
 * interface, all on its own UMEM) and transmits on every interface through
 * that socket, so the count is one number for all interfaces.  A NIC's RSS
 * spreads a flow's packets over all its channels: a queue without a socket
 * passes its packets to the kernel (counted only as passed_no_socket), so
 * serving fewer queues than an interface has is refused unless the config
 * says so (unserved_queues: kernel).
 *
 *   queues: auto (default)  the interfaces' channel count, which must be the
 *                           same on all of them; with unserved_queues: kernel
 *                           the smallest, the rest of the larger ones unserved
 *   queues: N               N workers; an interface with fewer than N
 *                           channels is refused, one with more needs
 *                           unserved_queues: kernel
 */
#ifndef FERRY_QUEUES_H
#define FERRY_QUEUES_H

#include <stdint.h>

#include "config.h"

/* An interface's channel count, or -errno: queues__channels() or a test's. */
typedef int (*queues_channels_fn)(const char *ifname, uint32_t *count, void *ctx);

/*
 * The RX queues packets may arrive on: combined + rx-only channels
 * (ETHTOOL_GCHANNELS; a veth has rx channels only), or the queues sysfs
 * lists when the driver does not report channels.  -ENODEV when there is no
 * such interface.
 */
int queues__channels(const char *ifname, uint32_t *count, void *ctx);

/*
 * Sets cfg->queues from the interfaces' channels (auto) or checks the
 * explicit count against them, as above; each refusal is reported through
 * errs naming the interface, at its FILE:LINE:COL.  Serving fewer queues
 * than an interface has, when allowed, is logged as a warning.  Returns 0
 * or -EINVAL.
 */
int queues__resolve(struct ferry_config *cfg, queues_channels_fn channels, void *ctx,
		    struct cfg_errors *errs);

#endif /* FERRY_QUEUES_H */
