/*
 * cvmm --vsock-backend: the virtio-vsock model (hybrid-vsock host side on
 * uds_path) served to one vhost-user front-end at a time. The front-end
 * reads the guest CID with GET_CONFIG. When a front-end goes away the
 * server resets the device (every connection closed) and the next one is
 * told with a fresh TRANSPORT_RESET. SIGINT/SIGTERM arrive on a signalfd
 * and stop the server; both sockets are removed on the way out.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cvmm/backends.h"
#include "cvmm/log.h"
#include "cvmm/opts.h"
#include "cvmm/virtio_vsock.h"
#include "cvmm/vu_proto.h"
#include "cvmm/vu_server.h"
#include "cvmm/worker.h"

/* MQ and inflight tracking mean nothing for vsock (its state lives in the
 * host sockets, not in resubmittable requests). */
#define VSOCK_BACKEND_PROTOCOL_FEATURES                                              \
	(VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct vsock_backend_opts {
	uint64_t cid;
	char *socket;
	char *uds_path;
};

static const struct opt_spec vsock_backend_spec[] = {
	OPT_SPEC("cid", OPT_U64, struct vsock_backend_opts, cid),
	OPT_SPEC("socket", OPT_STRING, struct vsock_backend_opts, socket),
	OPT_SPEC("uds_path", OPT_STRING, struct vsock_backend_opts, uds_path),
	OPT_SPEC_END,
};

struct vsock_backend {
	struct vsock_dev dev;
	struct worker sig_worker;
	struct worker_watch sig_watch;
	int sig_fd;
	int stop_fd;
};

static void vsock_backend_signal(void *arg, uint32_t events)
{
	struct vsock_backend *be = arg;
	struct signalfd_siginfo si;
	uint64_t one = 1;

	(void)events;
	while (read(be->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("vsock-backend: signal %u, stopping", si.ssi_signo);
		if (write(be->stop_fd, &one, sizeof(one)) < 0)
			log_err("vsock-backend: cannot signal stop: %s", strerror(errno));
	}
}

static int vsock_backend_check_opts(const struct vsock_backend_opts *o, uint64_t seen)
{
	if (!(seen & 1)) {
		log_err("--vsock-backend: cid=N is required (the guest's CID, 3 or more)");
		return -EINVAL;
	}
	if (o->cid < 3 || o->cid > UINT32_MAX - 1) {
		log_err("--vsock-backend: cid=%llu: must be 3..%u (0-2 are reserved)",
			(unsigned long long)o->cid, UINT32_MAX - 1);
		return -EINVAL;
	}
	if (!o->socket) {
		log_err("--vsock-backend: socket=PATH is required (the vhost-user socket)");
		return -EINVAL;
	}
	if (!o->uds_path) {
		log_err("--vsock-backend: uds_path=PATH is required (the hybrid-vsock socket)");
		return -EINVAL;
	}
	if (!strcmp(o->socket, o->uds_path)) {
		log_err("--vsock-backend: socket and uds_path must be different paths");
		return -EINVAL;
	}
	return 0;
}

/* Routes SIGINT/SIGTERM to a signalfd. Called before any thread exists,
 * so every thread inherits the blocked mask. */
static int vsock_backend_signals(struct vsock_backend *be, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, old))
		return -EINVAL;
	/* A front-end or host program that goes away must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	be->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return be->sig_fd < 0 ? -errno : 0;
}

int vsock_backend_main(const char *text)
{
	struct vsock_backend_opts o = { 0 };
	struct vsock_backend *be;
	struct vsock_dev_config dcfg;
	struct vu_server_config vcfg = { 0 };
	struct vu_server srv;
	sigset_t old;
	char err_text[160];
	uint64_t seen = 0;
	int ret = 1, err;
	bool dev_ok = false, sig_ok = false, srv_ok = false;

	if (opts_parse(text, vsock_backend_spec, &o, &seen, err_text, sizeof(err_text)) < 0) {
		log_err("--vsock-backend: %s", err_text);
		return 1;
	}
	if (vsock_backend_check_opts(&o, seen) < 0) {
		opts_free(vsock_backend_spec, &o);
		return 1;
	}
	be = calloc(1, sizeof(*be));
	if (!be) {
		log_err("--vsock-backend: out of memory");
		opts_free(vsock_backend_spec, &o);
		return 1;
	}
	be->sig_fd = be->stop_fd = -1;
	err = vsock_backend_signals(be, &old);
	if (err) {
		log_err("--vsock-backend: cannot set up signal handling: %s", strerror(-err));
		goto out;
	}
	be->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->stop_fd < 0) {
		log_err("--vsock-backend: eventfd: %s", strerror(errno));
		goto out;
	}
	dcfg = (struct vsock_dev_config){ .guest_cid = o.cid, .uds_path = o.uds_path };
	err = vsock_dev_init(&be->dev, &dcfg);
	if (err == -EADDRINUSE) {
		log_err("--vsock-backend: uds_path %s: another process listens there", o.uds_path);
		goto out;
	} else if (err == -ENAMETOOLONG) {
		log_err("--vsock-backend: uds_path %s: too long for a Unix socket (with \"_<port>\" added)",
			o.uds_path);
		goto out;
	} else if (err) {
		log_err("--vsock-backend: cannot listen on uds_path %s: %s", o.uds_path, strerror(-err));
		goto out;
	}
	dev_ok = true;

	vcfg.socket_path = o.socket;
	vcfg.protocol_features = VSOCK_BACKEND_PROTOCOL_FEATURES & VU_SERVER_PROTOCOL_FEATURES;
	/* vu_server_init reports its own failures (socket path, bind, ...). */
	if (vu_server_init(&srv, &be->dev.vdev, &vcfg) < 0)
		goto out;
	srv_ok = true;

	err = worker_init(&be->sig_worker, "vsock-signals");
	if (!err) {
		sig_ok = true;
		be->sig_watch = (struct worker_watch){ .fn = vsock_backend_signal, .arg = be };
		err = worker_watch(&be->sig_worker, be->sig_fd, EPOLLIN, &be->sig_watch);
	}
	if (!err)
		err = worker_start(&be->sig_worker);
	if (err) {
		log_err("--vsock-backend: cannot start the signal thread: %s", strerror(-err));
		goto out;
	}

	log_info("vsock-backend: guest cid %llu, vhost-user on %s, host connections on %s",
		 (unsigned long long)o.cid, o.socket, o.uds_path);
	err = vu_server_run(&srv, be->stop_fd);
	if (err)
		log_err("--vsock-backend: %s: %s", o.socket, strerror(-err));
	else
		ret = 0;
out:
	if (sig_ok)
		worker_destroy(&be->sig_worker);
	if (srv_ok)
		vu_server_destroy(&srv);
	if (dev_ok)
		vsock_dev_destroy(&be->dev);
	if (be->stop_fd >= 0)
		close(be->stop_fd);
	if (be->sig_fd >= 0) {
		close(be->sig_fd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	free(be);
	opts_free(vsock_backend_spec, &o);
	return ret;
}
