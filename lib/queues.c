// SPDX-License-Identifier: BSD-2-Clause
/* How many workers ferryd starts: see queues.h. */
#include <dirent.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "queues.h"

/* What /sys/class/net/IFNAME/queues lists as rx-N: the device's real RX queues. */
static int sysfs_rx_queues(const char *ifname, uint32_t *count)
{
	char path[64 + IF_NAMESIZE];
	struct dirent *de;
	uint32_t n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? -ENODEV : -errno;
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, "rx-", 3))
			n++;
	closedir(dir);
	if (!n)
		return -ENODATA;
	*count = n;
	return 0;
}

int queues__channels(const char *ifname, uint32_t *count, void *ctx)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = {};
	int fd, err = 0;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return -ENODEV;
	strcpy(ifr.ifr_name, ifname);
	ifr.ifr_data = (void *)&ch;
	/* AF_UNIX: the unit allows no AF_INET socket; the ioctl reaches the device all the same. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		err = -errno;
	close(fd);
	/* A driver without channels (no get_channels) has what sysfs lists. */
	if (err == -EOPNOTSUPP || (!err && !ch.combined_count && !ch.rx_count))
		return sysfs_rx_queues(ifname, count);
	if (err)
		return err;
	*count = ch.combined_count + ch.rx_count;
	return 0;
}

int queues__resolve(struct ferry_config *cfg, queues_channels_fn channels, void *ctx,
		    struct cfg_errors *errs)
{
	bool partial = cfg->unserved_queues == CFG_UNSERVED_KERNEL;
	uint32_t nr[CFG_MAX_IFACES], lo = UINT32_MAX, hi = 0;
	const struct cfg_port_range *r = &cfg->nat.ports;
	int before = errs->count, lo_i = 0, hi_i = 0;

	for (int i = 0; i < cfg->nr_ifaces; i++) {
		const struct cfg_iface *ifc = &cfg->ifaces[i];
		int err = channels(ifc->name, &nr[i], ctx);

		if (err) {
			if (err == -ENODEV)
				cfg_mark_error(errs, ifc->mark, "iface %s: no such interface",
					       ifc->name);
			else
				cfg_mark_error(errs, ifc->mark,
					       "iface %s: cannot read its channel count: %s",
					       ifc->name, strerror(-err));
			continue;
		}
		if (nr[i] < lo) {
			lo = nr[i];
			lo_i = i;
		}
		if (nr[i] > hi) {
			hi = nr[i];
			hi_i = i;
		}
	}
	if (errs->count != before)
		return -EINVAL;
	if (cfg->queues_auto) {
		/* A worker serves the same queue on every interface: one count for all. */
		if (lo != hi && !partial) {
			cfg_mark_error(errs, cfg->queues_mark,
				       "queues: auto: interface '%s' has %u channels but '%s' has %u; "
				       "a worker serves the same queue of every interface: give them "
				       "the same count (ethtool -L), or set unserved_queues: kernel "
				       "to serve %u of each",
				       cfg->ifaces[hi_i].name, hi, cfg->ifaces[lo_i].name, lo, lo);
			return -EINVAL;
		}
		if (lo > CFG_MAX_QUEUES) {
			cfg_mark_error(errs, cfg->ifaces[lo_i].mark,
				       "queues: auto: interface '%s' has %u channels, more than the "
				       "%d workers ferryd runs: reduce them (ethtool -L)",
				       cfg->ifaces[lo_i].name, lo, CFG_MAX_QUEUES);
			return -EINVAL;
		}
		cfg->queues = lo;
	}
	for (int i = 0; i < cfg->nr_ifaces; i++) {
		const struct cfg_iface *ifc = &cfg->ifaces[i];

		if (nr[i] < cfg->queues) {
			/* A worker's socket needs its queue on every interface. */
			cfg_mark_error(errs, ifc->mark,
				       "iface %s: has %u channel%s, fewer than queues: %u", ifc->name,
				       nr[i], nr[i] == 1 ? "" : "s", cfg->queues);
		} else if (nr[i] > cfg->queues && !partial) {
			cfg_mark_error(errs, ifc->mark,
				       "iface %s: has %u channels but queues is %u: the packets of "
				       "queues %u-%u would go to the kernel, not ferry; set queues: "
				       "auto (or %u), or unserved_queues: kernel to accept that",
				       ifc->name, nr[i], cfg->queues, cfg->queues, nr[i] - 1, nr[i]);
		} else if (nr[i] > cfg->queues) {
			pr_warn("iface %s: serving %u of its %u channels (unserved_queues: kernel): "
				"packets arriving on queues %u-%u go to the kernel, not ferry",
				ifc->name, cfg->queues, nr[i], cfg->queues, nr[i] - 1);
		}
	}
	/* Each worker allocates NAT ports from its own slice of the range. */
	if (cfg->queues_auto && (uint32_t)(r->hi - r->lo) + 1 < cfg->queues)
		cfg_mark_error(errs, cfg->nat.ports_mark,
			       "nat.ports: range %u-%u has fewer ports than queues (auto: %u)", r->lo,
			       r->hi, cfg->queues);
	if (errs->count != before)
		return -EINVAL;
	if (cfg->queues_auto)
		pr_info("queues: auto: %u, the %s channel count", cfg->queues,
			lo == hi ? "interfaces'" : "smallest");
	return 0;
}
