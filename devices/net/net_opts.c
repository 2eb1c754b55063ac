#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "cvmm/vu_fe_dev.h"
#include "net_opts.h"
#include "tap.h"
#include "cvmm/vu_proto.h"

#define NET_OPTS_DEFAULT_TAP "cvmm-net%d"
#define NET_OPTS_MIN_MTU 68
#define NET_OPTS_MAX_MTU 65535

/* Parsed values of the options that need parsing. */
struct net_opts_params {
	uint8_t mac[6], host_mac[6];
	struct in_addr ip, mask;
};

static int net_opts_check(const struct net_opts *o, struct net_opts_params *p, const char *who)
{
	if (o->tap && strlen(o->tap) >= IFNAMSIZ) {
		log_err("%s: tap=%s: interface names have at most %d characters", who, o->tap, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (o->num_queues < 2 || o->num_queues % 2 || o->num_queues > 2 * NET_DEV_MAX_PAIRS) {
		log_err("%s: num_queues=%u: must be even, 2..%u (one RX and one TX queue per pair)", who,
			o->num_queues, 2 * NET_DEV_MAX_PAIRS);
		return -EINVAL;
	}
	if (o->queue_size < 2 || o->queue_size > VIRTQ_MAX_SIZE || (o->queue_size & (o->queue_size - 1))) {
		log_err("%s: queue_size=%u: must be a power of two, 2..%u", who, o->queue_size, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	if (o->mtu && (o->mtu < NET_OPTS_MIN_MTU || o->mtu > NET_OPTS_MAX_MTU)) {
		log_err("%s: mtu=%u: must be %u..%u", who, o->mtu, NET_OPTS_MIN_MTU, NET_OPTS_MAX_MTU);
		return -EINVAL;
	}
	if (o->mac && net_parse_mac(o->mac, p->mac) < 0) {
		log_err("%s: mac=%s: expected six hex bytes like 52:54:00:12:34:56", who, o->mac);
		return -EINVAL;
	}
	if (o->host_mac && net_parse_mac(o->host_mac, p->host_mac) < 0) {
		log_err("%s: host_mac=%s: expected six hex bytes like 52:54:00:12:34:56", who, o->host_mac);
		return -EINVAL;
	}
	if (o->mask && !o->ip) {
		log_err("%s: mask= needs ip=", who);
		return -EINVAL;
	}
	if (o->ip && inet_pton(AF_INET, o->ip, &p->ip) != 1) {
		log_err("%s: ip=%s: not an IPv4 address", who, o->ip);
		return -EINVAL;
	}
	p->mask.s_addr = htonl(0xffffff00);
	if (o->mask && (inet_pton(AF_INET, o->mask, &p->mask) != 1 ||
			((~ntohl(p->mask.s_addr) + 1) & ~ntohl(p->mask.s_addr)))) {
		log_err("%s: mask=%s: not an IPv4 netmask (like 255.255.255.0)", who, o->mask);
		return -EINVAL;
	}
	return 0;
}

int net_opts_open(struct net_dev *n, const struct net_opts *o, const char *who)
{
	struct net_opts_params p;
	struct net_dev_config cfg = {
		.tap = o->tap ? o->tap : NET_OPTS_DEFAULT_TAP,
		.num_pairs = o->num_queues / 2,
		.queue_size = (uint16_t)o->queue_size,
		.mtu = (uint16_t)o->mtu,
	};
	const char *name;
	int err = net_opts_check(o, &p, who);

	if (err)
		return err;
	cfg.mac = o->mac ? p.mac : NULL;
	err = net_dev_init(n, &cfg);
	if (err == -EBUSY) {
		log_err("%s: tap %s is in use by another process", who, cfg.tap);
		return err;
	}
	if (err == -EEXIST) {
		log_err("%s: tap %s exists with other settings (it is %s-queue; num_queues=%u needs a %s-queue tap)",
			who, cfg.tap, cfg.num_pairs > 1 ? "single" : "multi", o->num_queues,
			cfg.num_pairs > 1 ? "multi" : "single");
		return err;
	}
	if (err) {
		log_err("%s: cannot open tap %s: %s%s", who, cfg.tap, strerror(-err),
			err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return err;
	}
	name = n->tap.name;
	if (o->mtu && (err = tap_set_mtu(name, o->mtu)) < 0) {
		log_err("%s: %s: cannot set mtu %u: %s", who, name, o->mtu, strerror(-err));
		goto fail;
	}
	if (o->host_mac && (err = tap_set_mac(name, p.host_mac)) < 0) {
		log_err("%s: %s: cannot set host_mac: %s", who, name, strerror(-err));
		goto fail;
	}
	if (o->ip && (err = tap_set_addr(name, p.ip, p.mask)) < 0) {
		log_err("%s: %s: cannot set ip/mask: %s", who, name, strerror(-err));
		goto fail;
	}
	err = tap_set_up(name);
	if (err) {
		log_err("%s: %s: cannot bring it up: %s", who, name, strerror(-err));
		goto fail;
	}
	return 0;
fail:
	net_dev_destroy(n);
	return err;
}

/* ---- the device type (devtype.h) ---- */

/* MTU (VHOST_USER_PROTOCOL_F_NET_MTU) is not among the server's protocol
 * features yet: the MTU reaches the driver through config space. */
#define NET_TYPE_PROTOCOL_FEATURES                                                    \
	(VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
	 VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct net_type_opts {
	struct net_opts net;
};

static const struct opt_spec net_type_spec[] = {
	NET_OPTS_SPECS(struct net_type_opts, net),
	OPT_SPEC_END,
};

static void net_type_defaults(void *opts)
{
	*(struct net_opts *)opts = (struct net_opts)NET_OPTS_DEFAULTS;
}

/* vhost_user=on: the network device is served by an external back-end;
 * cvmm builds its config (the MAC) and runs the control queue. */
static int net_type_create_vhost(struct devtype_dev *d, const struct net_opts *o, uint64_t seen, const char *who)
{
	/* Indexes into net_type_spec of the keys the back-end owns. */
	static const unsigned backend_keys[] = { 0 /* tap */, 1 /* ip */, 2 /* mask */, 4 /* host_mac */,
						 5 /* mtu */ };
	struct vu_fe_dev_config c = { .device_id = VIRTIO_ID_NET, .num_queues = o->num_queues };
	uint8_t mac[6];
	int err = vu_fe_devtype_refuse_keys(d->type, seen, backend_keys,
					    sizeof(backend_keys) / sizeof(backend_keys[0]), who);

	if (err)
		return err;
	if (o->num_queues < 2 || o->num_queues % 2 || o->num_queues > 2 * NET_DEV_MAX_PAIRS) {
		log_err("%s: num_queues=%u: must be even, 2..%u (two per queue pair)", who, o->num_queues,
			2 * NET_DEV_MAX_PAIRS);
		return -EINVAL;
	}
	if (o->mac) {
		if (net_parse_mac(o->mac, mac) < 0) {
			log_err("%s: mac=%s: expected six hex bytes like 52:54:00:12:34:56", who, o->mac);
			return -EINVAL;
		}
		c.mac = mac;
	}
	return vu_fe_devtype_create(d, &c, o->queue_size, who);
}

static int net_type_create(struct devtype_dev *d, const void *opts, uint64_t seen,
			   enum devtype_role role, const char *who)
{
	const struct net_opts *o = opts;
	struct net_dev *n;
	int err;

	if (d->vhost_user)
		return net_type_create_vhost(d, o, seen, who);
	n = calloc(1, sizeof(*n));
	if (!n) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	err = net_opts_open(n, o, who);
	if (err) {
		free(n);
		return err;
	}
	if (role == DEVTYPE_IN_VM) {
		/* In-process, the control queue that switches pairs on is ours. */
		if (o->num_queues > 2 && (err = net_dev_enable_ctrl(n))) {
			log_err("%s: cannot set up the control queue: %s", who, strerror(-err));
			net_dev_destroy(n);
			free(n);
			return err;
		}
	} else {
		/* The front-end runs the control queue that switches pairs on. */
		net_dev_offer_mq(n);
		if (asprintf(&d->ready, "net-backend: tap %s (%u queue pairs) on %s", n->tap.name,
			     n->npairs, d->socket) < 0)
			d->ready = NULL;
	}
	d->model = n;
	d->vdev = &n->vdev;
	return 0;
}

static void net_type_destroy(struct devtype_dev *d)
{
	if (d->vhost_user)
		vu_fe_dev_destroy(d->model);
	else
		net_dev_destroy(d->model);
}

const struct devtype net_devtype = {
	.name = "net",
	.vm_option = "--net",
	.vm_usage =
		"  --net tap=NAME[,mac=MAC][,ip=A,mask=M][,host_mac=MAC][,mtu=N][,num_queues=N][,queue_size=N][,id=ID]\n"
		"                       a virtio-net device on a tap (created if missing; repeatable, at most 4)\n"
		"  --net vhost_user=on,socket=SOCK[,mac=MAC][,num_queues=N][,queue_size=N][,vhost_mode=client|server][,id=ID]\n"
		"                       a virtio-net device served by a vhost-user back-end\n",
	.max = 4,
	.vhost_user = true,
	.backend_option = "--net-backend",
	.backend_usage = "tap=NAME,socket=SOCK[,...]",
	.backend_client = true,
	.vu_protocol_features = NET_TYPE_PROTOCOL_FEATURES,
	.spec = net_type_spec,
	.opts_size = sizeof(struct net_type_opts),
	.opts_defaults = net_type_defaults,
	.create = net_type_create,
	.destroy = net_type_destroy,
};
