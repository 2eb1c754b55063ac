/*
 * cvmm --block-backend: the virtio-blk model served to one vhost-user
 * front-end at a time (QEMU, cloud-hypervisor, cvmm). Signals arrive on a
 * signalfd watched by a small worker: SIGINT/SIGTERM end the server through
 * its stop eventfd, SIGHUP re-reads the image size.
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
#include "cvmm/blk_opts.h"
#include "cvmm/log.h"
#include "cvmm/opts.h"
#include "cvmm/virtio_blk.h"
#include "cvmm/vu_proto.h"
#include "cvmm/vu_server.h"
#include "cvmm/worker.h"

struct blk_backend_opts {
	struct blk_opts blk;
	char *socket;
	bool client;
};

static const struct opt_spec blk_backend_spec[] = {
	BLK_OPTS_SPECS(struct blk_backend_opts, blk),
	OPT_SPEC("socket", OPT_STRING, struct blk_backend_opts, socket),
	OPT_SPEC("client", OPT_BOOL, struct blk_backend_opts, client),
	OPT_SPEC_END,
};

struct blk_backend {
	struct blk_dev blk;
	struct worker sig_worker;
	struct worker_watch sig_watch;
	int sig_fd;
	int stop_fd;
};

static void blk_backend_signal(void *arg, uint32_t events)
{
	struct blk_backend *be = arg;
	struct signalfd_siginfo si;
	uint64_t one = 1;

	(void)events;
	while (read(be->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			blk_dev_rescan(&be->blk);
			continue;
		}
		log_info("block-backend: signal %u, stopping", si.ssi_signo);
		if (write(be->stop_fd, &one, sizeof(one)) < 0)
			log_err("block-backend: cannot signal stop: %s", strerror(errno));
	}
}

/* Routes SIGINT/SIGTERM/SIGHUP to a signalfd. Called before any thread
 * exists, so every thread inherits the blocked mask. */
static int blk_backend_signals(struct blk_backend *be, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, old))
		return -EINVAL;
	/* A front-end that goes away must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	be->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return be->sig_fd < 0 ? -errno : 0;
}

int blk_backend_main(const char *text)
{
	struct blk_backend_opts o = { .blk = BLK_OPTS_DEFAULTS };
	struct blk_backend *be;
	struct vu_server_config vcfg = { 0 };
	struct vu_server srv;
	sigset_t old;
	char err_text[160];
	int ret = 1, err;
	bool dev_ok = false, sig_ok = false, srv_ok = false;

	if (opts_parse(text, blk_backend_spec, &o, NULL, err_text, sizeof(err_text)) < 0) {
		log_err("--block-backend: %s", err_text);
		return 1;
	}
	if (!o.socket) {
		log_err("--block-backend: socket=PATH is required");
		opts_free(blk_backend_spec, &o);
		return 1;
	}
	be = calloc(1, sizeof(*be));
	if (!be) {
		log_err("--block-backend: out of memory");
		opts_free(blk_backend_spec, &o);
		return 1;
	}
	be->sig_fd = be->stop_fd = -1;
	err = blk_backend_signals(be, &old);
	if (err) {
		log_err("--block-backend: cannot set up signal handling: %s", strerror(-err));
		goto out;
	}
	be->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (be->stop_fd < 0) {
		log_err("--block-backend: eventfd: %s", strerror(errno));
		goto out;
	}
	if (blk_opts_open(&be->blk, &o.blk, "--block-backend") < 0)
		goto out;
	dev_ok = true;

	vcfg.socket_path = o.socket;
	vcfg.client = o.client;
	vcfg.protocol_features = VU_SERVER_PROTOCOL_FEATURES;
	/* vu_server_init reports its own failures (socket path, bind, ...). */
	if (vu_server_init(&srv, &be->blk.vdev, &vcfg) < 0)
		goto out;
	srv_ok = true;

	err = worker_init(&be->sig_worker, "blk-signals");
	if (!err) {
		sig_ok = true;
		be->sig_watch = (struct worker_watch){ .fn = blk_backend_signal, .arg = be };
		err = worker_watch(&be->sig_worker, be->sig_fd, EPOLLIN, &be->sig_watch);
	}
	if (!err)
		err = worker_start(&be->sig_worker);
	if (err) {
		log_err("--block-backend: cannot start the signal thread: %s", strerror(-err));
		goto out;
	}

	log_info("block-backend: serving %s on %s", o.blk.path, o.socket);
	err = vu_server_run(&srv, be->stop_fd);
	if (err)
		log_err("--block-backend: %s: %s", o.socket, strerror(-err));
	else
		ret = 0;
out:
	if (sig_ok)
		worker_destroy(&be->sig_worker);
	if (srv_ok)
		vu_server_destroy(&srv);
	if (dev_ok)
		blk_dev_destroy(&be->blk);
	if (be->stop_fd >= 0)
		close(be->stop_fd);
	if (be->sig_fd >= 0) {
		close(be->sig_fd);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	free(be);
	opts_free(blk_backend_spec, &o);
	return ret;
}
