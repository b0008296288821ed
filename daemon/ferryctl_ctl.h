/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ferryctl's subcommands that talk to ferryd over its control socket
 * (daemon/control_proto.h) rather than reading the pinned maps.
 */
#ifndef FERRY_FERRYCTL_CTL_H
#define FERRY_FERRYCTL_CTL_H

/* Exit statuses beside ferryctl's own (0 ok, 2 usage, 3 permission denied). */
#define FERRYCTL_EXIT_REFUSED 1     /* ferryd refused the reload */
#define FERRYCTL_EXIT_PERM 3        /* not root, ferryd's user or control_group */
#define FERRYCTL_EXIT_NO_FERRYD 4   /* nothing answers on the control socket */

/* Connected to ferryd's control socket at path, or -1 with a message printed. */
int ferryctl_connect(const char *path);
/* `ferryctl reload [--dry-run] [--socket PATH]`: argv[0] is "reload". */
int ferryctl_reload(int argc, char **argv);
/* `ferryctl sessions [--flow NAME] [--addr ADDRESS] [--limit N] [--json] [--socket PATH]`. */
int ferryctl_sessions(int argc, char **argv);

#endif /* FERRY_FERRYCTL_CTL_H */
