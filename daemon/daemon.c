// SPDX-License-Identifier: BSD-2-Clause
/* What the daemon offers services and workers (see services/service.h). */
#include <errno.h>

#include "daemon.h"

int ferry_daemon__port_of_ifindex(struct ferry_daemon *d, int ifindex)
{
	for (int i = 0; i < d->nr_ports; i++)
		if (d->ports[i].ifindex == ifindex)
			return i;
	return -ENOENT;
}

int ferry_daemon__add_rule(struct ferry_daemon *d, const struct ferry_rule *rule)
{
	if (d->nr_rules >= FERRY_MAX_RULES)
		return -ENOSPC;
	d->rules[d->nr_rules++] = *rule;
	return 0;
}

const struct ferry_config *ferry_daemon__config(struct ferry_daemon *d)
{
	return &d->cfg;
}
