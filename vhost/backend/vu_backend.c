#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cvmm/backends.h"
#include "cvmm/confine.h"
#include "cvmm/log.h"
#include "vu_backend.h"

static void vu_backend_signal(void *arg, uint32_t events)
{
	struct vu_backend *b = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(b->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			if (b->on_hup)
				b->on_hup(b->hup_arg);
			continue;
		}
		log_info("%s: signal %u, stopping", b->who, si.ssi_signo);
		if (eventfd_write(b->stop_fd, 1) < 0)
			log_err("%s: cannot signal stop: %s", b->who, strerror(errno));
	}
}

int vu_backend_init(struct vu_backend *b, const char *who)
{
	sigset_t set;
	int err;

	memset(b, 0, sizeof(*b));
	b->who = who;
	b->sig_fd = b->stop_fd = -1;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	/* A front-end or peer that goes away must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL)) {
		log_err("%s: cannot block signals", who);
		return -EINVAL;
	}
	b->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->sig_fd < 0 || b->stop_fd < 0) {
		err = -errno;
		log_err("%s: cannot set up signal handling: %s", who, strerror(-err));
		vu_backend_destroy(b);
		return err;
	}
	return 0;
}

int vu_backend_run(struct vu_backend *b, struct vdev *dev, const struct vu_server_config *cfg,
		   const char *ready)
{
	struct vu_server srv;
	int err;

	/* vu_server_init reports its own failures (socket path, bind, ...). */
	err = vu_server_init(&srv, dev, cfg);
	if (err)
		return err;
	err = worker_init(&b->sig_worker, "backend-signals");
	if (!err) {
		b->sig_worker_ready = true;
		b->sig_watch = (struct worker_watch){ .fn = vu_backend_signal, .arg = b };
		err = worker_watch(&b->sig_worker, b->sig_fd, EPOLLIN, &b->sig_watch);
	}
	if (!err)
		err = worker_start(&b->sig_worker);
	if (err) {
		log_err("%s: cannot start the signal thread: %s", b->who, strerror(-err));
	} else {
		/* Setup is over: from here on the server runs confined
		 * (confine_thread reports its own failure). */
		err = confine_thread(CONFINE_ROLE_BACKEND);
		if (!err) {
			log_info("%s", ready);
			err = vu_server_run(&srv, b->stop_fd);
			if (err)
				log_err("%s: %s: %s", b->who, cfg->socket_path, strerror(-err));
		}
	}
	/* Stop taking signals before the device they reach goes away. */
	if (b->sig_worker_ready)
		worker_destroy(&b->sig_worker);
	b->sig_worker_ready = false;
	vu_server_destroy(&srv);
	return err;
}

void vu_backend_destroy(struct vu_backend *b)
{
	if (b->sig_worker_ready)
		worker_destroy(&b->sig_worker);
	b->sig_worker_ready = false;
	if (b->sig_fd >= 0)
		close(b->sig_fd);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	b->sig_fd = b->stop_fd = -1;
}

int vu_backend_main(const struct devtype *t, const char *opts)
{
	struct vu_server_config vcfg = {
		.protocol_features = t->vu_protocol_features & VU_SERVER_PROTOCOL_FEATURES,
	};
	struct devtype_dev d;
	struct vu_backend be;
	int ret = 1;

	/* Before the device model starts its threads: they inherit the mask. */
	if (vu_backend_init(&be, t->backend_option))
		return 1;
	if (devtype_create(&d, t, opts, DEVTYPE_BACKEND, 0) == 0) {
		be.on_hup = d.on_hup;
		be.hup_arg = d.model;
		vcfg.socket_path = d.socket;
		vcfg.client = d.client;
		ret = vu_backend_run(&be, d.vdev, &vcfg, d.ready ? d.ready : t->backend_option) ? 1 : 0;
		devtype_destroy(&d);
	}
	vu_backend_destroy(&be);
	return ret;
}
