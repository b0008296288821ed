// SPDX-License-Identifier: BSD-2-Clause
/*
 * Route and neighbour lookups over rtnetlink (see nexthop.h), and the
 * route/neighbour/link notification socket (nh_events) that next-hop caches
 * follow.  It owns the netlink sockets and the parsing of their messages;
 * it keeps no state about destinations (the per-worker cache of them is
 * lib/nh_cache.c's) and never changes the kernel's tables, except asking it
 * to resolve a neighbour (NTF_USE) as a sender would.  Every request waits
 * at most NH_TIMEOUT_MS.
 */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "log.h"
#include "nexthop.h"

/* A worker blocked on rtnetlink forwards nothing, so no request may wait longer. */
#define NH_TIMEOUT_MS 1000
/* Requests are one header and one or two small attributes. */
#define NH_REQ_SIZE 256
/*
 * Large enough for any single RTM_NEWLINK we ask for (stats and VF lists are
 * filtered out); a bigger reply is reported as truncated, never misparsed.
 */
#define NH_BUF_SIZE 32768

#define NUD_USABLE                                                                                 \
	(NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)

struct nh_resolver {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	/* The kernel's extended-ack text for the last failed request, "" if none. */
	char ext_msg[128];
	union {
		struct nlmsghdr hdr; /* alignment */
		uint8_t bytes[NH_BUF_SIZE];
	} buf;
};

typedef int (*nh_reply_fn)(const struct nlmsghdr *nlh, void *data);

struct nh_attrs {
	const struct nlattr **tb;
	unsigned int max;
};

static int nh_attr_collect(const struct nlattr *attr, void *data)
{
	struct nh_attrs *a = data;
	unsigned int type = mnl_attr_get_type(attr);

	if (type <= a->max)
		a->tb[type] = attr;
	return MNL_CB_OK;
}

static unsigned int nh_addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static const char *nh_addr_str(int family, const void *addr, char buf[INET6_ADDRSTRLEN])
{
	if (!inet_ntop(family, addr, buf, INET6_ADDRSTRLEN))
		snprintf(buf, INET6_ADDRSTRLEN, "(family %d)", family);
	return buf;
}

static const char *nh_ifname(int ifindex, char buf[IF_NAMESIZE + 16])
{
	if (!if_indextoname(ifindex, buf))
		snprintf(buf, IF_NAMESIZE + 16, "ifindex %d", ifindex);
	return buf;
}

/* Name lookups cost syscalls; pay for them only when the message is shown. */
static bool nh_debugging(void)
{
	return log__level() >= FERRY_LOG_DEBUG;
}

static const char *nh_state_str(uint16_t state)
{
	switch (state) {
	case NUD_NONE:
		return "NONE";
	case NUD_INCOMPLETE:
		return "INCOMPLETE";
	case NUD_REACHABLE:
		return "REACHABLE";
	case NUD_STALE:
		return "STALE";
	case NUD_DELAY:
		return "DELAY";
	case NUD_PROBE:
		return "PROBE";
	case NUD_FAILED:
		return "FAILED";
	case NUD_NOARP:
		return "NOARP";
	case NUD_PERMANENT:
		return "PERMANENT";
	default:
		return "?";
	}
}

int nh_resolver__create(struct nh_resolver **out)
{
	struct timeval tv = {
		.tv_sec = NH_TIMEOUT_MS / 1000,
		.tv_usec = (NH_TIMEOUT_MS % 1000) * 1000,
	};
	struct nh_resolver *r;
	int one = 1, err, fd;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->nl = mnl_socket_open(NETLINK_ROUTE);
	if (!r->nl) {
		err = -errno;
		pr_err("nexthop: cannot open rtnetlink socket: %s", strerror(errno));
		goto err_free;
	}
	if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_err("nexthop: cannot bind rtnetlink socket: %s", strerror(errno));
		goto err_close;
	}
	fd = mnl_socket_get_fd(r->nl);
	/* poll() bounds each wait already; this also bounds a recv that races with it. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		err = -errno;
		pr_err("nexthop: cannot set receive timeout: %s", strerror(errno));
		goto err_close;
	}
	/* Errors without the echoed request, but with the kernel's reason: optional. */
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	r->portid = mnl_socket_get_portid(r->nl);
	/* Distinct from any earlier socket's numbers, which helps when reading traces. */
	r->seq = (uint32_t)time(NULL);
	*out = r;
	return 0;

