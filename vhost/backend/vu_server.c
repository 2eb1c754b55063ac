/*
 * vhost-user back-end server: the socket, the per-connection session and
 * the ring life cycle (start/stop) shared by the handlers in vu_handlers.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cvmm/evfd.h"
#include "cvmm/log.h"
#include "cvmm/memguard.h"
#include "vu_internal.h"

/* ---- rings ---- */

int vu_ring_gpas(const struct vu_server *s, const struct vu_queue *q, uint16_t num,
		 uint64_t *desc, uint64_t *avail, uint64_t *used)
{
	/* Ring sizes of virtio 1.2 2.7, each with its event field. */
	if (!q->addr_set ||
	    !gmem_uaddr_to_gpa(&s->mem, q->desc_ua, 16ULL * num, desc) ||
	    !gmem_uaddr_to_gpa(&s->mem, q->avail_ua, 6 + 2ULL * num, avail) ||
	    !gmem_uaddr_to_gpa(&s->mem, q->used_ua, 6 + 8ULL * num, used))
		return -EINVAL;
	if ((*desc & 15) || (*avail & 1) || (*used & 3))
		return -EINVAL;
	return 0;
}

int vu_queue_try_start(struct vu_server *s, unsigned qi)
{
	struct vdev *dev = s->dev;
	struct vu_queue *q = &s->queues[qi];
	struct virtq *vq = &dev->vqs[qi];
	uint64_t d, a, u;
	int r;

	if (q->started || !s->features_set || !q->num || !q->addr_set || q->kick_fd < 0 ||
	    !q->enabled)
		return 0;
	r = vu_ring_gpas(s, q, q->num, &d, &a, &u);
	if (r) {
		log_warn_ratelimited("vhost-user: ring %u: addresses outside guest memory", qi);
		return r;
	}
	virtq_destroy(vq);
	virtq_init(vq);
	r = virtq_setup(vq, &s->mem, q->num, d, a, u);
	if (r) {
		log_warn_ratelimited("vhost-user: ring %u: invalid ring layout", qi);
		return r;
	}
	vq->last_avail_idx = q->base;
	vq->kick_fd = q->kick_fd;
	vq->call_fd = q->call_fd;
	if (s->inflight && qi < s->inflight_nq) {
		/* The region was sized for inflight_qsize entries per queue. */
		if (q->num > s->inflight_qsize) {
			log_warn_ratelimited("vhost-user: ring %u: size %u exceeds the inflight region's %u",
					     qi, q->num, s->inflight_qsize);
			return -EINVAL;
		}
		r = virtq_inflight_restore(vq, (struct virtq_inflight *)(void *)
					   (s->inflight + qi * virtq_inflight_size(s->inflight_qsize)));
		if (r) {
			log_warn_ratelimited("vhost-user: ring %u: inflight region inconsistent with the ring", qi);
			return r;
		}
	}
	r = vdev_queue_start(dev, qi);
	if (r) {
		log_warn_ratelimited("vhost-user: ring %u: %s cannot start it: %s", qi, dev->ops->name,
				     strerror(-r));
		return r;
	}
	q->started = true;
	log_debug("vhost-user: ring %u started (size %u, base %u)", qi, q->num, q->base);
	return 0;
}

void vu_queue_stop(struct vu_server *s, unsigned qi)
{
	struct vu_queue *q = &s->queues[qi];

	if (!q->started)
		return;
	vdev_queue_stop(s->dev, qi);
	q->base = s->dev->vqs[qi].last_avail_idx;
	q->started = false;
}

void vu_queues_stop_all(struct vu_server *s)
{
	for (unsigned i = 0; i < s->dev->num_queues; i++)
		vu_queue_stop(s, i);
}

void vu_queues_start_all(struct vu_server *s)
{
	for (unsigned i = 0; i < s->dev->num_queues; i++)
		vu_queue_try_start(s, i);
}

bool vu_queues_any_started(const struct vu_server *s)
{
	for (unsigned i = 0; i < s->dev->num_queues; i++)
		if (s->queues[i].started)
			return true;
	return false;
}

static void vu_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Forgets everything the front-end said about ring qi (it must be stopped). */
static void vu_queue_clear(struct vu_server *s, unsigned qi)
{
	struct vu_queue *q = &s->queues[qi];

	vu_close(&q->kick_fd);
	vu_close(&q->call_fd);
	vu_close(&q->err_fd);
	*q = (struct vu_queue){ .kick_fd = -1, .call_fd = -1, .err_fd = -1 };
	virtq_destroy(&s->dev->vqs[qi]);
	virtq_init(&s->dev->vqs[qi]);
}

