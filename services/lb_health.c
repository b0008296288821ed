// SPDX-License-Identifier: BSD-2-Clause
/*
 * lb's health checker (see lb_health.h): one thread per lb flow with
 * `health`, never on the packet path.  Each round starts every upstream's
 * probe at once and waits for all of them, bounded by timeout_ms, so a
 * round lasts at most timeout_ms whatever the number of upstreams.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "lb_health.h"
#include "log.h"

/* Tries at a source port outside nat.ports before the probe counts as failed. */
#define LB_HC_BIND_TRIES 16
/* How often a round looks at its commands (they have no descriptor to poll). */
#define LB_HC_EXEC_POLL_MS 10

bool lb_hc_account(struct lb_hc_state *s, bool ok, uint32_t rise, uint32_t fall)
{
	if (ok) {
		s->fail_run = 0;
		if (s->ok_run < UINT32_MAX)
			s->ok_run++;
		if (!s->up && s->ok_run >= rise) {
			s->up = true;
			return true;
		}
	} else {
		s->ok_run = 0;
		if (s->fail_run < UINT32_MAX)
			s->fail_run++;
		if (s->up && s->fail_run >= fall) {
			s->up = false;
			return true;
		}
	}
	return false;
}

void lb_checker__init(struct lb_checker *k)
{
	pthread_mutex_init(&k->lock, NULL);
	k->wake_fd = -1;
	for (int i = 0; i < LB_MAX_UPSTREAMS; i++)
		k->hs[i].up = true;
	atomic_store(&k->up_mask, (uint32_t)((1ull << LB_MAX_UPSTREAMS) - 1));
}

void lb_checker__add_worker(struct lb_checker *k, struct lb_wcount *wc)
{
	pthread_mutex_lock(&k->lock);
	wc->next = k->workers;
	k->workers = wc;
	pthread_mutex_unlock(&k->lock);
}

