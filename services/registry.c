// SPDX-License-Identifier: BSD-2-Clause
/* The one table of built-in services. */
#include <string.h>

#include "service.h"

extern const struct ferry_service_ops svc_forward_ops;

static const struct ferry_service_ops *const builtin_services[] = {
	&svc_forward_ops,
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