err_close:
	mnl_socket_close(r->nl);
err_free:
	free(r);
	return err;
}

void nh_resolver__destroy(struct nh_resolver *r)
{
	if (!r)
		return;
	mnl_socket_close(r->nl);
	free(r);
}

static int64_t nh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nh_save_ext_msg(struct nh_resolver *r, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {};
	struct nh_attrs a = { tb, NLMSGERR_ATTR_MAX };
	unsigned int off = sizeof(*e);

	r->ext_msg[0] = '\0';
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	/* Without NETLINK_CAP_ACK the kernel echoes our whole request first. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	if (off >= mnl_nlmsg_get_payload_len(nlh))
		return;
	if (mnl_attr_parse(nlh, off, nh_attr_collect, &a) < 0 || !tb[NLMSGERR_ATTR_MSG])
		return;
	if (mnl_attr_validate(tb[NLMSGERR_ATTR_MSG], MNL_TYPE_NUL_STRING) < 0)
		return;
	snprintf(r->ext_msg, sizeof(r->ext_msg), "%s", mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
}

/*
 * Sends `req` and waits for the messages answering it.  Anything carrying
 * another sequence number is a late answer to an earlier request that timed
 * out, and is dropped.  A request without NLM_F_ACK ends with its one reply
 * (handed to `fn`) or an error; one with NLM_F_ACK ends with the ack.
 * Returns fn's result, the kernel's -errno or -ETIMEDOUT.
 */
static int nh_transact(struct nh_resolver *r, struct nlmsghdr *req, nh_reply_fn fn, void *data)
{
	bool want_ack = req->nlmsg_flags & NLM_F_ACK;
	int64_t deadline = nh_now_ms() + NH_TIMEOUT_MS;
	struct pollfd pfd = { .fd = mnl_socket_get_fd(r->nl), .events = POLLIN };
	uint32_t seq = ++r->seq;
	int result = 0;

	r->ext_msg[0] = '\0';
	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(r->nl, req, req->nlmsg_len) < 0)
		return -errno;

	for (;;) {
		int64_t left = deadline - nh_now_ms();
		const struct nlmsghdr *nlh;
		ssize_t n;
		int len;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		n = mnl_socket_recvfrom(r->nl, r->buf.bytes, sizeof(r->buf.bytes));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			/* libmnl reports a truncated datagram as ENOSPC. */
			return errno == ENOSPC ? -EMSGSIZE : -errno;
		}
		len = (int)n;
		for (nlh = &r->buf.hdr; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq ||
			    (nlh->nlmsg_pid && nlh->nlmsg_pid != r->portid))
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

				if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
					return -EPROTO;
				if (e->error) {
					nh_save_ext_msg(r, nlh);
					return e->error < 0 ? e->error : -e->error;
				}
				return result;
			}
			if (nlh->nlmsg_type == NLMSG_DONE)
				return result;
			if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
				continue;
			result = fn ? fn(nlh, data) : 0;
			if (!want_ack)
				return result;
		}
	}
}

struct nh_route_reply {
	int family;
	const union ferry_addr *dst;
	struct nh_route *out;
	uint8_t type;
	bool have_oif;
};

static int nh_route_parse(const struct nlmsghdr *nlh, void *data)
{
	struct nh_route_reply *c = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = {};
	struct nh_attrs a = { tb, RTA_MAX };
	unsigned int alen = nh_addr_len(c->family);
	struct nh_route *out = c->out;

	if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return -EPROTO;
	if (mnl_attr_parse(nlh, sizeof(*rtm), nh_attr_collect, &a) < 0)
		return -EPROTO;
	c->type = rtm->rtm_type;
	if (tb[RTA_OIF] && mnl_attr_get_payload_len(tb[RTA_OIF]) == 4) {
		out->ifindex = (int)mnl_attr_get_u32(tb[RTA_OIF]);
		c->have_oif = true;
	}
	out->family = c->family;
	if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == alen) {
		memcpy(out->gateway.b, mnl_attr_get_payload(tb[RTA_GATEWAY]), alen);
	} else if (tb[RTA_VIA] && mnl_attr_get_payload_len(tb[RTA_VIA]) >= sizeof(struct rtvia)) {
		/* An IPv4 route via an IPv6 router (RFC 5549): the neighbour is IPv6. */
		const struct rtvia *via = mnl_attr_get_payload(tb[RTA_VIA]);
		unsigned int vlen = nh_addr_len(via->rtvia_family);

		if (!vlen || mnl_attr_get_payload_len(tb[RTA_VIA]) < sizeof(*via) + vlen)
			return -EPROTO;
		memcpy(out->gateway.b, via->rtvia_addr, vlen);
		out->family = via->rtvia_family;
	} else {
		memcpy(out->gateway.b, c->dst->b, alen);
	}
	if (tb[RTA_PREFSRC] && mnl_attr_get_payload_len(tb[RTA_PREFSRC]) == alen)
		memcpy(out->prefsrc.b, mnl_attr_get_payload(tb[RTA_PREFSRC]), alen);
	return 0;
}

