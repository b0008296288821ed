/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What ferry was built from: the version, from the first line of
 * debian/changelog (the one place it is written), and the git commit when
 * built from a git tree.  The Makefile passes both as -DFERRY_VERSION and
 * -DFERRY_COMMIT to lib/version.c only, so a new commit rebuilds one object.
 */
#ifndef FERRY_VERSION_H
#define FERRY_VERSION_H

struct ferry_build_info {
	const char *version; /* "0.1.0" */
	const char *commit;  /* "3f2a9c1d0b4e", "...-dirty", or "" outside git */
};

extern const struct ferry_build_info ferry_build_info;

/* ferry_build_info.version: what --version prints and the metrics label. */
const char *ferry_version(void);

#endif
