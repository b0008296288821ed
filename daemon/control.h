/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ferryd's control socket (config `control_socket`): where applications
 * attach to the flows' `app` slots (services/ferry_app.h) and ferryctl asks
 * for a reload or the sessions (daemon/control_proto.h).  Main thread
 * only, polled from ferryd's main loop, never blocking on a client.
 */
#ifndef FERRY_CONTROL_H
#define FERRY_CONTROL_H

#include <poll.h>
#include <stdbool.h>

struct ferry_daemon;
struct control;
struct reload_report;

#define CONTROL_MAX_CLIENTS 64
/* pollfds control__fill() may use: the listener and every client. */
#define CONTROL_MAX_FDS (1 + CONTROL_MAX_CLIENTS)

/*
 * Creates the socket, after the workers started.  0 or -errno, logged; a
 * socket that cannot be opened fails only a config with `app` slots.
 */
int control__create(struct control **out, struct ferry_daemon *d);
/* After a reload: a first slot creates the socket; detached slots' clients go. */
void control__sync(struct control *c);
/* Fills pfd with what to poll; returns how many (at most CONTROL_MAX_FDS). */
int control__fill(struct control *c, struct pollfd *pfd);
/* Handles what poll() reported in pfd[0..n) as control__fill() filled it. */
void control__handle(struct control *c, const struct pollfd *pfd, int n);
/* At most `timeout` ms, less while a detached area waits for the workers. */
int control__timeout(const struct control *c, int timeout);
/*
 * ferryctl reload: a client asked for a reload (*dry_run: a dry run) that
 * the main loop is to run, as for SIGHUP, then report with
 * control__reload_done() (status 0 or the reload's -errno).
 */
bool control__reload_wanted(const struct control *c, bool *dry_run);
void control__reload_done(struct control *c, int status, const struct reload_report *rep);
/* Detaches every application, removes the socket file; after the workers stopped. */
void control__destroy(struct control *c);

#endif /* FERRY_CONTROL_H */
