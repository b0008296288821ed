// SPDX-License-Identifier: BSD-2-Clause
/*
 * The control socket: applications attach to `app` slots.
 *
 * An AF_UNIX SOCK_SEQPACKET socket, mode 0666: who may attach is decided per
 * slot from the peer's credentials (SO_PEERCRED) against the slot's owner,
 * not by the file's mode.  A client sends one struct ferry_ctl_request; an
 * attach that succeeds gets struct ferry_ctl_attach_reply and three
 * descriptors: the slot's packet area (a sealed memfd: it cannot shrink
 * under ferryd), the read end of the pipe ferryd writes to wake the
 * application, and the eventfd the application writes to wake a worker
 * that sleeps on FROM_APP (the workers read it with RWF_NOWAIT: its flags
 * are shared with the application).  The application stays attached while
 * the connection is open.  Everything is non-blocking: a client that sends
 * garbage or cannot take its reply is dropped, and logged.
 *
 * The same socket takes ferryctl's admin ops (daemon/control_proto.h):
 * reload (and its dry run), performed by the main loop as on SIGHUP, whose
 * report goes back in text messages, and the session listing, one chunk
 * per request, each chunk copied by the worker that owns the table
 * (daemon/sessions.h) while the main thread waits for it in its poll loop,
 * not blocked.  Admin ops are for root, ferryd's uid and the config's
 * control_group; the apps' attach is checked against each slot's owner.
 *
 * Detaching never frees an area the workers may still use: the slot's
 * generation goes even, and the area is unmapped once every worker has
 * acknowledged it (services/svc_app.h), at their next tick at the latest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <grp.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "app_area.h"
#include "control.h"
#include "control_proto.h"
#include "daemon.h"
#include "ferry_app.h"
#include "log.h"
#include "reload.h"
#include "sessions.h"
#include "svc_app.h"
#include "worker.h"

/* An area detached but maybe still in a worker's hands. */
#define CONTROL_FDS 4
#define CONTROL_SENT_FDS 3
/* A connection that has not attached by then is dropped: the socket is everyone's. */
#define CONTROL_IDLE_NS (5ull * 1000 * 1000 * 1000)
/* An admin's between two requests (ferryctl sessions piped into a pager). */
#define CONTROL_ADMIN_IDLE_NS (120ull * 1000 * 1000 * 1000)
/* After accept() ran out of descriptors, the listener rests this long (no busy loop). */
#define CONTROL_ACCEPT_PAUSE_NS (100ull * 1000 * 1000)
/* A worker that has not copied a listing's chunk by then is reported busy. */
#define CONTROL_SNAP_TIMEOUT_NS (2000ull * 1000 * 1000)
/* A reload's report, at most: the messages all fit the socket's buffer at once. */
#define CONTROL_REPORT_MAX (48 * 1024)
/*
 * The socket is every local user's: one must not fill the client table and
 * lock out ferryctl and the applications.  A uid holds at most this many
 * connections that have neither attached nor passed the admin check...
 */
#define CONTROL_UNAUTH_PER_UID 4
/* ...and the last slots are kept for root, ferryd's uid and control_group. */
#define CONTROL_RESERVED 8

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct pending {
	struct svc_app_conf *conf;
	uint64_t serial;
	uint64_t gen;
	void *area;
	uint64_t size;
	int fds[CONTROL_FDS];
};

struct client {
	int fd;
	struct ucred cred;
	struct svc_app_conf *conf; /* attached to, or NULL */
	uint64_t serial;	   /* conf's */
	char name[FERRY_APP_NAME_LEN]; /* the slot's, for the log after a reload freed conf */
	void *area;
	uint64_t size;
	/*
	 * The three the application gets (memfd, the read end of the wake-up
	 * pipe, the eventfd it may write to wake ferryd), then the pipe's write
	 * end, which only ferryd holds: its O_NONBLOCK is ferryd's alone, so an
	 * application cannot make a worker's wake-up write block (an eventfd's
	 * flags would be shared through SCM_RIGHTS).
	 */
	int fds[CONTROL_FDS];
	uint64_t since_ns;	   /* connected at; one not attached is dropped after a while */
	/* An admin's listing: the worker whose chunk it waits for (-1 none), since when. */
	int wait_worker;
	uint64_t wait_ns;
	bool admin; /* has passed is_admin() */
	struct ferry_ctl_admin_request sreq;
};

/* A listing's chunk handed to a worker; owner_fd: the client waiting for it, or -1. */
struct snap_slot {
	struct sess_snap *q;
	int fd; /* the worker's doorbell, an eventfd */
	int owner_fd;
	bool handed; /* given to the worker, not yet seen done */
};

struct control {
	struct ferry_daemon *d;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	int nr_clients;
	struct client clients[CONTROL_MAX_CLIENTS];
	int nr_pending;
	struct pending pending[CONTROL_MAX_CLIENTS];
	uint64_t accept_after_ns; /* the listener rests until then (descriptors ran out) */
	/* A reload asked for by this client (-1: none), for the main loop to run. */
	int reload_fd;
	uint32_t reload_flags;
	uint32_t nr_snaps;
	struct snap_slot *snaps; /* one per worker */
	struct {
		struct ferry_ctl_sessions_reply h;
		struct ferry_ctl_session r[FERRY_CTL_SESS_CHUNK];
	} *sbuf;
	int ncpus;
	struct ferry_sess_stats *percpu; /* one fast-path counter entry, every CPU */
};