struct nh_link_reply {
	struct nh_route *out;
	char name[IF_NAMESIZE];
	bool have_mtu;
	int addr_len;
};

static int nh_link_parse(const struct nlmsghdr *nlh, void *data)
{
	struct nh_link_reply *c = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = {};
	struct nh_attrs a = { tb, IFLA_MAX };

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EPROTO;
	if (mnl_attr_parse(nlh, sizeof(*ifi), nh_attr_collect, &a) < 0)
		return -EPROTO;
	if (tb[IFLA_IFNAME] && mnl_attr_validate(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) == 0)
		snprintf(c->name, sizeof(c->name), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (tb[IFLA_MTU] && mnl_attr_get_payload_len(tb[IFLA_MTU]) == 4) {
		c->out->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
		c->have_mtu = true;
	}
	if (tb[IFLA_ADDRESS]) {
		c->addr_len = (int)mnl_attr_get_payload_len(tb[IFLA_ADDRESS]);
		if (c->addr_len == 6)
			memcpy(c->out->src_mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
	}
	return 0;
}

static int nh_link(struct nh_resolver *r, struct nh_route *out, struct nh_link_reply *c)
{
	char req_buf[NH_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	char ifbuf[IF_NAMESIZE + 16];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int err;

	memset(req_buf, 0, sizeof(req_buf));
	nlh = mnl_nlmsg_put_header(req_buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = out->ifindex;
	/* Counters and VF lists can make the reply huge; we want three attributes. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);

	c->out = out;
	err = nh_transact(r, nlh, nh_link_parse, c);
	if (err) {
		pr_warn("nexthop: iface %s: cannot read MTU and MAC: %s%s%s",
			nh_ifname(out->ifindex, ifbuf), strerror(-err), r->ext_msg[0] ? ": " : "",
			r->ext_msg);
		return err;
	}
	if (!c->have_mtu || c->addr_len != 6) {
		pr_warn("nexthop: iface %s: not an Ethernet interface (%d-byte link address)",
			c->name[0] ? c->name : nh_ifname(out->ifindex, ifbuf), c->addr_len);
		return -EOPNOTSUPP;
	}
	return 0;
}

int nh_resolver__route(struct nh_resolver *r, int family, const union ferry_addr *dst,
		       struct nh_route *out)
{
	char req_buf[NH_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nh_route_reply c = { .family = family, .dst = dst, .out = out };
	struct nh_link_reply l = {};
	unsigned int alen = nh_addr_len(family);
	char abuf[INET6_ADDRSTRLEN];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int err;

	if (!alen)
		return -EAFNOSUPPORT;
	memset(out, 0, sizeof(*out));
	memset(req_buf, 0, sizeof(req_buf));
	nlh = mnl_nlmsg_put_header(req_buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = alen * 8;
	mnl_attr_put(nlh, RTA_DST, alen, dst->b);

	err = nh_transact(r, nlh, nh_route_parse, &c);
	switch (err) {
	case 0:
		break;
	/*
	 * The kernel answers a lookup that ends in a reject route with that
	 * route's error: blackhole EINVAL, unreachable EHOSTUNREACH, prohibit
	 * EACCES, throw or nothing ENETUNREACH.  To us they all mean "no route".
	 */
	case -ENETUNREACH:
	case -EHOSTUNREACH:
	case -EACCES:
	case -EINVAL:
		pr_debug("nexthop: no route to %s: %s%s%s", nh_addr_str(family, dst->b, abuf),
			 strerror(-err), r->ext_msg[0] ? ": " : "", r->ext_msg);
		return -ENETUNREACH;
	default:
		pr_warn("nexthop: route lookup for %s failed: %s%s%s",
			nh_addr_str(family, dst->b, abuf), strerror(-err),
			r->ext_msg[0] ? ": " : "", r->ext_msg);
		return err;
	}
	/* Local, broadcast and multicast destinations have no single neighbour. */
	if (c.type != RTN_UNICAST || !c.have_oif) {
		pr_debug("nexthop: no unicast route to %s (route type %u)",
			 nh_addr_str(family, dst->b, abuf), c.type);
		return -ENETUNREACH;
	}
	err = nh_link(r, out, &l);
	if (err)
		return err;
	if (nh_debugging()) {
		char gbuf[INET6_ADDRSTRLEN], sbuf[INET6_ADDRSTRLEN];

		pr_debug("nexthop: route to %s: iface %s via %s src %s mtu %u",
			 nh_addr_str(family, dst->b, abuf), l.name,
			 nh_addr_str(out->family, out->gateway.b, gbuf),
			 nh_addr_str(family, out->prefsrc.b, sbuf), out->mtu);
	}
	return 0;
}

struct nh_neigh_reply {
	uint16_t state;
	int lladdr_len;
	uint8_t *mac;
};

static int nh_neigh_parse(const struct nlmsghdr *nlh, void *data)
{
	struct nh_neigh_reply *c = data;
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1] = {};
	struct nh_attrs a = { tb, NDA_MAX };

	if (nlh->nlmsg_type != RTM_NEWNEIGH || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm))
		return -EPROTO;
	if (mnl_attr_parse(nlh, sizeof(*ndm), nh_attr_collect, &a) < 0)
		return -EPROTO;
	c->state = ndm->ndm_state;
	if (tb[NDA_LLADDR]) {
		c->lladdr_len = (int)mnl_attr_get_payload_len(tb[NDA_LLADDR]);
		if (c->lladdr_len == 6)
			memcpy(c->mac, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
	}
	return 0;
}

static void nh_neigh_req(struct nlmsghdr *nlh, uint16_t type, uint16_t flags, int family,
			 const union ferry_addr *addr, int ifindex)
{
	struct ndmsg *ndm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = family;
	ndm->ndm_ifindex = ifindex;
	if (type == RTM_NEWNEIGH)
		ndm->ndm_flags = NTF_USE;
	mnl_attr_put(nlh, NDA_DST, nh_addr_len(family), addr->b);
}

/*
 * NTF_USE makes the kernel act as if it had a packet for the neighbour:
 * from NONE or FAILED it starts ARP/ND (INCOMPLETE), from STALE it arms the
 * reachability probe (DELAY), and it never changes a link-layer address.
 * NLM_F_CREATE lets it make the entry when there is none yet.  Having no
 * packet to take a source from, IPv6 solicits from the interface's
 * link-local address, and sends nothing while that is still tentative (DAD),
 * so right after an interface comes up the entry can go FAILED instead.
 */
static int nh_neigh_trigger(struct nh_resolver *r, int family, const union ferry_addr *addr,
			    int ifindex)
{
	char req_buf[NH_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	char abuf[INET6_ADDRSTRLEN], ifbuf[IF_NAMESIZE + 16];
	struct nlmsghdr *nlh;
	int err;

	memset(req_buf, 0, sizeof(req_buf));
	nlh = mnl_nlmsg_put_header(req_buf);
	nh_neigh_req(nlh, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, family, addr,
		     ifindex);
	err = nh_transact(r, nlh, NULL, NULL);
	if (err)
		pr_warn("nexthop: neighbour %s on %s: cannot ask the kernel to resolve it: %s%s%s",
			nh_addr_str(family, addr->b, abuf), nh_ifname(ifindex, ifbuf),
			strerror(-err), r->ext_msg[0] ? ": " : "", r->ext_msg);
	return err;
}

int nh_resolver__neigh(struct nh_resolver *r, int family, const union ferry_addr *addr,
		       int ifindex, uint8_t mac[6])
{
	char req_buf[NH_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	char abuf[INET6_ADDRSTRLEN], ifbuf[IF_NAMESIZE + 16];
	uint8_t found[6];
	struct nh_neigh_reply c = { .mac = found };
	struct nlmsghdr *nlh;
	int err;

	if (!nh_addr_len(family))
		return -EAFNOSUPPORT;
	memset(req_buf, 0, sizeof(req_buf));
	nlh = mnl_nlmsg_put_header(req_buf);
	nh_neigh_req(nlh, RTM_GETNEIGH, NLM_F_REQUEST, family, addr, ifindex);
	err = nh_transact(r, nlh, nh_neigh_parse, &c);
	if (err == -ENOENT) {
		c.state = NUD_NONE;
	} else if (err) {
		pr_warn("nexthop: neighbour %s on %s: lookup failed: %s%s%s",
			nh_addr_str(family, addr->b, abuf), nh_ifname(ifindex, ifbuf),
			strerror(-err), r->ext_msg[0] ? ": " : "", r->ext_msg);
		return err;
	}

	if (c.state & NUD_USABLE) {
		if (c.lladdr_len != 6) {
			pr_warn("nexthop: neighbour %s on %s: %s with a %d-byte link address",
				nh_addr_str(family, addr->b, abuf), nh_ifname(ifindex, ifbuf),
				nh_state_str(c.state), c.lladdr_len);
			return -EOPNOTSUPP;
		}
		/*
		 * Our frames bypass the kernel, so it never sees a STALE entry in
		 * use and would never re-confirm it; nudge it as a sender would.
		 */
		if (c.state == NUD_STALE)
			nh_neigh_trigger(r, family, addr, ifindex);
		memcpy(mac, found, 6);
		if (nh_debugging())
			pr_debug("nexthop: neighbour %s on %s: %s %02x:%02x:%02x:%02x:%02x:%02x",
				 nh_addr_str(family, addr->b, abuf), nh_ifname(ifindex, ifbuf),
				 nh_state_str(c.state), mac[0], mac[1], mac[2], mac[3], mac[4],
				 mac[5]);
		return 0;
	}

	if (nh_debugging())
		pr_debug("nexthop: neighbour %s on %s: %s, asking the kernel to resolve it",
			 nh_addr_str(family, addr->b, abuf), nh_ifname(ifindex, ifbuf),
			 nh_state_str(c.state));
	err = nh_neigh_trigger(r, family, addr, ifindex);
	if (err)
		return err;
	return c.state == NUD_FAILED ? -EHOSTUNREACH : -EAGAIN;
}

/*
 * Notifications.  The socket is non-blocking and only ever read by its
 * worker between bursts.  Its receive buffer is enlarged so that a burst of
 * route changes rarely overflows it; when it does, the kernel reports
 * ENOBUFS once and the owner must assume that anything may have changed.
 */
#define NH_EV_RCVBUF (1 << 20)

struct nh_events {
	struct mnl_socket *nl;
	union {
		struct nlmsghdr hdr; /* alignment */
		uint8_t bytes[NH_BUF_SIZE];
	} buf;
};

int nh_events__create(struct nh_events **out)
{
	static const unsigned int groups[] = { RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE,
					       RTNLGRP_NEIGH, RTNLGRP_LINK };
	int size = NH_EV_RCVBUF, err, fd;
	struct nh_events *ev;

	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!ev->nl) {
		err = -errno;
		pr_err("nexthop: cannot open the rtnetlink notification socket: %s",
		       strerror(errno));
		goto err_free;
	}
	if (mnl_socket_bind(ev->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_err("nexthop: cannot bind the rtnetlink notification socket: %s",
		       strerror(errno));
		goto err_close;
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (mnl_socket_setsockopt(ev->nl, NETLINK_ADD_MEMBERSHIP, (void *)&groups[i],
					  sizeof(groups[i])) < 0) {
			err = -errno;
			pr_err("nexthop: cannot subscribe to rtnetlink group %u: %s", groups[i],
			       strerror(errno));
			goto err_close;
		}
	}
	fd = mnl_socket_get_fd(ev->nl);
	/* Best effort: the default buffer only makes overflows more likely. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	*out = ev;
	return 0;

err_close:
	mnl_socket_close(ev->nl);
err_free:
	free(ev);
	return err;
}

void nh_events__destroy(struct nh_events *ev)
{
	if (!ev)
		return;
	mnl_socket_close(ev->nl);
	free(ev);
}

int nh_events__fd(const struct nh_events *ev)
{
	return mnl_socket_get_fd(ev->nl);
}

static int nh_event_route(const struct nlmsghdr *nlh, struct nh_event *ev)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return -EPROTO;
	if (!nh_addr_len(rtm->rtm_family))
		return -ENOENT;
	/* Cached clones (PMTU exceptions, redirects) change no route lookup we make. */
	if (rtm->rtm_flags & RTM_F_CLONED)
		return -ENOENT;
	ev->type = NH_EV_ROUTE;
	ev->family = rtm->rtm_family;
	return 0;
}

static int nh_event_neigh(const struct nlmsghdr *nlh, struct nh_event *ev)
{
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[NDA_MAX + 1] = {};
	struct nh_attrs a = { tb, NDA_MAX };
	unsigned int alen;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ndm))
		return -EPROTO;
	alen = nh_addr_len(ndm->ndm_family);
	/* Bridge FDB entries share the group; proxy entries are not neighbours. */
	if (!alen || (ndm->ndm_flags & NTF_PROXY))
		return -ENOENT;
	if (mnl_attr_parse(nlh, sizeof(*ndm), nh_attr_collect, &a) < 0)
		return -EPROTO;
	if (!tb[NDA_DST] || mnl_attr_get_payload_len(tb[NDA_DST]) != alen)
		return -EPROTO;
	ev->type = nlh->nlmsg_type == RTM_DELNEIGH ? NH_EV_NEIGH_DEL : NH_EV_NEIGH;
	ev->family = ndm->ndm_family;
	ev->ifindex = ndm->ndm_ifindex;
	memcpy(ev->addr.b, mnl_attr_get_payload(tb[NDA_DST]), alen);
	ev->state = ndm->ndm_state;
	if (tb[NDA_LLADDR] && mnl_attr_get_payload_len(tb[NDA_LLADDR]) == 6) {
		memcpy(ev->mac, mnl_attr_get_payload(tb[NDA_LLADDR]), 6);
		ev->has_mac = true;
	}
	ev->usable = ev->type == NH_EV_NEIGH && (ev->state & NUD_USABLE) && ev->has_mac;
	return 0;
}

static int nh_event_link(const struct nlmsghdr *nlh, struct nh_event *ev)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = {};
	struct nh_attrs a = { tb, IFLA_MAX };

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EPROTO;
	/* Bridge port notifications (AF_BRIDGE) repeat what AF_UNSPEC ones say. */
	if (ifi->ifi_family != AF_UNSPEC)
		return -ENOENT;
	if (mnl_attr_parse(nlh, sizeof(*ifi), nh_attr_collect, &a) < 0)
		return -EPROTO;
	ev->type = nlh->nlmsg_type == RTM_DELLINK ? NH_EV_LINK_DEL : NH_EV_LINK;
	ev->ifindex = ifi->ifi_index;
	if (tb[IFLA_MTU] && mnl_attr_get_payload_len(tb[IFLA_MTU]) == 4)
		ev->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6) {
		memcpy(ev->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
		ev->has_mac = true;
	}
	return 0;
}

int nh_event__parse(const struct nlmsghdr *nlh, struct nh_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	switch (nlh->nlmsg_type) {
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		return nh_event_route(nlh, ev);
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH:
		return nh_event_neigh(nlh, ev);
	case RTM_NEWLINK:
	case RTM_DELLINK:
		return nh_event_link(nlh, ev);
	default:
		return -ENOENT;
	}
}

int nh_events__drain(struct nh_events *ev, unsigned int max, nh_event_fn fn, void *ctx)
{
	unsigned int msgs = 0;

	while (msgs < max) {
		const struct nlmsghdr *nlh;
		struct nh_event e;
		ssize_t n;
		int len;

		n = mnl_socket_recvfrom(ev->nl, ev->buf.bytes, sizeof(ev->buf.bytes));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			/* Lost (ENOBUFS) or unreadable (truncated: ENOSPC): both mean "missed". */
			if (errno == ENOBUFS || errno == ENOSPC) {
				pr_debug("nexthop: notifications lost (%s); re-reading everything",
					 strerror(errno));
				memset(&e, 0, sizeof(e));
				e.type = NH_EV_OVERFLOW;
				fn(&e, ctx);
				msgs++;
				continue;
			}
			return -errno;
		}
		len = (int)n;
		for (nlh = &ev->buf.hdr; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			msgs++;
			if (nh_event__parse(nlh, &e) == 0)
				fn(&e, ctx);
		}
	}
	return (int)msgs;
}
