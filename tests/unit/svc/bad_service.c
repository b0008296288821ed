// SPDX-License-Identifier: BSD-2-Clause
/*
 * Service objects that daemon/svc_loader.c must refuse, one per build
 * (-DSVC_VARIANT_<name>, file <name>.so; see the Makefile), for
 * tests/unit/test_svc_loader.c.  Each is wrong in exactly one way, so each
 * refusal is the one the test expects and not an earlier one.
 */
#include <ferry/ferry_service.h>

__attribute__((unused)) static void bad_process(void *conf, void *wstate, struct ferry_worker *w,
						struct ferry_batch *b)
{
}

#if defined(SVC_VARIANT_bad_abi)
/* Built against an older ferry_service.h. */
__attribute__((visibility("default"))) const struct ferry_service_ops ferry_service = {
	.name = "bad_abi",
	.abi_version = 1,
	.process = bad_process,
};
#elif defined(SVC_VARIANT_no_symbol)
/* Exported under a name the loader does not look for. */
__attribute__((visibility("default"))) const struct ferry_service_ops ferry_service_ops = {
	.name = "no_symbol",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = bad_process,
};
#elif defined(SVC_VARIANT_wrong_name)
/* A renamed file: the object says it is another service. */
__attribute__((visibility("default"))) const struct ferry_service_ops ferry_service = {
	.name = "right_name",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = bad_process,
};
#elif defined(SVC_VARIANT_unresolved)
/* Calls a function ferryd does not have (a newer ABI's, say). */
void ferry_worker__no_such_function(struct ferry_worker *w);

static void unresolved_process(void *conf, void *wstate, struct ferry_worker *w,
			       struct ferry_batch *b)
{
	ferry_worker__no_such_function(w);
}

__attribute__((visibility("default"))) const struct ferry_service_ops ferry_service = {
	.name = "unresolved",
	.abi_version = FERRY_SERVICE_ABI_VERSION,
	.process = unresolved_process,
};
#else
#error "build with -DSVC_VARIANT_<name>"
#endif