void vu_inflight_release(struct vu_server *s)
{
	if (s->inflight_map) {
		memguard_remove(s->inflight_map);
		munmap(s->inflight_map, s->inflight_map_size);
	}
	s->inflight_map = NULL;
	s->inflight_map_size = 0;
	s->inflight = NULL;
	s->inflight_nq = 0;
	s->inflight_qsize = 0;
}

void vu_device_reset(struct vu_server *s)
{
	struct vdev *dev = s->dev;

	vu_queues_stop_all(s);
	for (unsigned i = 0; i < dev->num_queues; i++)
		vu_queue_clear(s, i);
	vdev_reset(dev);
	s->features_set = false;
	s->acked_features = 0;
	s->status = 0;
	vu_inflight_release(s);
}

/* The front-end is gone (or broke the protocol): back to a fresh state. */
static void vu_session_end(struct vu_server *s)
{
	/* A device thread may be sending on the back-end channel under
	 * backend_lock, waiting for an ack: wake it now rather than wait out
	 * its deadline. (Only this thread changes backend_fd.) */
	if (s->backend_fd >= 0)
		shutdown(s->backend_fd, SHUT_RDWR);
	vu_device_reset(s);
	gmem_destroy(&s->mem);
	gmem_init(&s->mem);
	pthread_mutex_lock(&s->backend_lock);
	vu_close(&s->backend_fd);
	s->proto_features = 0;
	pthread_mutex_unlock(&s->backend_lock);
	vu_close(&s->conn_fd);
}

/* dev->host_queue_broken, on the ring's worker: the front-end learns it
 * through the ring's error fd when it gave one (SET_VRING_ERR; the fd only
 * changes while the ring is stopped). */
static void vu_server_queue_broken(void *host, unsigned q)
{
	struct vu_server *s = host;
	int fd = s->queues[q].err_fd, r;

	if (fd < 0) {
		log_warn("vhost-user: ring %u broken; the front-end gave no error fd to tell", q);
		return;
	}
	r = evfd_signal(fd);
	if (r && r != -EAGAIN)
		log_warn("vhost-user: ring %u: cannot signal its error fd: %s", q, strerror(-r));
}

/* ---- back-end channel ---- */

/* dev->host_config_changed: tells the front-end to re-read config space. */
static void vu_server_config_changed(void *host)
{
	struct vu_server *s = host;
	uint64_t pf;
	bool ack;
	int r;

	pthread_mutex_lock(&s->backend_lock);
	pf = s->proto_features;
	if (s->backend_fd < 0 || !(pf & VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG)) ||
	    !(pf & VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ))) {
		pthread_mutex_unlock(&s->backend_lock);
		log_info("vhost-user: config changed, but the front-end set up no back-end "
			 "channel: not notified");
		return;
	}
	/* A front-end answers by reading the config over the main socket, which
	 * this thread serves when it is the server's: never wait for it there.
	 * (run_thread was set before the channel: the lock orders the two.) */
	ack = (pf & VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK)) &&
	      !pthread_equal(pthread_self(), s->run_thread);
	r = vu_msg_backend_request(s->backend_fd, VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, NULL, 0,
				   NULL, 0, ack, VU_SERVER_BACKEND_TIMEOUT_MS);
	pthread_mutex_unlock(&s->backend_lock);
	if (r)
		log_warn_ratelimited("vhost-user: sending CONFIG_CHANGE_MSG: %s", strerror(-r));
}

/* ---- socket ---- */

/* True when path is a socket nobody listens on (left by a dead back-end). */
static bool vu_socket_is_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	bool stale;
	int fd;

	if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	stale = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
		errno == ECONNREFUSED;
	close(fd);
	return stale;
}

static int vu_listen(struct vu_server *s)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	vu_unix_addr(s->path, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r < 0 && errno == EADDRINUSE && vu_socket_is_stale(&sa)) {
		unlink(sa.sun_path);
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	if (r < 0) {
		r = -errno;
		if (r == -EADDRINUSE)
			log_err("vhost-user: socket %s: in use (another back-end listens there, "
				"or it is not a socket)", s->path);
		else
			log_err("vhost-user: socket %s: bind: %s", s->path, strerror(-r));
		close(fd);
		return r;
	}
	if (stat(s->path, &st) == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
		s->sock_created = true;
	}
	if (listen(fd, 4) < 0) {
		r = -errno;
		log_err("vhost-user: socket %s: listen: %s", s->path, strerror(-r));
		close(fd);
		return r;
	}
	s->listen_fd = fd;
	return 0;
}

