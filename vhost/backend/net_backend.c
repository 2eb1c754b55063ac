/*
 * cvmm --net-backend: the virtio-net model over a tap, served to one
 * vhost-user front-end at a time (QEMU, cloud-hypervisor, DPDK virtio_user,
 * cvmm). Options and defaults follow cloud-hypervisor's vhost_user_net.
 * SIGINT/SIGTERM stop it (vu_backend.c).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cvmm/backends.h"
#include "cvmm/log.h"
#include "cvmm/net_opts.h"
#include "cvmm/opts.h"
#include "cvmm/virtio_net.h"
#include "vu_backend.h"
#include "cvmm/vu_proto.h"

/* MTU (VHOST_USER_PROTOCOL_F_NET_MTU) is not among the library's protocol
 * features yet: the MTU reaches the driver through config space. */
#define NET_BACKEND_PROTOCOL_FEATURES                                              \
	(VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
	 VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

/* The device options shared with --net (net_opts.h), plus the socket. */
struct net_backend_opts {
	struct net_opts net;
	char *socket;
	bool client;
};

static const struct opt_spec net_backend_spec[] = {
	NET_OPTS_SPECS(struct net_backend_opts, net),
	OPT_SPEC("socket", OPT_STRING, struct net_backend_opts, socket),
	OPT_SPEC("client", OPT_BOOL, struct net_backend_opts, client),
	OPT_SPEC_END,
};

int net_backend_main(const char *text)
{
	struct net_backend_opts o = { .net = NET_OPTS_DEFAULTS };
	struct vu_server_config vcfg = { .protocol_features = NET_BACKEND_PROTOCOL_FEATURES };
	struct vu_backend be;
	struct net_dev *net = NULL;
	char why[160], ready[PATH_MAX + 96];
	int ret = 1;

	if (opts_parse(text, net_backend_spec, &o, NULL, why, sizeof(why)) < 0) {
		log_err("--net-backend: %s", why);
		return 1;
	}
	if (!o.socket) {
		log_err("--net-backend: socket=PATH is required");
		goto out;
	}
	net = calloc(1, sizeof(*net));
	if (!net) {
		log_err("--net-backend: out of memory");
		goto out;
	}
	/* Before the device model starts its threads: they inherit the mask. */
	if (vu_backend_init(&be, "--net-backend"))
		goto out;
	/* Checks the device options and reports what is wrong itself. */
	if (net_opts_open(net, &o.net, "--net-backend") == 0) {
		/* The front-end runs the control queue that switches pairs on. */
		net_dev_offer_mq(net);
		vcfg.socket_path = o.socket;
		vcfg.client = o.client;
		snprintf(ready, sizeof(ready), "net-backend: tap %s (%u queue pairs) on %s", net->tap.name,
			 net->npairs, o.socket);
		ret = vu_backend_run(&be, &net->vdev, &vcfg, ready) ? 1 : 0;
		net_dev_destroy(net);
	}
	vu_backend_destroy(&be);
out:
	free(net);
	opts_free(net_backend_spec, &o);
	return ret;
}
