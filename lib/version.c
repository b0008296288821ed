// SPDX-License-Identifier: BSD-2-Clause
/* The build's identity (see version.h). */
#include "version.h"

/* Builds that do not pass them (none of the Makefile's) still link. */
#ifndef FERRY_VERSION
#define FERRY_VERSION "unknown"
#endif
#ifndef FERRY_COMMIT
#define FERRY_COMMIT ""
#endif

const struct ferry_build_info ferry_build_info = {
	.version = FERRY_VERSION,
	.commit = FERRY_COMMIT,
};

const char *ferry_version(void)
{
	return ferry_build_info.version;
}
