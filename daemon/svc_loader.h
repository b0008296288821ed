/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Out-of-tree services: a flow that names a service which is not built in
 * gets SERVICE_DIR/NAME.so, loaded with dlopen() and used through the same
 * struct ferry_service_ops as the built-in ones.  The object must export
 * FERRY_SERVICE_SYMBOL with abi_version == FERRY_SERVICE_ABI_VERSION and
 * ops->name == NAME.  Since the object runs inside ferryd with all its
 * privileges, it and its directory must be owned by root and writable by
 * nobody else.
 *
 * ferryd exports the service ABI's functions (services/ferry_service.map)
 * and nothing else, so an object's calls to them resolve against ferryd
 * itself; objects are loaded with RTLD_NOW, so one that needs any other
 * symbol of ferryd is refused at load instead of failing mid-packet.
 *
 * Main thread only.  Each object is loaded once however many flows use it,
 * and stays loaded until svc_loader__destroy(), which must come after every
 * service's destroy().
 */
#ifndef FERRY_SVC_LOADER_H
#define FERRY_SVC_LOADER_H

#include "config.h"
#include "service.h"

struct svc_loader;

/* `dir` is copied; 0 or -ENOMEM. */
int svc_loader__create(struct svc_loader **out, const char *dir);

/*
 * The ops of out-of-tree service `svc->name`, loading it on first use; NULL
 * after reporting why at the service's FILE:LINE:COL through errs.
 */
const struct ferry_service_ops *svc_loader__get(struct svc_loader *l, const struct cfg_service *svc,
						struct cfg_errors *errs);

/* How many objects are loaded. */
int svc_loader__count(const struct svc_loader *l);

/* dlclose()s every object; NULL is fine. */
void svc_loader__destroy(struct svc_loader *l);

#endif /* FERRY_SVC_LOADER_H */
