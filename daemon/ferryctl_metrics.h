/* SPDX-License-Identifier: BSD-2-Clause */
/* ferryctl metrics: Prometheus text over HTTP (daemon/ferryctl_metrics.c). */
#ifndef FERRYCTL_METRICS_H
#define FERRYCTL_METRICS_H

#include <stdio.h>

/*
 * `ferryctl stats --format prometheus` into out, from the maps under
 * pin_path, opened for this report and closed after it (daemon/ferryctl.c).
 * 0 or -errno, each failure already told on stderr.
 */
int ferryctl_prometheus(const char *pin_path, FILE *out);

/* `ferryctl metrics ARGS...` (argv[0] is "metrics"): returns the exit status. */
int ferryctl_metrics_main(const char *pin_path, int argc, char **argv);

#endif /* FERRYCTL_METRICS_H */