static bool has_slots(const struct ferry_daemon *d)
{
	for (int f = 0; f < d->nr_flows; f++)
		for (int s = 0; s < d->flows[f].nr; s++)
			if (svc_app__is_app(d->flows[f].ops[s]))
				return true;
	return false;
}

static struct svc_app_conf *find_slot(const struct ferry_daemon *d, const char *name)
{
	for (int f = 0; f < d->nr_flows; f++)
		for (int s = 0; s < d->flows[f].nr; s++) {
			struct svc_app_conf *c = d->flows[f].conf[s];

			if (svc_app__is_app(d->flows[f].ops[s]) && !strcmp(c->name, name))
				return c;
		}
	return NULL;
}

/* mkdir -p of path's directory, 0755 for what it creates. */
static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* quiet: another process holding the socket is the caller's to report. */
static int listen_on(struct control *c, bool quiet)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err, probe;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	err = make_parent(c->path);
	if (err) {
		pr_err("control socket %s: cannot create its directory: %s", c->path,
		       strerror(-err));
		return err;
	}
	/* A socket file nobody listens on is a dead ferryd's: take its place. */
	probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		if (!connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
			close(probe);
			if (!quiet)
				pr_err("control socket %s: another process listens on it", c->path);
			return -EADDRINUSE;
		}
		if (errno == ECONNREFUSED) {
			struct stat st;

			if (!lstat(c->path, &st) && S_ISSOCK(st.st_mode))
				unlink(c->path);
		}
		close(probe);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(c->path, 0666) ||
	    listen(fd, 16)) {
		err = -errno;
		pr_err("control socket %s: %s", c->path, strerror(-err));
		close(fd);
		return err;
	}
	c->lfd = fd;
	pr_info("control socket %s: ferryctl and applications connect here", c->path);
	return 0;
}

static void free_snaps(struct control *c)
{
	for (uint32_t i = 0; c->snaps && i < c->nr_snaps; i++) {
		free(c->snaps[i].q);
		if (c->snaps[i].fd >= 0)
			close(c->snaps[i].fd);
	}
	free(c->snaps);
	free(c->sbuf);
	free(c->percpu);
}

/* Each worker's chunk and doorbell for ferryctl sessions; the workers run already. */
static int make_snaps(struct control *c)
{
	struct ferry_daemon *d = c->d;

	c->ncpus = libbpf_num_possible_cpus();
	if (c->ncpus <= 0)
		c->ncpus = 1;
	c->snaps = calloc(d->nr_workers, sizeof(*c->snaps));
	c->sbuf = malloc(sizeof(*c->sbuf));
	c->percpu = calloc((size_t)c->ncpus, sizeof(*c->percpu));
	if (!c->snaps || !c->sbuf || !c->percpu)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->nr_workers; i++) {
		struct snap_slot *sl = &c->snaps[i];

		sl->fd = -1;
		sl->owner_fd = -1;
		c->nr_snaps++;
		sl->q = calloc(1, sizeof(*sl->q));
		if (!sl->q)
			return -ENOMEM;
		sl->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (sl->fd < 0)
			return -errno;
	}
	for (uint32_t i = 0; i < d->nr_workers; i++)
		if (d->workers && d->workers[i])
			atomic_store(&d->workers[i]->control_fd, c->snaps[i].fd);
	return 0;
}

int control__create(struct control **out, struct ferry_daemon *d)
{
	struct control *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->d = d;
	c->lfd = -1;
	c->reload_fd = -1;
	snprintf(c->path, sizeof(c->path), "%s", d->cfg.control_socket);
	err = make_snaps(c);
	if (err) {
		pr_err("control socket: %s", strerror(-err));
		goto err_free;
	}
	/*
	 * Always open: ferryctl reload and sessions use it.  Without app slots
	 * nothing depends on it for forwarding, so a socket another ferryd
	 * holds (a second instance with the default path) only costs those
	 * commands, and is logged; with slots it is needed and fails the start.
	 */
	err = listen_on(c, !has_slots(d));
	if (err && has_slots(d))
		goto err_free;
	/* Tests and a second instance run ferryds side by side with the default: not alarming. */
	if (err == -EADDRINUSE && !strcmp(c->path, FERRY_CONTROL_SOCKET))
		pr_info("control socket %s: another ferryd has it: ferryctl reload and sessions "
			"cannot reach this one (set control_socket to a path of its own)",
			c->path);
	else if (err)
		pr_warn("control socket %s: not open: ferryctl reload and sessions cannot reach "
			"this ferryd",
			c->path);
	*out = c;
	return 0;

err_free:
	for (uint32_t i = 0; d->workers && i < c->nr_snaps; i++)
		if (d->workers[i])
			atomic_store(&d->workers[i]->control_fd, -1);
	free_snaps(c);
	free(c);
	return err;
}

