// SPDX-License-Identifier: BSD-2-Clause
/*
 * Which of ferry's interfaces the XDP fast path may redirect to
 * (ferry_tx_ports), kept current by the main thread.
 *
 * A packet redirected by an XDP program in driver mode leaves through the
 * egress driver's ndo_xdp_xmit, which a veth offers only while its peer
 * runs an XDP program or has GRO on (its NAPI exists); a redirect it cannot
 * take is lost.  The driver says which it is (xdp_features.h), and that
 * changes as the peer changes, so it is asked again at every publish; an
 * interface that cannot take redirects is left out of the map, and the fast
 * path hands its sessions' packets to the workers instead (counted as
 * offload_redirect_failed).  Redirects from generic (skb) mode go through
 * the stack and work to any device: with every interface in skb mode, all
 * are in.
 */
#include <errno.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "offload.h"
#include "steer.h"
#include "xdp_features.h"

void offload__follow_egress(struct ferry_daemon *d)
{
	bool any_native = false;

	for (int i = 0; i < d->nr_ports; i++) {
		const char *mode = steer__mode_name(d->steer, d->ports[i].ifname);

		if (mode && strcmp(mode, "skb"))
			any_native = true;
	}
	for (int i = 0; i < d->nr_ports; i++) {
		uint64_t feat = 0;
		bool ok = true;
		int err = any_native ? xdp_features__get(d->ports[i].ifindex, &feat) : 0;

		/* A kernel that cannot say (before 6.3): drivers of that age took them. */
		if (any_native && !err)
			ok = feat & XDP_FEAT_NDO_XMIT;
		if (d->egress_state[i] == (ok ? 1 : 2))
			continue;
		if (steer__set_tx_port(d->steer, d->ports[i].ifindex, ok)) {
			pr_warn("iface %s: cannot update %s: %s", d->ports[i].ifname,
				FERRY_PIN_TX_PORTS, strerror(errno));
			continue;
		}
		if (ok)
			pr_info("iface %s: takes XDP redirects: offloaded sessions leave by it from XDP",
				d->ports[i].ifname);
		else
			pr_warn("iface %s: cannot take XDP redirects (a veth whose peer runs no XDP "
				"program and has GRO off?): sessions leaving by it stay on the AF_XDP "
				"path",
				d->ports[i].ifname);
		d->egress_state[i] = ok ? 1 : 2;
	}
}
