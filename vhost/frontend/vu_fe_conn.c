/*
 * vhost-user front-end, the connection: client or server sockets, the
 * service thread (back-end requests, ring error fds, a back-end that went
 * away) and reconnects; init, connect and destroy.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/confine.h"
#include "cvmm/evfd.h"
#include "cvmm/log.h"
#include "cvmm/vu_msg.h"
#include "vu_fe_internal.h"

/* At start, a client dials for a second before giving up (then it says
 * why: no such socket, nobody listening). */
#define VU_FE_START_DIALS 20
#define VU_FE_START_DIAL_MS 50

/* ---- connections ---- */

/* A stream socket and the address of path, or -errno. */
static int vu_fe_socket(const char *path, struct sockaddr_un *sa)
{
	int fd = vu_unix_addr(path, sa);

	if (fd)
		return fd;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

static int vu_fe_dial(struct vu_frontend *fe)
{
	return vu_unix_connect(fe->path);
}

static int vu_fe_listen(struct vu_frontend *fe)
{
	struct sockaddr_un sa;
	int r, fd = vu_fe_socket(fe->path, &sa);

	if (fd < 0)
		return fd;
	unlink(fe->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	fe->listen_fd = fd;
	return 0;
}

/* Waits for the back-end to connect, or for stop_fd (-ECANCELED). */
static int vu_fe_accept(struct vu_frontend *fe, int stop_fd)
{
	struct pollfd p[2] = { { .fd = fe->listen_fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
	int fd;

	for (;;) {
		if (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return -ECANCELED;
		fd = accept4(fe->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0 || (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED))
			return fd >= 0 ? fd : -errno;
	}
}

/* Closes the connection's fds. Service thread (or no thread yet), lock held. */
void vu_fe_close_conn(struct vu_frontend *fe)
{
	if (fe->sock >= 0)
		close(fe->sock);
	if (fe->backend_fd >= 0)
		close(fe->backend_fd);
	fe->sock = fe->backend_fd = -1;
	fe->dead = false;
	fe->conn_started = false;
	fe->mem_sent = false;
}

/* Takes fd as the connection and negotiates; on failure the caller closes
 * it. Lock held. */
int vu_fe_take(struct vu_frontend *fe, int fd, bool *config_changed)
{
	fe->sock = fd;
	fe->dead = false;
	return vu_fe_negotiate(fe, config_changed);
}

/* Sleeps ms, or returns true when stop_fd fired. */
static bool vu_fe_sleep(struct vu_frontend *fe, int ms)
{
	struct pollfd p = { .fd = fe->stop_fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

/* Until a back-end is back and has the device again, or stop. */
static bool vu_fe_reconnect(struct vu_frontend *fe)
{
	int delay = VU_FRONTEND_RECONNECT_MIN_MS;
	bool logged = false;

	for (;;) {
		bool changed = false, running = false;
		int fd = fe->cfg.server ? vu_fe_accept(fe, fe->stop_fd) : vu_fe_dial(fe);
		int r = fd;

		if (fd == -ECANCELED)
			return false;
		if (fd >= 0) {
			pthread_mutex_lock(&fe->lock);
			r = vu_fe_take(fe, fd, &changed);
			if (!r)
				r = vu_fe_restore(fe);
			if (r)
				vu_fe_close_conn(fe);
			else
				fe->reconnects++;
			running = !r && fe->driver_ok && !fe->needs_reset;
			pthread_mutex_unlock(&fe->lock);
			if (!r) {
				log_info("%s: vhost-user back-end reconnected on %s", fe->name, fe->path);
				if (changed && fe->cfg.ops && fe->cfg.ops->config_changed)
					fe->cfg.ops->config_changed(fe->cfg.opaque);
				if (running && fe->cfg.ops && fe->cfg.ops->restored)
					fe->cfg.ops->restored(fe->cfg.opaque);
				return true;
			}
		}
		if (!logged)
			log_info("%s: waiting for the vhost-user back-end on %s (%s)", fe->name, fe->path,
				 strerror(-r));
		logged = true;
		if (vu_fe_sleep(fe, delay))
			return false;
		delay = delay * 2 > VU_FRONTEND_RECONNECT_MAX_MS ? VU_FRONTEND_RECONNECT_MAX_MS : delay * 2;
	}
}

/* One back-end request: CONFIG_CHANGE_MSG is acted on; anything else gets
 * an error reply with its fds closed, and the channel stays. */
void vu_fe_backend_request(struct vu_frontend *fe)
{
	struct vu_msg m;
	bool changed = false;
	int r = vu_msg_recv_backend(fe->backend_fd, &m, VU_MSG_TIMEOUT_MS);

	if (r == -EOPNOTSUPP || r == -EBADMSG) {
		log_warn("%s: vhost-user back-end request %u (%s) refused", fe->name, m.hdr.request,
			 r == -EBADMSG ? "malformed" : "not supported");
		if (m.hdr.flags & VU_FLAG_NEED_REPLY)
			vu_msg_ack(fe->backend_fd, &m, -EOPNOTSUPP);
		return;
	}
	if (r) {
		if (r != -ECONNRESET)
			log_warn("%s: vhost-user back-end request channel: %s: closed", fe->name, strerror(-r));
		pthread_mutex_lock(&fe->lock);
		close(fe->backend_fd);
		fe->backend_fd = -1;
		pthread_mutex_unlock(&fe->lock);
		return;
	}
	vu_msg_close_fds(&m);
	/* Ack first: a back-end may wait for it before it answers GET_CONFIG. */
	if (m.hdr.flags & VU_FLAG_NEED_REPLY)
		vu_msg_ack(fe->backend_fd, &m, 0);
	pthread_mutex_lock(&fe->lock);
	r = fe->config_len ? vu_fe_fetch_config(fe, &changed) : 0;
	pthread_mutex_unlock(&fe->lock);
	if (!r && fe->cfg.ops && fe->cfg.ops->config_changed)
		fe->cfg.ops->config_changed(fe->cfg.opaque);
}

/* The back-end signalled ring q's error fd. */
void vu_fe_ring_error(struct vu_frontend *fe, unsigned q)
{
	/* The back-end holds the fd too, and may have taken the count. */
	(void)evfd_take(fe->rings[q].err_fd);
	pthread_mutex_lock(&fe->lock);
	if (fe->rings[q].started && !fe->needs_reset) {
		log_warn("%s: the vhost-user back-end reported an error on queue %u", fe->name, q);
		vu_fe_fail(fe);
	}
	pthread_mutex_unlock(&fe->lock);
}

#define VU_FE_POLL_FIXED 4

static void *vu_fe_thread(void *arg)
{
	struct vu_frontend *fe = arg;
	struct pollfd p[VU_FE_POLL_FIXED + VU_FRONTEND_MAX_QUEUES];
	unsigned ring_of[VU_FRONTEND_MAX_QUEUES];

	/* It talks to a peer cvmm does not trust (sockets, fds, replies, an
	 * inflight mapping): a worker's allow-list and what reconnecting needs. */
	if (confine_thread(CONFINE_ROLE_FRONTEND))
		_exit(1);
	for (;;) {
		unsigned n = VU_FE_POLL_FIXED;
		uint64_t v;

		pthread_mutex_lock(&fe->lock);
		if (fe->sock < 0 || fe->dead) {
			vu_fe_close_conn(fe);
			pthread_mutex_unlock(&fe->lock);
			if (!fe->path[0]) {
				vu_fe_sleep(fe, -1);
				return NULL;
			}
			log_warn("%s: vhost-user back-end on %s gone: reconnecting", fe->name, fe->path);
			if (!vu_fe_reconnect(fe))
				return NULL;
			continue;
		}
		p[0] = (struct pollfd){ .fd = fe->stop_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = fe->wake_fd, .events = POLLIN };
		/* Only the hang-up: replies are read by whoever sent the request. */
		p[2] = (struct pollfd){ .fd = fe->sock, .events = POLLRDHUP };
		p[3] = (struct pollfd){ .fd = fe->backend_fd, .events = POLLIN };
		/* Error fds of the started rings (ring changes wake us). */
		for (unsigned q = 0; q < fe->cfg.num_queues; q++) {
			if (!fe->rings[q].started)
				continue;
			ring_of[n - VU_FE_POLL_FIXED] = q;
			p[n++] = (struct pollfd){ .fd = fe->rings[q].err_fd, .events = POLLIN };
		}
		pthread_mutex_unlock(&fe->lock);
		if (poll(p, n, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[0].revents)
			return NULL;
		if (p[1].revents)
			(void)!read(fe->wake_fd, &v, sizeof(v));
		if (p[3].revents)
			vu_fe_backend_request(fe);
		for (unsigned i = VU_FE_POLL_FIXED; i < n; i++)
			if (p[i].revents)
				vu_fe_ring_error(fe, ring_of[i - VU_FE_POLL_FIXED]);
		if (p[2].revents) {
			pthread_mutex_lock(&fe->lock);
			vu_fe_drop(fe, false, "closed the connection");
			pthread_mutex_unlock(&fe->lock);
		}
	}
}

/* ---- life cycle ---- */

/* The eventfds init creates, and the rings. */
static void vu_fe_close_fds(struct vu_frontend *fe)
{
	for (unsigned q = 0; q < fe->cfg.num_queues; q++)
		if (fe->rings[q].err_fd >= 0)
			close(fe->rings[q].err_fd);
	if (fe->wake_fd >= 0)
		close(fe->wake_fd);
	if (fe->stop_fd >= 0)
		close(fe->stop_fd);
	fe->wake_fd = fe->stop_fd = -1;
	free(fe->rings);
	fe->rings = NULL;
}

int vu_frontend_init(struct vu_frontend *fe, const struct vu_frontend_config *cfg)
{
	memset(fe, 0, sizeof(*fe));
	fe->sock = fe->listen_fd = fe->backend_fd = fe->inflight_fd = -1;
	fe->wake_fd = fe->stop_fd = -1;
	if (!cfg->num_queues || cfg->num_queues > VU_FRONTEND_MAX_QUEUES || cfg->config_size > VU_MAX_CONFIG_SIZE ||
	    (cfg->socket_path && strlen(cfg->socket_path) >= sizeof(fe->path)))
		return -EINVAL;
	fe->cfg = *cfg;
	snprintf(fe->name, sizeof(fe->name), "%s", cfg->name ? cfg->name : "vhost-user");
	if (cfg->socket_path)
		snprintf(fe->path, sizeof(fe->path), "%s", cfg->socket_path);
	fe->cfg.name = fe->name;
	fe->cfg.socket_path = cfg->socket_path ? fe->path : NULL;
	fe->rings = calloc(cfg->num_queues, sizeof(*fe->rings));
	if (!fe->rings)
		return -ENOMEM;
	for (unsigned q = 0; q < cfg->num_queues; q++)
		fe->rings[q].err_fd = -1;
	fe->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fe->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned q = 0; q < cfg->num_queues && fe->stop_fd >= 0; q++)
		if ((fe->rings[q].err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			break;
	if (fe->wake_fd < 0 || fe->stop_fd < 0 || fe->rings[cfg->num_queues - 1].err_fd < 0) {
		int err = -errno;

		vu_fe_close_fds(fe);
		return err;
	}
	pthread_mutex_init(&fe->lock, NULL);
	pthread_mutex_init(&fe->config_lock, NULL);
	return 0;
}

int vu_frontend_connect_fd(struct vu_frontend *fe, int fd)
{
	bool changed;
	int r;

	pthread_mutex_lock(&fe->lock);
	r = vu_fe_take(fe, fd, &changed);
	if (r)
		vu_fe_close_conn(fe);
	pthread_mutex_unlock(&fe->lock);
	if (r)
		return r == -ENOTCONN ? -EPROTO : r;
	r = -pthread_create(&fe->thread, NULL, vu_fe_thread, fe);
	if (r) {
		pthread_mutex_lock(&fe->lock);
		vu_fe_close_conn(fe);
		pthread_mutex_unlock(&fe->lock);
		return r;
	}
	fe->thread_started = true;
	return 0;
}

int vu_frontend_connect(struct vu_frontend *fe)
{
	int fd, r;

	if (!fe->path[0])
		return -EINVAL;
	if (fe->cfg.server) {
		r = vu_fe_listen(fe);
		if (r) {
			log_err("%s: cannot listen on %s: %s", fe->name, fe->path, strerror(-r));
			return r;
		}
		log_info("%s: waiting for the vhost-user back-end to connect on %s", fe->name, fe->path);
		fd = vu_fe_accept(fe, -1);
	} else {
		/* A back-end started just before may not be there yet: its
		 * socket appears at bind, and it listens a moment later. */
		for (unsigned i = 0;; i++) {
			fd = vu_fe_dial(fe);
			if (fd >= 0 || i == VU_FE_START_DIALS ||
			    (fd != -ENOENT && fd != -ECONNREFUSED && fd != -EAGAIN))
				break;
			nanosleep(&(struct timespec){ .tv_nsec = VU_FE_START_DIAL_MS * 1000000L }, NULL);
		}
	}
	if (fd < 0) {
		log_err("%s: cannot connect to the vhost-user back-end on %s: %s", fe->name, fe->path,
			strerror(-fd));
		return fd;
	}
	r = vu_frontend_connect_fd(fe, fd);
	if (r && r != -EINVAL)
		log_err("%s: the vhost-user back-end on %s failed to negotiate: %s", fe->name, fe->path,
			strerror(-r));
	return r;
}

void vu_frontend_destroy(struct vu_frontend *fe)
{
	if (!fe->rings)
		return;
	if (fe->thread_started) {
		vu_fe_wake(fe->stop_fd);
		pthread_join(fe->thread, NULL);
		fe->thread_started = false;
	}
	vu_fe_close_conn(fe);
	if (fe->listen_fd >= 0) {
		close(fe->listen_fd);
		unlink(fe->path);
	}
	vu_fe_release_inflight(fe);
	vu_fe_close_fds(fe);
	pthread_mutex_destroy(&fe->lock);
	pthread_mutex_destroy(&fe->config_lock);
}
