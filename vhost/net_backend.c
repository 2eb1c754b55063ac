/*
 * cvmm --net-backend: the virtio-net model over a tap, served to one
 * vhost-user front-end at a time (QEMU, cloud-hypervisor, DPDK virtio_user,
 * cvmm). Options and defaults follow cloud-hypervisor's vhost_user_net.
 * SIGINT/SIGTERM arrive on a signalfd and end the server through its stop
 * eventfd.
 */
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
#include "cvmm/net_opts.h"
#include "cvmm/opts.h"
#include "cvmm/virtio_net.h"
#include "cvmm/vu_proto.h"
#include "cvmm/vu_server.h"
#include "cvmm/worker.h"

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
	struct net_backend_opts o = { .net = NET_OPTS_DEFAULTS };
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
	if (!o.socket) {
		log_err("--net-backend: socket=PATH is required");
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
	/* Checks the device options and reports what is wrong itself. */
	if (net_opts_open(&be->net, &o.net, "--net-backend") < 0)
		goto out;
	dev_ok = true;
	/* The front-end runs the control queue that switches pairs on. */
	net_dev_offer_mq(&be->net);

	vcfg.socket_path = o.socket;
	vcfg.client = o.client;
	vcfg.protocol_features = NET_BACKEND_PROTOCOL_FEATURES;
	/* With several pairs QEMU drives each pair as its own vhost device on
	 * the one connection, and each sends the whole memory table: with
	 * CONFIGURE_MEM_SLOTS that is the same ADD_MEM_REG once per pair, which
	 * the library refuses as an overlap. SET_MEM_TABLE replaces the table,
	 * so repeating it is harmless. */
	if (o.net.num_queues > 2)
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