void lb_checker__del_worker(struct lb_checker *k, struct lb_wcount *wc)
{
	pthread_mutex_lock(&k->lock);
	for (struct lb_wcount **pp = &k->workers; *pp; pp = &(*pp)->next) {
		if (*pp == wc) {
			*pp = wc->next;
			/* Counters never go backwards: what it counted stays counted. */
			for (int i = 0; i < LB_MAX_UPSTREAMS; i++)
				k->gone_sessions[i] +=
					atomic_load_explicit(&wc->sessions[i], memory_order_relaxed);
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
}

void lb_checker__sums(struct lb_checker *k, uint32_t i, uint64_t *sessions, uint64_t *passive)
{
	uint64_t s, p = 0;

	pthread_mutex_lock(&k->lock);
	s = k->gone_sessions[i];
	for (struct lb_wcount *wc = k->workers; wc; wc = wc->next) {
		s += atomic_load_explicit(&wc->sessions[i], memory_order_relaxed);
		p += atomic_load_explicit(&wc->passive[i], memory_order_relaxed);
	}
	pthread_mutex_unlock(&k->lock);
	if (sessions)
		*sessions = s;
	if (passive)
		*passive = p;
}

void lb_checker__round(struct lb_checker *k, uint32_t probe_ok)
{
	uint32_t mask = 0;
	char addr[INET6_ADDRSTRLEN];

	for (uint32_t i = 0; i < k->nr; i++) {
		struct lb_up_stats *st = &k->st[i];
		uint64_t passive;
		bool ok = probe_ok >> i & 1;

		lb_checker__sums(k, i, NULL, &passive);
		/* A worker that went away takes its count with it: never a negative delta. */
		if (passive > k->passive_seen[i]) {
			atomic_fetch_add(&st->passive_failures, passive - k->passive_seen[i]);
			ok = false;
		}
		k->passive_seen[i] = passive;
		atomic_fetch_add(ok ? &st->checks_ok : &st->checks_failed, 1);
		if (lb_hc_account(&k->hs[i], ok, k->hc.rise, k->hc.fall)) {
			inet_ntop(k->family, k->addr[i].b, addr, sizeof(addr));
			if (k->hs[i].up) {
				atomic_fetch_add(&st->went_up, 1);
				pr_warn("flow '%s': lb upstream %s port %u is up (%u good checks)",
					k->flow_name, addr, k->port[i], k->hc.rise);
			} else {
				atomic_fetch_add(&st->went_down, 1);
				pr_warn("flow '%s': lb upstream %s port %u is down (%u failed checks)",
					k->flow_name, addr, k->port[i], k->hc.fall);
			}
		}
		if (k->hs[i].up)
			mask |= 1u << i;
	}
	/* Release: a worker that sees the mask sees nothing older. */
	atomic_store_explicit(&k->up_mask, mask, memory_order_release);
}

/* ---- probes ---- */

struct probe {
	int fd;	   /* tcp, udp: the socket; -1 when done or none */
	pid_t pid; /* exec: the command; 0 when done */
	bool done, ok;
};

static int sa_of(const struct lb_checker *k, uint32_t i, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	uint16_t port = (uint16_t)(k->hc.port ?: k->port[i]);

	memset(ss, 0, sizeof(*ss));
	if (k->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, k->addr[i].b, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, k->addr[i].b, 16);
		*len = sizeof(*sin6);
	}
	return 0;
}

/* A socket bound to a source port outside nat.ports; -errno. */
static int probe_socket(const struct lb_checker *k, int type)
{
	for (int t = 0; t < LB_HC_BIND_TRIES; t++) {
		struct sockaddr_storage ss = { .ss_family = (sa_family_t)k->family };
		socklen_t len = k->family == AF_INET ? sizeof(struct sockaddr_in)
						     : sizeof(struct sockaddr_in6);
		uint16_t port;
		int fd, err;

		fd = socket(k->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&ss, len) ||
		    getsockname(fd, (struct sockaddr *)&ss, &len)) {
			err = -errno;
			close(fd);
			return err;
		}
		port = ntohs(k->family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
		if (port < k->nat_ports.lo || port > k->nat_ports.hi)
			return fd;
		close(fd);
	}
	return -EADDRINUSE;
}

static void probe_start(const struct lb_checker *k, uint32_t i, struct probe *p)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	if (k->hc.type == LB_HC_EXEC) {
		char a[INET6_ADDRSTRLEN], env_a[80], env_p[40];
		char *argv[] = { "/bin/sh", "-c", (char *)k->hc.command, NULL };
		char *envp[] = { env_a, env_p, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
					      "/usr/bin:/sbin:/bin", NULL };

		posix_spawnattr_t attr;
		sigset_t none, all;
		int err;

		inet_ntop(k->family, k->addr[i].b, a, sizeof(a));
		snprintf(env_a, sizeof(env_a), "FERRY_UPSTREAM_ADDRESS=%s", a);
		snprintf(env_p, sizeof(env_p), "FERRY_UPSTREAM_PORT=%u", k->port[i]);
		/* This thread blocks every signal: the command must not inherit that. */
		sigemptyset(&none);
		sigfillset(&all);
		posix_spawnattr_init(&attr);
		posix_spawnattr_setsigmask(&attr, &none);
		posix_spawnattr_setsigdefault(&attr, &all);
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
		err = posix_spawn(&p->pid, "/bin/sh", NULL, &attr, argv, envp);
		posix_spawnattr_destroy(&attr);
		if (err) {
			p->pid = 0;
			p->done = true;
		}
		return;
	}
	p->fd = probe_socket(k, k->hc.type == LB_HC_TCP ? SOCK_STREAM : SOCK_DGRAM);
	if (p->fd < 0)
		goto failed;
	sa_of(k, i, &ss, &len);
	if (connect(p->fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS)
		goto failed;
	if (k->hc.type == LB_HC_UDP &&
	    send(p->fd, k->hc.send, strlen(k->hc.send), MSG_DONTWAIT) < 0)
		goto failed;
	return;

failed:
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->done = true;
}

static void probe_finish(struct probe *p, bool ok)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->done = true;
	p->ok = ok;
}