static void close_fds(int fds[CONTROL_FDS])
{
	for (int i = 0; i < CONTROL_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Every worker has left generation gen (or is gone). */
static bool acked(const struct control *c, const struct pending *p)
{
	for (uint32_t i = 0; i < c->d->nr_workers && i < FERRY_APP_MAX_QUEUES; i++) {
		uint64_t a = atomic_load_explicit(&p->conf->slot.ack[i], memory_order_acquire);

		if (a != p->gen && a != UINT64_MAX)
			return false;
	}
	return true;
}

static void reap_pending(struct control *c, bool all)
{
	for (int i = 0; i < c->nr_pending;) {
		struct pending *p = &c->pending[i];

		if (!all && svc_app__alive(p->conf, p->serial) && !acked(c, p)) {
			i++;
			continue;
		}
		if (svc_app__alive(p->conf, p->serial)) {
			p->conf->slot.area = NULL;
			p->conf->slot.wake_app_fd = -1;
			p->conf->slot.wake_ferry_fd = -1;
		}
		munmap(p->area, p->size);
		close_fds(p->fds);
		c->pending[i] = c->pending[--c->nr_pending];
	}
}

static bool slot_pending(const struct control *c, const struct svc_app_conf *conf)
{
	for (int i = 0; i < c->nr_pending; i++)
		if (c->pending[i].conf == conf)
			return true;
	return false;
}

/*
 * A slot's new generation is taken up at each worker's next service tick:
 * every 100 ms on an idle or busy-polling worker.  Ask each for a tick now
 * and ring its doorbell: the old area is released, and the slot free for
 * the next application, within a loop iteration rather than a sleep.
 */
static void tick_workers(const struct control *c)
{
	const uint64_t one = 1;

	for (uint32_t i = 0; i < c->d->nr_workers && i < c->nr_snaps; i++) {
		if (!c->d->workers || !c->d->workers[i])
			continue;
		/* Release: the generation before the request (worker__control_requests()). */
		atomic_store_explicit(&c->d->workers[i]->tick_req, true, memory_order_release);
		if (c->snaps[i].fd >= 0 && write(c->snaps[i].fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			pr_warn_ratelimited("control socket: cannot wake worker %u: %s", i,
					    strerror(errno));
	}
}

/* Closes client i; an attached application's area waits for the workers. */
static void drop_client(struct control *c, int i, const char *why)
{
	struct client *cl = &c->clients[i];

	if (cl->conf) {
		pr_info("app slot %s: pid %d %s: detached", cl->name, (int)cl->cred.pid, why);
		if (svc_app__alive(cl->conf, cl->serial)) {
			struct pending *p = &c->pending[c->nr_pending++];

			p->conf = cl->conf;
			p->serial = cl->serial;
			p->gen = atomic_load(&cl->conf->slot.gen) + 1;
			p->area = cl->area;
			p->size = cl->size;
			memcpy(p->fds, cl->fds, sizeof(p->fds));
			cl->conf->slot.pid = 0;
			cl->conf->slot.uid = 0;
			atomic_store(&cl->conf->slot.hung, false);
			atomic_store_explicit(&cl->conf->slot.gen, p->gen, memory_order_release);
			tick_workers(c);
		} else {
			/* Destroyed by a reload: its workers' states went first. */
			munmap(cl->area, cl->size);
			close_fds(cl->fds);
		}
	} else if (why && cl->admin) {
		pr_info("control socket: pid %d uid %u: %s", (int)cl->cred.pid,
			(unsigned int)cl->cred.uid, why);
	} else if (why) {
		/* Neither attached nor admin: any local user, as often as it connects. */
		pr_info_ratelimited("control socket: pid %d uid %u: %s", (int)cl->cred.pid,
				    (unsigned int)cl->cred.uid, why);
	}
	if (cl->wait_worker >= 0)
		c->snaps[cl->wait_worker].owner_fd = -1;
	if (c->reload_fd == cl->fd)
		c->reload_fd = -1;
	close(cl->fd);
	c->clients[i] = c->clients[--c->nr_clients];
}

/* The peer is the slot's owner: its uid, or a member of its group. */
/*
 * The process's own groups (SO_PEERGROUPS, as they were when it connected),
 * not its user's in the user database: a sandboxed process that dropped a
 * group has dropped it, and no NSS lookup (LDAP, sssd) can stall the main
 * thread.
 */
static bool is_owner(const struct svc_app_conf *conf, int fd, const struct ucred *cr)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (!conf->owner_is_group)
		return cr->uid == conf->owner_uid;
	if (cr->gid == conf->owner_gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t i = 0; i < len / sizeof(groups[0]); i++)
		if (groups[i] == conf->owner_gid)
			return true;
	return false;
}

static int send_reply(struct client *cl, int status, const char *msg, uint32_t nr_queues,
		      uint64_t size, const int *fds)
{
	struct ferry_ctl_attach_reply r = {
		.magic = FERRY_APP_MAGIC,
		.version = FERRY_APP_VERSION,
		.status = status,
		.nr_queues = nr_queues,
		.area_size = size,
	};
	union {
		char buf[CMSG_SPACE(CONTROL_SENT_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	snprintf(r.message, sizeof(r.message), "%s", msg);
	if (fds) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(CONTROL_SENT_FDS * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, CONTROL_SENT_FDS * sizeof(int));
	}
	return sendmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(r) ? 0 : -EIO;
}

/* The slot's area, wake-up pipe and eventfd, for an application about to attach. */
static int make_area(struct control *c, struct client *cl, struct svc_app_conf *conf)
{
	uint32_t nq = c->d->nr_workers;
	char name[64];
	int err;

	cl->size = app_area__size(nq, conf->ring_size);
	if (!cl->size)
		return -E2BIG;
	snprintf(name, sizeof(name), "ferry-app-%s", conf->name);
	cl->fds[0] = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (cl->fds[0] < 0)
		return -errno;
	/* Sealed: an application that could shrink it would fault ferryd (SIGBUS). */
	if (ftruncate(cl->fds[0], (off_t)cl->size) ||
	    fcntl(cl->fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto err_close;
	{
		int wake[2];

		/* ferryd keeps its read end open too: a write never meets a closed pipe. */
		if (pipe2(wake, O_NONBLOCK | O_CLOEXEC))
			goto err_close;
		cl->fds[1] = wake[0];
		cl->fds[3] = wake[1];
	}
	cl->fds[2] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cl->fds[2] < 0)
		goto err_close;
	cl->area = mmap(NULL, cl->size, PROT_READ | PROT_WRITE, MAP_SHARED, cl->fds[0], 0);
	if (cl->area == MAP_FAILED) {
		cl->area = NULL;
		goto err_close;
	}
	app_area__init(cl->area, conf->name, nq, conf->ring_size);
	return 0;

err_close:
	err = -errno;
	close_fds(cl->fds);
	for (int k = 0; k < CONTROL_FDS; k++)
		cl->fds[k] = -1;
	return err;
}

/* An application is attached to conf (by its connection, not a pid: peers may have none here). */
static bool slot_attached(const struct control *c, const struct svc_app_conf *conf)
{
	for (int i = 0; i < c->nr_clients; i++)
		if (c->clients[i].conf == conf)
			return true;
	return false;
}

static int attached_clients(const struct control *c)
{
	int n = 0;

	for (int i = 0; i < c->nr_clients; i++)
		n += c->clients[i].conf != NULL;
	return n;
}

/* ---- admin ops (ferryctl) ---- */

/* Root, ferryd's own uid, or a member of control_group (the peer's own groups, as for slots). */
static bool is_admin(const struct control *c, int fd, const struct ucred *cr)
{
	const struct ferry_config *cfg = &c->d->cfg;
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (!cfg->control_group_set)
		return false;
	if (cr->gid == cfg->control_gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t k = 0; k < len / sizeof(groups[0]); k++)
		if (groups[k] == cfg->control_gid)
			return true;
	return false;
}

/* text in as many ferry_ctl_text messages as it takes; 0 or -errno. */
static int send_text(int fd, int status, const char *text, size_t len)
{
	struct ferry_ctl_text *m = malloc(sizeof(*m));
	size_t off = 0;
	int err = 0;

	if (!m)
		return -ENOMEM;
	do {
		size_t n = len - off < sizeof(m->text) ? len - off : sizeof(m->text);

		memset(m, 0, offsetof(struct ferry_ctl_text, text));
		m->magic = FERRY_APP_MAGIC;
		m->version = FERRY_APP_VERSION;
		m->status = status;
		m->len = (uint32_t)n;
		m->more = off + n < len;
		memcpy(m->text, text + off, n);
		if (send(fd, m, offsetof(struct ferry_ctl_text, text) + n,
			 MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			err = -errno;
			break;
		}
		off += n;
	} while (off < len);
	free(m);
	return err;
}

static int find_client(const struct control *c, int fd)
{
	for (int i = 0; i < c->nr_clients; i++)
		if (c->clients[i].fd == fd)
			return i;
	return -1;
}

bool control__reload_wanted(const struct control *c, bool *dry_run)
{
	if (c->reload_fd < 0)
		return false;
	*dry_run = c->reload_flags & FERRY_CTL_DRY_RUN;
	return true;
}

void control__reload_done(struct control *c, int status, const struct reload_report *rep)
{
	static const char cut[] = "... (the rest is in ferryd's log)\n";
	int i = find_client(c, c->reload_fd);
	char *text = rep && rep->text ? rep->text : "";
	size_t len = rep && rep->text ? rep->len : 0;
	char *buf = NULL;
	int err;

	c->reload_fd = -1;
	if (i < 0)
		return; /* it went away meanwhile: the log has the outcome */
	if (len > CONTROL_REPORT_MAX || (rep && rep->truncated)) {
		if (len > CONTROL_REPORT_MAX - sizeof(cut))
			len = CONTROL_REPORT_MAX - sizeof(cut);
		buf = malloc(len + sizeof(cut));
		if (buf) {
			memcpy(buf, text, len);
			memcpy(buf + len, cut, sizeof(cut) - 1);
			text = buf;
			len += sizeof(cut) - 1;
		}
	}
	if (!len) {
		text = status ? "refused\n" : "done\n";
		len = strlen(text);
	}
	err = send_text(c->clients[i].fd, status, text, len);
	free(buf);
	c->clients[i].since_ns = mono_ns();
	if (err)
		drop_client(c, i, "cannot take its reload report: dropped");
}

static int flow_id_of(const struct ferry_daemon *d, const char *name, uint32_t *id)
{
	for (int f = 0; f < d->nr_flows; f++)
		if (d->flows[f].fc.flow && !strcmp(d->flows[f].fc.flow->name, name)) {
			*id = (uint32_t)f;
			return 0;
		}
	return -ENOENT;
}

static int send_sessions(const struct control *c, int fd, struct ferry_ctl_sessions_reply *h,
			 uint32_t nr)
{
	size_t len = sizeof(*h) + nr * sizeof(struct ferry_ctl_session);

	h->magic = FERRY_APP_MAGIC;
	h->version = FERRY_APP_VERSION;
	h->nr = nr;
	h->nr_workers = c->nr_snaps;
	return send(fd, h, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EIO;
}

static int sessions_error(struct control *c, struct client *cl, int status, const char *msg)
{
	struct ferry_ctl_sessions_reply h = { .status = status };

	snprintf(h.message, sizeof(h.message), "%s", msg);
	return send_sessions(c, cl->fd, &h, 0);
}

/* A chunk request: handed to its worker; the answer goes out from control__sync(). */
static int start_sessions(struct control *c, struct client *cl)
{
	const struct ferry_ctl_admin_request *r = &cl->sreq;
	struct snap_slot *sl;
	struct sess_snap *q;
	uint32_t flow_id = 0;
	uint64_t one = 1;

	if (r->worker >= c->nr_snaps) {
		struct ferry_ctl_sessions_reply h = { .done = 1, .next_worker = c->nr_snaps };

		return send_sessions(c, cl->fd, &h, 0);
	}
	if ((r->flags & FERRY_CTL_SESS_FLOW) &&
	    (!memchr(r->flow, '\0', sizeof(r->flow)) || flow_id_of(c->d, r->flow, &flow_id)))
		return sessions_error(c, cl, -ENOENT, "no such flow");
	if ((r->flags & FERRY_CTL_SESS_ADDR) && r->family != 4 && r->family != 6)
		return sessions_error(c, cl, -EINVAL, "bad address family");
	sl = &c->snaps[r->worker];
	/* Still the worker's (an earlier request it has not answered): not ours to reuse. */
	if (sl->handed || (c->d->workers[r->worker] &&
			   atomic_load(&c->d->workers[r->worker]->snap_req)))
		return sessions_error(c, cl, -EBUSY, "another listing is in progress");
	q = sl->q;
	q->slot = r->slot;
	q->max = r->max;
	q->flags = r->flags;
	q->flow_id = flow_id;
	q->family = r->family;
	memcpy(q->addr, r->addr, sizeof(q->addr));
	atomic_store_explicit(&q->done, 0, memory_order_relaxed);
	sl->handed = true;
	sl->owner_fd = cl->fd;
	cl->wait_worker = (int)r->worker;
	cl->wait_ns = mono_ns();
	atomic_store_explicit(&c->d->workers[r->worker]->snap_req, q, memory_order_release);
	if (write(sl->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn_ratelimited("control socket: cannot wake worker %u: %s", r->worker,
				    strerror(errno));
	return 0;
}

/* Fast-path counters of a record whose session forwards in XDP. */
static void add_xdp(struct control *c, struct ferry_ctl_session *r, int64_t slot,
		    uint64_t worker_seen_ns, uint64_t copied_ns)
{
	uint64_t last = worker_seen_ns;

	if (slot < 0 || !c->d->offload_maps || c->d->offload_stats_fd < 0)
		return;
	for (int dir = 0; dir < 2; dir++) {
		uint32_t key = (uint32_t)slot * 2 + (uint32_t)dir;
		uint64_t p = 0, b = 0;

		if (bpf_map_lookup_elem(c->d->offload_stats_fd, &key, c->percpu))
			continue;
		for (int k = 0; k < c->ncpus; k++) {
			p += c->percpu[k].packets;
			b += c->percpu[k].bytes;
			if (c->percpu[k].last_seen_ns > last)
				last = c->percpu[k].last_seen_ns;
		}
		if (dir == FERRY_DIR_CLIENT) {
			r->packets_out += p;
			r->bytes_out += b;
		} else {
			r->packets_in += p;
			r->bytes_in += b;
		}
	}
	/*
	 * bpf_ktime_get_ns() is CLOCK_MONOTONIC, as the workers' clock; idle as
	 * of the copy, as the age is (a packet since then: 0).
	 */
	if (last > worker_seen_ns)
		r->idle_ms = copied_ns > last ? (copied_ns - last) / 1000000ull : 0;
}

/* A worker answered client i's chunk (or took too long): the reply. */
static void finish_sessions(struct control *c, int i, bool timed_out)
{
	struct client *cl = &c->clients[i];
	struct snap_slot *sl = &c->snaps[cl->wait_worker];
	struct ferry_ctl_sessions_reply *h = &c->sbuf->h;
	struct sess_snap *q = sl->q;
	uint32_t w = (uint32_t)cl->wait_worker;
	int err;

	cl->wait_worker = -1;
	cl->since_ns = mono_ns();
	if (timed_out) {
		/* The worker still has it: the slot stays handed until it answers. */
		sl->owner_fd = -1;
		err = sessions_error(c, cl, -ETIMEDOUT, "the worker did not answer in time");
		goto out;
	}
	sl->handed = false;
	sl->owner_fd = -1;
	memset(h, 0, sizeof(*h));
	for (uint32_t k = 0; k < q->nr; k++) {
		struct ferry_ctl_session *r = &c->sbuf->r[k];
		uint32_t id = q->recs[k].flow_id;
		const struct cfg_flow *fl = id < CFG_MAX_FLOWS ? c->d->flows[id].fc.flow : NULL;

		*r = q->recs[k];
		snprintf(r->flow_name, sizeof(r->flow_name), "%s", fl ? fl->name : "?");
		add_xdp(c, r, q->xdp_slot[k], q->last_seen_ns[k], q->now_ns);
	}
	h->next_worker = q->end ? w + 1 : w;
	h->next_slot = q->end ? 0 : q->next_slot;
	h->done = q->end && w + 1 >= c->nr_snaps;
	h->total = q->count;
	err = send_sessions(c, cl->fd, h, q->nr);
out:
	if (err)
		drop_client(c, i, "cannot take its sessions: dropped");
}

static void poll_sessions(struct control *c)
{
	uint64_t now = mono_ns();

	for (int i = c->nr_clients; i-- > 0;) {
		struct client *cl = &c->clients[i];
		struct snap_slot *sl;

		if (cl->wait_worker < 0)
			continue;
		sl = &c->snaps[cl->wait_worker];
		if (atomic_load_explicit(&sl->q->done, memory_order_acquire))
			finish_sessions(c, i, false);
		else if (now - cl->wait_ns > CONTROL_SNAP_TIMEOUT_NS)
			finish_sessions(c, i, true);
	}
	/* Chunks whose client went: free once their worker answered. */
	for (uint32_t w = 0; w < c->nr_snaps; w++) {
		struct snap_slot *sl = &c->snaps[w];

		if (sl->handed && sl->owner_fd < 0 &&
		    atomic_load_explicit(&sl->q->done, memory_order_acquire))
			sl->handed = false;
	}
}

/* An admin op from client i (n bytes in r); false when the client goes. */
static bool handle_admin(struct control *c, int i, const struct ferry_ctl_admin_request *r,
			 ssize_t n)
{
	struct client *cl = &c->clients[i];

	if (n != sizeof(*r)) {
		drop_client(c, i, "bad admin request: dropped");
		return false;
	}
	if (!is_admin(c, cl->fd, &cl->cred)) {
		pr_warn_ratelimited("control socket: refused pid %d uid %u: op %#x needs root, "
				    "ferryd's uid or control_group",
				    (int)cl->cred.pid, (unsigned int)cl->cred.uid, r->op);
		if (r->op == FERRY_CTL_RELOAD) {
			static const char why[] = "refused: not permitted (root, ferryd's user or "
						  "a member of control_group only)\n";

			send_text(cl->fd, -EPERM, why, sizeof(why) - 1);
		} else {
			sessions_error(c, cl, -EPERM, "not permitted");
		}
		drop_client(c, i, NULL);
		return false;
	}
	cl->since_ns = mono_ns();
	cl->admin = true;
	if (r->op == FERRY_CTL_RELOAD) {
		static const char busy[] = "refused: another reload is under way\n";

		if (c->reload_fd >= 0 && c->reload_fd != cl->fd) {
			if (!send_text(cl->fd, -EBUSY, busy, sizeof(busy) - 1))
				return true;
			drop_client(c, i, NULL);
			return false;
		}
		c->reload_fd = cl->fd;
		c->reload_flags = r->flags;
		pr_info("control socket: pid %d uid %u asks for a %s", (int)cl->cred.pid,
			(unsigned int)cl->cred.uid,
			r->flags & FERRY_CTL_DRY_RUN ? "reload dry run" : "reload");
		return true;
	}
	if (r->op == FERRY_CTL_SESSIONS) {
		if (cl->wait_worker >= 0) {
			drop_client(c, i, "asked for sessions before its last answer: dropped");
			return false;
		}
		cl->sreq = *r;
		if (start_sessions(c, cl)) {
			drop_client(c, i, "cannot take its sessions: dropped");
			return false;
		}
		return true;
	}
	drop_client(c, i, "unknown admin op: dropped");
	return false;
}

/* One request from client i; false when the client goes. */
static bool handle_request(struct control *c, int i)
{
	struct client *cl = &c->clients[i];
	union {
		struct ferry_ctl_request app;
		struct ferry_ctl_admin_request adm;
	} u;
	struct ferry_ctl_request req;
	struct svc_app_conf *conf;
	char msg[96];
	ssize_t n;
	int err;

	memset(&u, 0, sizeof(u));
	n = recv(cl->fd, &u, sizeof(u), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		drop_client(c, i, cl->conf ? "closed its connection" : NULL);
		return false;
	}
	if (n >= 12 && u.adm.magic == FERRY_APP_MAGIC && u.adm.version == FERRY_APP_VERSION &&
	    (u.adm.op == FERRY_CTL_RELOAD || u.adm.op == FERRY_CTL_SESSIONS) && !cl->conf)
		return handle_admin(c, i, &u.adm, n);
	req = u.app;
	if (n != sizeof(req) || req.magic != FERRY_APP_MAGIC || req.version != FERRY_APP_VERSION ||
	    req.op != FERRY_CTL_ATTACH || !memchr(req.slot, '\0', sizeof(req.slot))) {
		snprintf(msg, sizeof(msg),
			 "bad request (%zd bytes, magic %#x, version %u, op %u): dropped", n,
			 n >= 4 ? req.magic : 0, n >= 8 ? req.version : 0, n >= 12 ? req.op : 0);
		drop_client(c, i, msg);
		return false;
	}
	if (cl->conf) {
		send_reply(cl, -EBUSY, "this connection is attached already", 0, 0, NULL);
		return true;
	}
	/*
	 * A refused connection is closed after its answer: the socket is open
	 * to every local user, and one must not hold a client slot it cannot
	 * use.  The refusals are logged, at a bounded rate.
	 */
	conf = find_slot(c->d, req.slot);
	if (!conf) {
		pr_info_ratelimited("control socket: pid %d uid %u: no app slot '%s'",
				    (int)cl->cred.pid, (unsigned int)cl->cred.uid, req.slot);
		send_reply(cl, -ENOENT, "no such app slot", 0, 0, NULL);
		drop_client(c, i, NULL);
		return false;
	}
	if (!is_owner(conf, cl->fd, &cl->cred)) {
		pr_warn_ratelimited("app slot %s: refused pid %d uid %u gid %u: not its owner",
				    conf->name, (int)cl->cred.pid, (unsigned int)cl->cred.uid,
				    (unsigned int)cl->cred.gid);
		send_reply(cl, -EACCES, "not the slot's owner", 0, 0, NULL);
		drop_client(c, i, NULL);
		return false;
	}
	if (slot_attached(c, conf)) {
		pr_info_ratelimited("app slot %s: refused pid %d: pid %d is attached", conf->name,
				    (int)cl->cred.pid, conf->slot.pid);
		send_reply(cl, -EBUSY, "another application is attached", 0, 0, NULL);
		drop_client(c, i, NULL);
		return false;
	}
	/*
	 * The last application's area waits for the workers to let it go,
	 * within a loop iteration each (tick_workers()): a restarted
	 * application may try again at once, as libferry_app does.  Those let
	 * go since the main loop last looked are released now.
	 */
	reap_pending(c, false);
	if (slot_pending(c, conf)) {
		pr_info_ratelimited("app slot %s: pid %d asked while the last application's area "
				    "is still being released: try again",
				    conf->name, (int)cl->cred.pid);
		send_reply(cl, -EAGAIN, "the last application is still detaching: try again", 0,
			   0, NULL);
		drop_client(c, i, NULL);
		return false;
	}
	/* Each attached client may leave an area pending: their sum stays bounded. */
	if (c->nr_pending + attached_clients(c) >= CONTROL_MAX_CLIENTS) {
		pr_warn_ratelimited("app slot %s: refused pid %d: %d areas still detaching",
				    conf->name, (int)cl->cred.pid, c->nr_pending);
		send_reply(cl, -EAGAIN, "too many applications detaching: try again", 0, 0, NULL);
		drop_client(c, i, NULL);
		return false;
	}
	err = make_area(c, cl, conf);
	if (err) {
		pr_err("app slot %s: cannot make its area: %s", conf->name, strerror(-err));
		send_reply(cl, err, "ferryd cannot make the packet area", 0, 0, NULL);
		drop_client(c, i, NULL);
		return false;
	}
	if (send_reply(cl, 0, "attached", c->d->nr_workers, cl->size, cl->fds)) {
		munmap(cl->area, cl->size);
		close_fds(cl->fds);
		drop_client(c, i, "cannot take its reply: dropped");
		return false;
	}
	cl->conf = conf;
	cl->serial = conf->serial;
	memcpy(cl->name, conf->name, sizeof(cl->name));
	conf->slot.area = cl->area;
	conf->slot.wake_app_fd = cl->fds[3];
	conf->slot.wake_ferry_fd = cl->fds[2];
	conf->slot.pid = cl->cred.pid;
	conf->slot.uid = cl->cred.uid;
	atomic_store(&conf->slot.hung, false);
	/* Odd: attached.  The workers take it up at their next process() or tick(). */
	atomic_store_explicit(&conf->slot.gen, atomic_load(&conf->slot.gen) + 1,
			      memory_order_release);
	pr_info("app slot %s: attached pid %d uid %u", conf->name, (int)cl->cred.pid,
		(unsigned int)cl->cred.uid);
	return true;
}

/* Connections of uid that have neither attached nor passed the admin check. */
static int unauth_of(const struct control *c, uid_t uid)
{
	int n = 0;

	for (int i = 0; i < c->nr_clients; i++)
		n += !c->clients[i].conf && !c->clients[i].admin && c->clients[i].cred.uid == uid;
	return n;
}

/*
 * Whether the new connection cl may take a client slot: root, ferryd's
 * uid and control_group members may take any; others not the reserved
 * ones, nor more than their share while not attached.
 */
static bool admit_client(struct control *c, struct client *cl)
{
	if (is_admin(c, cl->fd, &cl->cred))
		return true;
	if (c->nr_clients >= CONTROL_MAX_CLIENTS - CONTROL_RESERVED) {
		pr_warn_ratelimited("control socket: %d clients: pid %d uid %u refused (the last %d "
				    "slots are for root, ferryd's user and control_group)",
				    c->nr_clients, (int)cl->cred.pid, (unsigned int)cl->cred.uid,
				    CONTROL_RESERVED);
		return false;
	}
	if (unauth_of(c, cl->cred.uid) >= CONTROL_UNAUTH_PER_UID) {
		pr_warn_ratelimited("control socket: pid %d uid %u refused: %d connections of its "
				    "uid not attached yet",
				    (int)cl->cred.pid, (unsigned int)cl->cred.uid,
				    CONTROL_UNAUTH_PER_UID);
		return false;
	}
	return true;
}

/* At most this many a call: the main loop's other work comes between bursts. */
#define CONTROL_ACCEPT_BURST 16

static void accept_clients(struct control *c)
{
	for (int n = 0; n < CONTROL_ACCEPT_BURST; n++) {
		socklen_t len = sizeof(struct ucred);
		struct client *cl;
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			/* Still pending, the listener would wake poll() at once, forever. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				pr_warn_ratelimited("control socket: cannot accept: %s",
						    strerror(errno));
				c->accept_after_ns = mono_ns() + CONTROL_ACCEPT_PAUSE_NS;
			}
			return;
		}
		if (c->nr_clients == CONTROL_MAX_CLIENTS) {
			pr_warn_ratelimited("control socket: %d clients already: one refused",
					    CONTROL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		cl = &c->clients[c->nr_clients];
		memset(cl, 0, sizeof(*cl));
		cl->fd = fd;
		for (int k = 0; k < CONTROL_FDS; k++)
			cl->fds[k] = -1;
		cl->since_ns = mono_ns();
		cl->wait_worker = -1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cl->cred, &len) ||
		    !admit_client(c, cl)) {
			close(fd);
			continue;
		}
		c->nr_clients++;
	}
}

void control__sync(struct control *c)
{
	uint64_t now = mono_ns();

	for (int i = c->nr_clients; i-- > 0;) {
		struct client *cl = &c->clients[i];

		if (!cl->conf && cl->wait_worker < 0 && cl->fd != c->reload_fd &&
		    now - cl->since_ns > (cl->admin ? CONTROL_ADMIN_IDLE_NS : CONTROL_IDLE_NS))
			drop_client(c, i, "did not attach in time: dropped");
		else if (cl->conf && !svc_app__alive(cl->conf, cl->serial))
			drop_client(c, i, "its slot changed in a reload");
		else if (cl->conf && atomic_load(&cl->conf->slot.hung))
			drop_client(c, i, "stopped answering");
	}
	reap_pending(c, false);
	poll_sessions(c);
	if (c->lfd < 0 && has_slots(c->d))
		listen_on(c, false);
}

int control__fill(struct control *c, struct pollfd *pfd)
{
	int n = 0;

	if (c->lfd < 0)
		return 0;
	/* Resting (fd -1: poll() skips it) keeps the table's layout for control__handle(). */
	pfd[n++] = (struct pollfd){ .fd = mono_ns() < c->accept_after_ns ? -1 : c->lfd,
				    .events = POLLIN };
	for (int i = 0; i < c->nr_clients; i++)
		pfd[n++] = (struct pollfd){ .fd = c->clients[i].fd, .events = POLLIN };
	return n;
}

void control__handle(struct control *c, const struct pollfd *pfd, int n)
{
	int fds[CONTROL_MAX_CLIENTS], nr = 0;

	if (!n)
		return;
	/* By fd: handling one client may move the others in the table. */
	for (int k = 1; k < n; k++)
		if (pfd[k].revents)
			fds[nr++] = pfd[k].fd;
	for (int k = 0; k < nr; k++)
		for (int i = 0; i < c->nr_clients; i++) {
			if (c->clients[i].fd != fds[k])
				continue;
			handle_request(c, i);
			break;
		}
	if (pfd[0].revents & POLLIN)
		accept_clients(c);
	control__sync(c);
}

int control__timeout(const struct control *c, int timeout)
{
	/* Workers acknowledge at their next tick: look again soon. */
	if (c->nr_pending && timeout > 10)
		return 10;
	for (int i = 0; i < c->nr_clients; i++) {
		/* A worker copies a listing's chunk within a loop iteration: look again soon. */
		if (c->clients[i].wait_worker >= 0)
			return timeout > 1 ? 1 : timeout;
		if (c->clients[i].conf && atomic_load(&c->clients[i].conf->slot.hung))
			return 0;
		/* A connection still to attach is dropped on time (control__sync()). */
		if (!c->clients[i].conf && timeout > 1000)
			timeout = 1000;
	}
	if (c->accept_after_ns && timeout > 100)
		timeout = 100;
	return timeout;
}

void control__destroy(struct control *c)
{
	if (!c)
		return;
	while (c->nr_clients)
		drop_client(c, c->nr_clients - 1, "ferryd stops");
	reap_pending(c, true);
	if (c->lfd >= 0) {
		close(c->lfd);
		unlink(c->path);
	}
	/* After the workers: none can hold a chunk any more. */
	free_snaps(c);
	free(c);
}