/* Client mode: one connection attempt. 0 or -errno. */
static int vu_connect(struct vu_server *s)
{
	int fd = vu_unix_connect(s->path);

	if (fd < 0)
		return fd;
	s->conn_fd = fd;
	return 0;
}

static int vu_validate_dev(const struct vdev *dev)
{
	if (!dev || !dev->ops || !dev->vqs || !dev->queues ||
	    (!dev->ops->handle_queue && (!dev->ops->queue_start || !dev->ops->queue_stop)))
		return -EINVAL;
	if (!dev->num_queues || dev->num_queues > VU_SERVER_MAX_QUEUES)
		return -EINVAL;
	if (!dev->queue_size_max || dev->queue_size_max > VIRTQ_MAX_SIZE ||
	    (dev->queue_size_max & (dev->queue_size_max - 1)))
		return -EINVAL;
	if (dev->config_size && !dev->ops->read_config)
		return -EINVAL;
	return 0;
}

int vu_server_init(struct vu_server *s, struct vdev *dev, const struct vu_server_config *cfg)
{
	struct sockaddr_un sa;
	int r;

	memset(s, 0, sizeof(*s));
	s->listen_fd = s->conn_fd = s->backend_fd = s->fault_fd = -1;
	r = vu_validate_dev(dev);
	if (r) {
		log_err("vhost-user: device model is not usable as a back-end "
			"(queues, queue size or ops missing)");
		return r;
	}
	if (!cfg || (cfg->client && !cfg->socket_path) ||
	    (cfg->socket_path && !*cfg->socket_path)) {
		log_err("vhost-user: no socket path");
		return -EINVAL;
	}
	if (cfg->socket_path && vu_unix_addr(cfg->socket_path, &sa)) {
		log_err("vhost-user: socket path %s is longer than %zu bytes", cfg->socket_path,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (cfg->socket_path)
		strcpy(s->path, cfg->socket_path);
	s->dev = dev;
	s->client = cfg->client;
	s->proto_offered = cfg->protocol_features & VU_SERVER_PROTOCOL_FEATURES;
	gmem_init(&s->mem);
	s->queues = calloc(dev->num_queues, sizeof(*s->queues));
	if (!s->queues)
		return -ENOMEM;
	s->fault_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->fault_fd < 0) {
		r = errno;
		free(s->queues);
		s->queues = NULL;
		return -r;
	}
	r = pthread_mutex_init(&s->backend_lock, NULL);
	if (r) {
		vu_close(&s->fault_fd);
		free(s->queues);
		s->queues = NULL;
		return -r;
	}
	for (unsigned i = 0; i < dev->num_queues; i++) {
		s->queues[i].kick_fd = s->queues[i].call_fd = s->queues[i].err_fd = -1;
		vu_queue_clear(s, i);
	}
	if (!s->client && cfg->socket_path) {
		r = vu_listen(s);
		if (r) {
			vu_close(&s->fault_fd);
			pthread_mutex_destroy(&s->backend_lock);
			free(s->queues);
			s->queues = NULL;
			return r;
		}
	}
	dev->mem = &s->mem;
	vdev_set_host(dev, vu_server_config_changed, vu_server_queue_broken, s);
	return 0;
}

void vu_server_destroy(struct vu_server *s)
{
	struct stat st;

	if (!s->queues)
		return;
	vu_session_end(s);
	vu_close(&s->listen_fd);
	if (s->sock_created && stat(s->path, &st) == 0 && st.st_dev == s->sock_dev &&
	    st.st_ino == s->sock_ino)
		unlink(s->path);
	s->sock_created = false;
	vdev_set_host(s->dev, NULL, NULL, NULL);
	s->dev->mem = NULL;
	pthread_mutex_destroy(&s->backend_lock);
	vu_close(&s->fault_fd);
	free(s->queues);
	s->queues = NULL;
}

/* ---- the loop ---- */

/* Reads and handles one message. 0 to go on, -errno to drop the connection. */
static int vu_serve_one(struct vu_server *s)
{
	struct vu_msg *m = &s->msg;
	int r = vu_msg_recv(s->conn_fd, m);

	if (r == -EBADMSG || r == -EOPNOTSUPP)
		return vu_reject(s, m, r);
	if (r) {
		if (r == -ECONNRESET)
			log_info("vhost-user: front-end disconnected");
		else
			log_warn_ratelimited("vhost-user: dropping the front-end: %s", strerror(-r));
		return r;
	}
	log_debug("vhost-user: %s", vu_msg_request_name(m->hdr.request));
	return vu_dispatch(s, m);
}

static int vu_epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Takes a new connection into the loop (the listening socket is ignored
 * while a front-end is served: one at a time). */
static int vu_session_begin(struct vu_server *s, int epfd)
{
	int r;

	/* (A front-end that stops reading costs a reply at most VU_MSG_TIMEOUT_MS:
	 * the codec's sends have a deadline.) */
	r = vu_epoll_add(epfd, s->conn_fd);
	if (r)
		return r;
	if (s->listen_fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
	log_info("vhost-user: front-end connected%s%s", *s->path ? " on " : "", s->path);
	return 0;
}

static int vu_session_drop(struct vu_server *s, int epfd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, s->conn_fd, NULL);
	vu_session_end(s);
	return s->listen_fd >= 0 ? vu_epoll_add(epfd, s->listen_fd) : 0;
}

/* The server's loop. With single, serves the connection already in
 * s->conn_fd and returns when it ends; otherwise serves front-ends from the
 * listening socket (or by connecting) until stop_fd is readable. */
static int vu_server_loop(struct vu_server *s, int stop_fd, bool single)
{
	struct epoll_event evs[4];
	bool stop = false, waiting = false;
	int epfd, r = 0;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	r = vu_epoll_add(epfd, stop_fd);
	if (!r)
		r = vu_epoll_add(epfd, s->fault_fd);
	if (!r && single)
		r = vu_session_begin(s, epfd);
	else if (!r && s->listen_fd >= 0)
		r = vu_epoll_add(epfd, s->listen_fd);
	if (r) {
		close(epfd);
		return r;
	}
	s->run_thread = pthread_self();
	while (!stop && !r) {
		int timeout = -1, n;

		if (single && s->conn_fd < 0)
			break;
		if (s->client && s->conn_fd < 0) {
			int cr = vu_connect(s);

			if (cr == 0) {
				r = vu_session_begin(s, epfd);
				if (r)
					break;
				waiting = false;
			} else {
				if (!waiting)
					log_info("vhost-user: no front-end on %s yet (%s): retrying",
						 s->path, strerror(-cr));
				waiting = true;
				timeout = VU_SERVER_RECONNECT_MS;
			}
		}
		n = epoll_wait(epfd, evs, 4, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		for (int i = 0; i < n && !stop && !r; i++) {
			int fd = evs[i].data.fd;

			if (fd == stop_fd) {
				stop = true;
			} else if (fd == s->fault_fd) {
				uint64_t faults;

				(void)!read(s->fault_fd, &faults, sizeof(faults));
				if (s->conn_fd < 0)
					continue;
				log_warn_ratelimited("vhost-user: the front-end shrank a file shared with "
						     "the back-end (guest memory or inflight region) "
						     "while in use: dropping it");
				r = vu_session_drop(s, epfd);
			} else if (fd == s->listen_fd && s->conn_fd < 0) {
				s->conn_fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				if (s->conn_fd >= 0)
					r = vu_session_begin(s, epfd);
				else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
					/* Out of fds, most likely: wait instead of spinning. */
					log_warn_ratelimited("vhost-user: accept: %s", strerror(errno));
					usleep(VU_SERVER_RECONNECT_MS * 1000);
				}
			} else if (fd == s->conn_fd && vu_serve_one(s) < 0) {
				r = vu_session_drop(s, epfd);
			}
		}
	}
	if (s->conn_fd >= 0)
		vu_session_end(s);
	close(epfd);
	return r;
}

int vu_server_run(struct vu_server *s, int stop_fd)
{
	if (s->listen_fd < 0 && !s->client)
		return -EINVAL;
	return vu_server_loop(s, stop_fd, false);
}

int vu_server_serve_conn(struct vu_server *s, int conn_fd, int stop_fd)
{
	if (s->conn_fd >= 0) {
		close(conn_fd);
		return -EBUSY;
	}
	s->conn_fd = conn_fd;
	return vu_server_loop(s, stop_fd, true);
}
