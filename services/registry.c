// SPDX-License-Identifier: BSD-2-Clause
/* The one table of built-in services. */
#include <stdio.h>
#include <string.h>

#include "service.h"

extern const struct ferry_service_ops svc_forward_ops;
extern const struct ferry_service_ops svc_compress_ops;
extern const struct ferry_service_ops svc_decompress_ops;
extern const struct ferry_service_ops svc_pace_ops;
extern const struct ferry_service_ops svc_tap_ops;
extern const struct ferry_service_ops svc_filter_ops;
extern const struct ferry_service_ops svc_ratelimit_ops;
extern const struct ferry_service_ops svc_lb_ops;
extern const struct ferry_service_ops svc_mirror_ops;
extern const struct ferry_service_ops svc_fanout_ops;
extern const struct ferry_service_ops svc_app_ops;

static const struct ferry_service_ops *const builtin_services[] = {
	&svc_forward_ops,
	&svc_compress_ops,
	&svc_decompress_ops,
	&svc_pace_ops,
	&svc_tap_ops,
	&svc_filter_ops,
	&svc_ratelimit_ops,
	&svc_lb_ops,
	&svc_mirror_ops,
	&svc_fanout_ops,
	&svc_app_ops,
};

const struct ferry_service_ops *service__find(const char *name)
{
	for (size_t i = 0; i < sizeof(builtin_services) / sizeof(builtin_services[0]); i++)
		if (!strcmp(builtin_services[i]->name, name))
			return builtin_services[i];
	return NULL;
}

bool service__offloadable(const struct ferry_service_ops *ops, const void *conf, char *why,
			  size_t len)
{
	if (ops == &svc_forward_ops || ops == &svc_lb_ops)
		return true;
	if (ops == &svc_filter_ops)
		return svc_filter__offloadable(conf, why, len);
	if (ops == &svc_ratelimit_ops)
		return svc_ratelimit__offloadable(conf, why, len);
	if (service__find(ops->name) != ops)
		snprintf(why, len, "%s: out-of-tree service", ops->name);
	else
		snprintf(why, len, "%s: works on payload or timing", ops->name);
	return false;
}

void service__offload_counters(const struct ferry_service_ops *ops, const void *conf,
			       uint64_t client, uint64_t reply,
			       uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	if (ops == &svc_filter_ops)
		svc_filter__offload_counters(conf, client, reply, counters);
}

void service__offload_drop_counters(const struct ferry_service_ops *ops, const void *conf,
				    uint64_t over_packets, uint64_t over_bytes,
				    uint64_t counters[FERRY_SERVICE_COUNTERS])
{
	if (ops == &svc_ratelimit_ops)
		svc_ratelimit__offload_counters(conf, over_packets, over_bytes, counters);
}

bool service__is_ratelimit(const struct ferry_service_ops *ops)
{
	return ops == &svc_ratelimit_ops;
}

void service__foreach(void (*fn)(const struct ferry_service_ops *ops, void *ctx), void *ctx)
{
	for (size_t i = 0; i < sizeof(builtin_services) / sizeof(builtin_services[0]); i++)
		fn(builtin_services[i], ctx);
}
