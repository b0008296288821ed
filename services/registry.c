// SPDX-License-Identifier: BSD-2-Clause
/* The one table of built-in services. */
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
};

const struct ferry_service_ops *service__find(const char *name)
{
	for (size_t i = 0; i < sizeof(builtin_services) / sizeof(builtin_services[0]); i++)
		if (!strcmp(builtin_services[i]->name, name))
			return builtin_services[i];
	return NULL;
}

void service__foreach(void (*fn)(const struct ferry_service_ops *ops, void *ctx), void *ctx)
{
	for (size_t i = 0; i < sizeof(builtin_services) / sizeof(builtin_services[0]); i++)
		fn(builtin_services[i], ctx);
}