/* The socket of a probe is ready: its result. */
static void probe_ready(const struct lb_checker *k, struct probe *p, short revents)
{
	char buf[LB_HC_TEXT_LEN];
	int soerr = 0;
	socklen_t l = sizeof(soerr);
	ssize_t n;

	if (k->hc.type == LB_HC_TCP) {
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &l))
			soerr = errno;
		probe_finish(p, !soerr && (revents & POLLOUT));
		return;
	}
	n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			probe_finish(p, false); /* e.g. ECONNREFUSED: port unreachable */
		return;
	}
	probe_finish(p, (size_t)n >= strlen(k->hc.expect) &&
				!memcmp(buf, k->hc.expect, strlen(k->hc.expect)));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One round of probes; bit i of the result: upstream i answered.  Stops early on wake_fd. */
static uint32_t probe_all(struct lb_checker *k)
{
	struct probe pr[LB_MAX_UPSTREAMS];
	uint64_t deadline = now_ms() + k->hc.timeout_ms;
	uint32_t ok = 0;

	for (uint32_t i = 0; i < k->nr; i++)
		probe_start(k, i, &pr[i]);
	for (;;) {
		struct pollfd pfd[LB_MAX_UPSTREAMS + 1];
		uint32_t idx[LB_MAX_UPSTREAMS];
		nfds_t n = 0;
		bool exec_pending = false;
		uint64_t now = now_ms();
		int wait;

		for (uint32_t i = 0; i < k->nr; i++) {
			int st;

			if (pr[i].done)
				continue;
			if (pr[i].pid) {
				if (waitpid(pr[i].pid, &st, WNOHANG) == pr[i].pid) {
					pr[i].pid = 0;
					pr[i].done = true;
					pr[i].ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
				} else {
					exec_pending = true;
				}
				continue;
			}
			pfd[n].fd = pr[i].fd;
			pfd[n].events = k->hc.type == LB_HC_TCP ? POLLOUT : POLLIN;
			pfd[n].revents = 0;
			idx[n++] = i;
		}
		if ((!n && !exec_pending) || now >= deadline || atomic_load(&k->stop))
			break;
		wait = (int)(deadline - now);
		if (exec_pending && wait > LB_HC_EXEC_POLL_MS)
			wait = LB_HC_EXEC_POLL_MS;
		pfd[n].fd = k->wake_fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		if (poll(pfd, n + 1, wait) < 0 && errno != EINTR)
			break;
		for (nfds_t j = 0; j < n; j++)
			if (pfd[j].revents)
				probe_ready(k, &pr[idx[j]], pfd[j].revents);
	}
	/* What did not answer in time failed; a command past its time is killed. */
	for (uint32_t i = 0; i < k->nr; i++) {
		if (pr[i].fd >= 0)
			close(pr[i].fd);
		if (pr[i].pid) {
			kill(pr[i].pid, SIGKILL);
			waitpid(pr[i].pid, NULL, 0);
		}
		if (pr[i].done && pr[i].ok)
			ok |= 1u << i;
	}
	return ok;
}

static void *checker_main(void *arg)
{
	struct lb_checker *k = arg;

	while (!atomic_load(&k->stop)) {
		uint64_t start = now_ms(), spent;
		uint32_t ok = probe_all(k);
		struct pollfd pfd = { .fd = k->wake_fd, .events = POLLIN };

		if (atomic_load(&k->stop))
			break;
		lb_checker__round(k, ok);
		spent = now_ms() - start;
		if (spent < k->hc.interval_ms)
			poll(&pfd, 1, (int)(k->hc.interval_ms - spent));
	}
	return NULL;
}

int lb_checker__start(struct lb_checker *k)
{
	sigset_t all, old;
	int err;

	if (k->hc.type == LB_HC_NONE)
		return 0;
	k->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k->wake_fd < 0)
		return -errno;
	/* Signals are the main thread's business (ferryd's signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&k->thread, NULL, checker_main, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		close(k->wake_fd);
		k->wake_fd = -1;
		return -err;
	}
	k->running = true;
	return 0;
}

void lb_checker__stop(struct lb_checker *k)
{
	uint64_t one = 1;

	if (k->running) {
		atomic_store(&k->stop, true);
		if (write(k->wake_fd, &one, sizeof(one)) < 0)
			pr_warn("flow '%s': lb: cannot wake the health checker: %s", k->flow_name,
				strerror(errno));
		pthread_join(k->thread, NULL);
		k->running = false;
	}
	if (k->wake_fd >= 0)
		close(k->wake_fd);
	k->wake_fd = -1;
	pthread_mutex_destroy(&k->lock);
}
