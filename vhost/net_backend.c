/*
 * cvmm --net-backend: the virtio-net model over a tap, served to one
 * vhost-user front-end at a time (QEMU, cloud-hypervisor, DPDK virtio_user,
 * cvmm). Options and defaults follow cloud-hypervisor's vhost_user_net.
 * SIGINT/SIGTERM arrive on a signalfd and end the server through its stop
 * eventfd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cvmm/backends.h"
#include "cvmm/log.h"
#include "cvmm/opts.h"
#include "cvmm/tap.h"
#include "cvmm/virtio_net.h"
#include "cvmm/vu_proto.h"
#include "cvmm/vu_server.h"
#include "cvmm/worker.h"

/* The kernel numbers taps created without a name. */
#define NET_BACKEND_DEFAULT_TAP "cvmm-net%d"
#define NET_BACKEND_MAX_MTU 65535
#define NET_BACKEND_MIN_MTU 68

/* MTU (VHOST_USER_PROTOCOL_F_NET_MTU) is not among the library's protocol
 * features yet: the MTU reaches the driver through config space. */
#define NET_BACKEND_PROTOCOL_FEATURES                                              \
	(VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |   \
	 VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct net_backend_opts {
	char *tap;
	char *socket;
	char *ip;
	char *mask;
	char *mac;
	char *host_mac;
	uint32_t mtu;
	uint32_t num_queues;
	uint32_t queue_size;
	bool client;
};

static const struct opt_spec net_backend_spec[] = {
	OPT_SPEC("tap", OPT_STRING, struct net_backend_opts, tap),
	OPT_SPEC("socket", OPT_STRING, struct net_backend_opts, socket),
	OPT_SPEC("ip", OPT_STRING, struct net_backend_opts, ip),
	OPT_SPEC("mask", OPT_STRING, struct net_backend_opts, mask),
	OPT_SPEC("mac", OPT_STRING, struct net_backend_opts, mac),
	OPT_SPEC("host_mac", OPT_STRING, struct net_backend_opts, host_mac),
	OPT_SPEC("mtu", OPT_U32, struct net_backend_opts, mtu),
	OPT_SPEC("num_queues", OPT_U32, struct net_backend_opts, num_queues),
	OPT_SPEC("queue_size", OPT_U32, struct net_backend_opts, queue_size),
	OPT_SPEC("client", OPT_BOOL, struct net_backend_opts, client),
	OPT_SPEC_END,
};

/* Checked values of the options. */
struct net_backend_params {
	uint8_t mac[6], host_mac[6];
	bool has_mac, has_host_mac, has_ip;
	struct in_addr ip, mask;
};

struct net_backend {
	struct net_dev net;
	struct worker sig_worker;
	struct worker_watch sig_watch;
	int sig_fd;
	int stop_fd;
};

static void net_backend_signal(void *arg, uint32_t events)
{
	struct net_backend *be = arg;
	struct signalfd_siginfo si;
	uint64_t one = 1;

	(void)events;
	while (read(be->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("net-backend: signal %u, stopping", si.ssi_signo);
		if (write(be->stop_fd, &one, sizeof(one)) < 0)
			log_err("net-backend: cannot signal stop: %s", strerror(errno));
	}
}

static int net_backend_check_opts(const struct net_backend_opts *o, struct net_backend_params *p)
{
	if (!o->socket) {
		log_err("--net-backend: socket=PATH is required");
		return -EINVAL;
	}
	if (o->tap && strlen(o->tap) >= IFNAMSIZ) {
		log_err("--net-backend: tap=%s: interface names have at most %d characters",
			o->tap, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (o->num_queues < 2 || o->num_queues % 2 || o->num_queues > 2 * NET_DEV_MAX_PAIRS) {
		log_err("--net-backend: num_queues=%u: must be even, 2..%u (one RX and one TX queue per pair)",
			o->num_queues, 2 * NET_DEV_MAX_PAIRS);
		return -EINVAL;
	}
	if (o->queue_size < 2 || o->queue_size > VIRTQ_MAX_SIZE || (o->queue_size & (o->queue_size - 1))) {
		log_err("--net-backend: queue_size=%u: must be a power of two, 2..%u",
			o->queue_size, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	if (o->mtu && (o->mtu < NET_BACKEND_MIN_MTU || o->mtu > NET_BACKEND_MAX_MTU)) {
		log_err("--net-backend: mtu=%u: must be %u..%u", o->mtu, NET_BACKEND_MIN_MTU,
			NET_BACKEND_MAX_MTU);
		return -EINVAL;
	}
	if (o->mac && net_parse_mac(o->mac, p->mac) < 0) {
		log_err("--net-backend: mac=%s: expected six hex bytes like 52:54:00:12:34:56", o->mac);
		return -EINVAL;
	}
	p->has_mac = o->mac != NULL;
	if (o->host_mac && net_parse_mac(o->host_mac, p->host_mac) < 0) {
		log_err("--net-backend: host_mac=%s: expected six hex bytes like 52:54:00:12:34:56",
			o->host_mac);
		return -EINVAL;
	}
	p->has_host_mac = o->host_mac != NULL;
	if (o->mask && !o->ip) {
		log_err("--net-backend: mask= needs ip=");
		return -EINVAL;
	}
	if (o->ip && inet_pton(AF_INET, o->ip, &p->ip) != 1) {
		log_err("--net-backend: ip=%s: not an IPv4 address", o->ip);
		return -EINVAL;
	}
	p->mask.s_addr = htonl(0xffffff00);
	if (o->mask && (inet_pton(AF_INET, o->mask, &p->mask) != 1 ||
			((~ntohl(p->mask.s_addr) + 1) & ~ntohl(p->mask.s_addr)))) {
		log_err("--net-backend: mask=%s: not an IPv4 netmask (like 255.255.255.0)", o->mask);
		return -EINVAL;
	}
	p->has_ip = o->ip != NULL;
	return 0;
}

/* Opens the tap and sets up the interface as asked. */
static int net_backend_open(struct net_backend *be, const struct net_backend_opts *o,
			    const struct net_backend_params *p)
{
	struct net_dev_config cfg = {
		.tap = o->tap ? o->tap : NET_BACKEND_DEFAULT_TAP,
		.num_pairs = o->num_queues / 2,
		.queue_size = (uint16_t)o->queue_size,
		.mac = p->has_mac ? p->mac : NULL,
		.mtu = (uint16_t)o->mtu,
	};
	const char *name;
	int err = net_dev_init(&be->net, &cfg);

	if (err == -EBUSY) {
		log_err("--net-backend: tap %s is in use by another process", cfg.tap);
		return err;
	}
	if (err == -EEXIST) {
		log_err("--net-backend: tap %s exists with other settings (it is %s-queue; num_queues=%u needs a %s-queue tap)",
			cfg.tap, cfg.num_pairs > 1 ? "single" : "multi", o->num_queues,
			cfg.num_pairs > 1 ? "multi" : "single");
		return err;
	}
	if (err) {
		log_err("--net-backend: cannot open tap %s: %s%s", cfg.tap, strerror(-err),
			err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
		return err;
	}
	name = be->net.tap.name;
	if (o->mtu && (err = tap_set_mtu(name, o->mtu)) < 0) {
		log_err("--net-backend: %s: cannot set mtu %u: %s", name, o->mtu, strerror(-err));
		goto fail;
	}
	if (p->has_host_mac && (err = tap_set_mac(name, p->host_mac)) < 0) {
		log_err("--net-backend: %s: cannot set host_mac: %s", name, strerror(-err));
		goto fail;
	}
	if (p->has_ip && (err = tap_set_addr(name, p->ip, p->mask)) < 0) {
		log_err("--net-backend: %s: cannot set ip/mask: %s", name, strerror(-err));
		goto fail;
	}
	err = tap_set_up(name);
	if (err) {
		log_err("--net-backend: %s: cannot bring it up: %s", name, strerror(-err));
		goto fail;
	}
	return 0;
fail:
	net_dev_destroy(&be->net);
	return err;
}

/* Routes SIGINT/SIGTERM to a signalfd. Called before any thread exists,
 * so every thread inherits the blocked mask. */
static int net_backend_signals(struct net_backend *be, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, old))
		return -EINVAL;
	/* A front-end that goes away must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	be->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return be->sig_fd < 0 ? -errno : 0;
}

int net_backend_main(const char *text)
{
	struct net_backend_opts o = { .num_queues = 2, .queue_size = NET_DEV_DEFAULT_QUEUE_SIZE };
	struct net_backend_params params = { 0 };
	struct vu_server_config vcfg = { 0 };
	struct net_backend *be;
	struct vu_server srv;
	sigset_t old;
	char err_text[160];
	int ret = 1, err;
	bool dev_ok = false, sig_ok = false, srv_ok = false;

	if (opts_parse(text, net_backend_spec, &o, NULL, err_text, sizeof(err_text)) < 0) {
		log_err("--net-backend: %s", err_text);
		return 1;
	}
	if (net_backend_check_opts(&o, &params) < 0) {
		opts_free(net_backend_spec, &o);
		return 1;
	}
	be = calloc(1, sizeof(*be));
	if (!be) {
		log_err("--net-backend: out of memory");
		opts_free(net_backend_spec, &o);
		return 1;
	}
	be->sig_fd = be->stop_fd = -1;
	err = net_backend_signals(be, &old);
	if (err) {
		log_err("--net-backend: cannot set up signal handling: %s", strerror(-err));
		goto out;
	}
	be->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->stop_fd < 0) {
		log_err("--net-backend: eventfd: %s", strerror(errno));
		goto out;
	}
	if (net_backend_open(be, &o, &params) < 0)
		goto out;
	dev_ok = true;

	vcfg.socket_path = o.socket;
	vcfg.client = o.client;
	vcfg.protocol_features = NET_BACKEND_PROTOCOL_FEATURES;
	/* With several pairs QEMU drives each pair as its own vhost device on
	 * the one connection, and each sends the whole memory table: with
	 * CONFIGURE_MEM_SLOTS that is the same ADD_MEM_REG once per pair, which
	 * the library refuses as an overlap. SET_MEM_TABLE replaces the table,
	 * so repeating it is harmless. */
	if (o.num_queues > 2)
		vcfg.protocol_features &= ~VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	/* vu_server_init reports its own failures (socket path, bind, ...). */
	if (vu_server_init(&srv, &be->net.vdev, &vcfg) < 0)
		goto out;
	srv_ok = true;

	err = worker_init(&be->sig_worker, "net-signals");
	if (!err) {
		sig_ok = true;
		be->sig_watch = (struct worker_watch){ .fn = net_backend_signal, .arg = be };
		err = worker_watch(&be->sig_worker, be->sig_fd, EPOLLIN, &be->sig_watch);
	}
	if (!err)
		err = worker_start(&be->sig_worker);
	if (err) {
		log_err("--net-backend: cannot start the signal thread: %s", strerror(-err));
		goto out;
	}

	log_info("net-backend: tap %s (%u queue pairs) on %s", be->net.tap.name, be->net.npairs, o.socket);
	err = vu_server_run(&srv, be->stop_fd);
	if (err)
		log_err("--net-backend: %s: %s", o.socket, strerror(-err));
	else
		ret = 0;
out:
	if (sig_ok)
		worker_destroy(&be->sig_worker);
	if (srv_ok)
		vu_server_destroy(&srv);
	if (dev_ok)
		net_dev_destroy(&be->net);
	if (be->stop_fd >= 0)
		close(be->stop_fd);
	if (be->sig_fd >= 0) {
		close(be->sig_fd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	free(be);
	opts_free(net_backend_spec, &o);
	return ret;
}
