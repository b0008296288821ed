// SPDX-License-Identifier: BSD-2-Clause
/*
 * An interface's kernel counters over rtnetlink (link_stats.h).  One
 * request per call from the main thread; no state kept here, never called
 * on the packet path.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "link_stats.h"

struct reply {
	struct ferry_link_stats *out;
	bool found;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct reply *r = data;
	struct rtnl_link_stats64 st;

	if (mnl_attr_get_type(a) != IFLA_STATS64)
		return MNL_CB_OK;
	/* Older kernels send a shorter struct: what is missing stays 0. */
	memset(&st, 0, sizeof(st));
	memcpy(&st, mnl_attr_get_payload(a),
	       mnl_attr_get_payload_len(a) < sizeof(st) ? mnl_attr_get_payload_len(a) : sizeof(st));
	r->out->rx_packets = st.rx_packets;
	r->out->tx_packets = st.tx_packets;
	r->out->rx_dropped = st.rx_dropped;
	r->out->tx_dropped = st.tx_dropped;
	r->out->rx_errors = st.rx_errors;
	r->out->tx_errors = st.tx_errors;
	r->out->rx_missed_errors = st.rx_missed_errors;
	r->found = true;
	return MNL_CB_OK;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), attr_cb, data);
}

int link_stats__get(int ifindex, struct ferry_link_stats *out)
{
	char buf[8192]; /* a link message with its counters fits easily */
	struct reply r = {.out = out};
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	unsigned int seq = (unsigned int)time(NULL), portid;
	ssize_t len;
	int ret, err = 0;

	if (ifindex <= 0)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out_close;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	/* Only the counters: no VF or other bulky attributes. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, 0);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out_close;
	}
	do {
		len = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (len < 0) {
			err = -errno;
			goto out_close;
		}
		ret = mnl_cb_run(buf, (size_t)len, seq, portid, msg_cb, &r);
	} while (ret > 0 && !r.found);
	if (ret < 0)
		err = errno == ENODEV ? -ENODEV : -errno;
	else if (!r.found)
		err = -ENODATA;
out_close:
	mnl_socket_close(nl);
	return err;
}
