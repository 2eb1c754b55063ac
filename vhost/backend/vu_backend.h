/*
 * What every `cvmm --*-backend` process does around its device model: turn
 * SIGINT/SIGTERM into a clean stop (and SIGHUP into a callback), serve one
 * vhost-user front-end at a time, and report errors once.
 *
 * Signals are blocked for the rest of the process's life: a repeated SIGINT
 * (as `timeout` sends, to the child and again to its process group) must not
 * kill a back-end that is already shutting down.
 */
#ifndef CVMM_VU_BACKEND_H
#define CVMM_VU_BACKEND_H

#include <stdbool.h>

#include "cvmm/vdev.h"
#include "vu_server.h"
#include "cvmm/worker.h"

struct vu_backend {
	const char *who;              /* "--block-backend", ... for messages */
	int sig_fd, stop_fd;
	struct worker sig_worker;
	struct worker_watch sig_watch;
	bool sig_worker_ready;
	void (*on_hup)(void *arg);    /* NULL: SIGHUP is ignored */
	void *hup_arg;
};

/* Blocks SIGINT, SIGTERM and SIGHUP (so every thread created later inherits
 * that) and ignores SIGPIPE. Call before the device model starts threads.
 * 0 or -errno, logged. */
int vu_backend_init(struct vu_backend *b, const char *who);
/* Serves dev on cfg's socket until SIGINT or SIGTERM, logging ready (at
 * info level) once the socket is there. 0 after a clean stop, -errno
 * (logged) otherwise. */
int vu_backend_run(struct vu_backend *b, struct vdev *dev, const struct vu_server_config *cfg,
		   const char *ready);
void vu_backend_destroy(struct vu_backend *b);

#endif
