/*
 * virtio-vsock host side: the hybrid-vsock listener and its clients'
 * "CONNECT <port>" handshake, connections to "<uds_path>_<port>" for the
 * guest, relaying with credit, and connection lifetime. Host sockets live
 * in a nested epoll (ep_fd) the worker watches; a pass over its events may
 * close connections, so they are freed (vsock_reap) only after the pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "vsock_internal.h"

#define VSOCK_HOST_EVENTS 64
#define VSOCK_ACCEPT_BUDGET 16
#define VSOCK_TIMER_MS 500

/* Markers for the nested epoll's non-connection fds. */
static char vsock_listen_tag, vsock_timer_tag;

static uint64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void vsock_list_add(struct vsock_hc_list *l, struct vsock_hc *hc, int k)
{
	hc->next[k] = NULL;
	hc->prev[k] = l->tail;
	if (l->tail)
		l->tail->next[k] = hc;
	else
		l->head = hc;
	l->tail = hc;
}

void vsock_list_del(struct vsock_hc_list *l, struct vsock_hc *hc, int k)
{
	if (hc->prev[k])
		hc->prev[k]->next[k] = hc->next[k];
	else
		l->head = hc->next[k];
	if (hc->next[k])
		hc->next[k]->prev[k] = hc->prev[k];
	else
		l->tail = hc->prev[k];
	hc->prev[k] = hc->next[k] = NULL;
}

static unsigned vsock_bucket(uint32_t host_port, uint32_t guest_port)
{
	return ((host_port * 2654435761u) ^ guest_port) & (VSOCK_CONN_BUCKETS - 1);
}

struct vsock_hc *vsock_lookup(struct vsock_dev *d, uint32_t host_port, uint32_t guest_port)
{
	struct vsock_hc *hc = d->buckets[vsock_bucket(host_port, guest_port)];

	while (hc && (hc->c.host_port != host_port || hc->c.guest_port != guest_port))
		hc = hc->hnext;
	return hc;
}

static void vsock_hash_add(struct vsock_dev *d, struct vsock_hc *hc)
{
	struct vsock_hc **b = &d->buckets[vsock_bucket(hc->c.host_port, hc->c.guest_port)];

	hc->hnext = *b;
	*b = hc;
	hc->in_hash = true;
}

static void vsock_hash_del(struct vsock_dev *d, struct vsock_hc *hc)
{
	struct vsock_hc **p = &d->buckets[vsock_bucket(hc->c.host_port, hc->c.guest_port)];

	if (!hc->in_hash)
		return;
	while (*p && *p != hc)
		p = &(*p)->hnext;
	if (*p)
		*p = hc->hnext;
	hc->in_hash = false;
}

static void vsock_hc_set_events(struct vsock_dev *d, struct vsock_hc *hc, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.ptr = hc };

	if (hc->fd < 0 || hc->host_gone || want == hc->events)
		return;
	if (epoll_ctl(d->ep_fd, EPOLL_CTL_MOD, hc->fd, &ev) == 0)
		hc->events = want;
	else
		log_warn_ratelimited("virtio-vsock: epoll_ctl: %s", strerror(errno));
}

void vsock_hc_kill(struct vsock_dev *d, struct vsock_hc *hc)
{
	if (hc->phase == VSOCK_HC_DEAD)
		return;
	vsock_hash_del(d, hc);
	if (hc->in_rx) {
		vsock_list_del(&d->rx_ready, hc, VSOCK_L_RX);
		hc->in_rx = false;
	}
	vsock_list_del(&d->all, hc, VSOCK_L_ALL);
	vsock_list_add(&d->dead, hc, VSOCK_L_ALL);
	if (hc->fd >= 0) {
		if (!hc->host_gone)
			epoll_ctl(d->ep_fd, EPOLL_CTL_DEL, hc->fd, NULL);
		close(hc->fd);
		hc->fd = -1;
	}
	hc->phase = VSOCK_HC_DEAD;
	d->nconns--;
}

void vsock_reap(struct vsock_dev *d)
{
	struct vsock_hc *hc;

	while ((hc = d->dead.head)) {
		vsock_list_del(&d->dead, hc, VSOCK_L_ALL);
		free(hc->hbuf);
		free(hc->gbuf);
		free(hc);
	}
}

static struct vsock_hc *vsock_hc_new(struct vsock_dev *d, int fd, uint32_t events)
{
	struct vsock_hc *hc = calloc(1, sizeof(*hc));
	struct epoll_event ev = { .events = events };

	if (!hc)
		return NULL;
	hc->fd = fd;
	hc->events = events;
	ev.data.ptr = hc;
	if (epoll_ctl(d->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn_ratelimited("virtio-vsock: epoll_ctl: %s", strerror(errno));
		free(hc);
		return NULL;
	}
	vsock_list_add(&d->all, hc, VSOCK_L_ALL);
	d->nconns++;
	return hc;
}

bool vsock_hc_wants_rx(const struct vsock_hc *hc)
{
	if (hc->phase != VSOCK_HC_ACTIVE)
		return false;
	return hc->c.pending || (hc->hlen && vsock_conn_credit(&hc->c));
}

void vsock_hc_sched(struct vsock_dev *d, struct vsock_hc *hc)
{
	bool want = vsock_hc_wants_rx(hc);

	if (want && !hc->in_rx)
		vsock_list_add(&d->rx_ready, hc, VSOCK_L_RX);
	else if (!want && hc->in_rx)
		vsock_list_del(&d->rx_ready, hc, VSOCK_L_RX);
	hc->in_rx = want;
}

void vsock_hc_abort(struct vsock_dev *d, struct vsock_hc *hc)
{
	/* A REQUEST never sent: the guest knows nothing to reset. */
	if (hc->c.state == VSOCK_CONN_CONNECTING && (hc->c.pending & VSOCK_PEND_REQUEST)) {
		vsock_hc_kill(d, hc);
		return;
	}
	vsock_conn_reset(&hc->c);
	vsock_hash_del(d, hc);
	if (hc->fd >= 0) {
		if (!hc->host_gone)
			epoll_ctl(d->ep_fd, EPOLL_CTL_DEL, hc->fd, NULL);
		close(hc->fd);
		hc->fd = -1;
	}
	hc->deadline_ms = 0;
	vsock_hc_sched(d, hc);
}

/* How many host bytes we may read now: guest credit not yet spoken for
 * by staged bytes, and staging room. */
static uint32_t vsock_hc_read_room(const struct vsock_hc *hc)
{
	uint32_t credit = vsock_conn_credit(&hc->c);
	uint32_t room = VSOCK_HOST_BUF - hc->hlen;

	if (hc->phase != VSOCK_HC_ACTIVE || hc->host_eof || credit <= hc->hlen)
		return 0;
	return credit - hc->hlen < room ? credit - hc->hlen : room;
}

static void vsock_hc_update_events(struct vsock_dev *d, struct vsock_hc *hc)
{
	uint32_t want = 0;

	if (hc->phase != VSOCK_HC_ACTIVE)
		return;
	if (vsock_hc_read_room(hc))
		want |= EPOLLIN;
	if (hc->glen)
		want |= EPOLLOUT;
	vsock_hc_set_events(d, hc, want);
}

/* Reads what the guest has room for from the host socket. */
static void vsock_hc_fill(struct vsock_hc *hc)
{
	uint32_t room = vsock_hc_read_room(hc);
	ssize_t n;

	if (!room || hc->fd < 0)
		return;
	if (!hc->hbuf) {
		hc->hbuf = malloc(VSOCK_HOST_BUF);
		if (!hc->hbuf)
			return;
	}
	if (hc->hoff) {
		memmove(hc->hbuf, hc->hbuf + hc->hoff, hc->hlen);
		hc->hoff = 0;
	}
	n = recv(hc->fd, hc->hbuf + hc->hlen, room, MSG_DONTWAIT);
	if (n > 0)
		hc->hlen += (uint32_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		hc->host_eof = true;
}

ssize_t vsock_hc_send(struct vsock_hc *hc, const struct iovec *iov, unsigned n)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
	ssize_t r;

	do
		r = sendmsg(hc->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -1;
	return r;
}

/* Flushes the guest -> host backlog; false when the host side is gone. */
static bool vsock_hc_flush(struct vsock_hc *hc)
{
	while (hc->glen) {
		uint32_t cap = hc->c.buf_alloc;
		uint32_t first = cap - hc->ghead < hc->glen ? cap - hc->ghead : hc->glen;
		struct iovec iov[2] = {
			{ hc->gbuf + hc->ghead, first },
			{ hc->gbuf, hc->glen - first },
		};
		ssize_t n = vsock_hc_send(hc, iov, hc->glen > first ? 2 : 1);

		if (n < 0)
			return false;
		if (!n)
			break;
		hc->ghead = (uint32_t)((hc->ghead + (size_t)n) % cap);
		hc->glen -= (uint32_t)n;
		vsock_conn_forwarded(&hc->c, (uint32_t)n);
	}
	return true;
}

void vsock_hc_progress(struct vsock_dev *d, struct vsock_hc *hc)
{
	if (hc->phase != VSOCK_HC_ACTIVE)
		return;
	if (hc->c.state == VSOCK_CONN_CLOSED) {
		if (hc->c.pending)
			vsock_hc_abort(d, hc);
		else
			vsock_hc_kill(d, hc);
		return;
	}
	if (hc->c.state == VSOCK_CONN_ESTABLISHED) {
		vsock_hc_fill(hc);
		if (hc->host_eof && !hc->hlen)
			vsock_conn_shutdown(&hc->c, VSOCK_SHUTDOWN_SEND);
		if ((hc->c.guest_shut & VSOCK_SHUTDOWN_RCV) && hc->hlen) {
			/* The guest takes no more: staged bytes have nowhere to go. */
			hc->hoff = hc->hlen = 0;
		}
		if (!hc->glen && (hc->c.guest_shut & VSOCK_SHUTDOWN_SEND) && !hc->shut_wr_done &&
		    hc->fd >= 0) {
			shutdown(hc->fd, SHUT_WR);
			hc->shut_wr_done = true;
		}
		/* Both directions finished (or the guest closed its socket):
		 * the RST completes the close for the guest. */
		if (!hc->glen && (vsock_conn_guest_closed(&hc->c) ||
				  ((hc->c.guest_shut & VSOCK_SHUTDOWN_SEND) && hc->host_eof &&
				   !hc->hlen && !(hc->c.pending & VSOCK_PEND_SHUTDOWN)))) {
			vsock_hc_abort(d, hc);
			return;
		}
	}
	vsock_hc_update_events(d, hc);
	vsock_hc_sched(d, hc);
}

int vsock_host_connect(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsock_hc *hc;
	int fd, n, err;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", d->uds_path, h->dst_port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (d->nconns >= d->max_conns)
		return -EMFILE;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		log_debug("virtio-vsock: guest port %u -> %s: %s", h->src_port, sa.sun_path,
			  strerror(-err));
		close(fd);
		return err;
	}
	hc = vsock_hc_new(d, fd, 0);
	if (!hc) {
		close(fd);
		return -ENOMEM;
	}
	hc->phase = VSOCK_HC_ACTIVE;
	vsock_conn_init_accept(&hc->c, h, VSOCK_BUF_ALLOC);
	vsock_hash_add(d, hc);
	vsock_hc_progress(d, hc);
	return 0;
}

/* Parses "CONNECT <port>" (the newline already stripped). */
static bool vsock_parse_connect(const char *s, uint32_t *port)
{
	uint64_t v = 0;

	if (strncmp(s, "CONNECT ", 8))
		return false;
	s += 8;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*port = (uint32_t)v;
	return true;
}

static uint32_t vsock_alloc_port(struct vsock_dev *d, uint32_t guest_port)
{
	for (;;) {
		uint32_t p = d->next_port++;

		if (d->next_port >= 2 * VSOCK_EPHEMERAL_BASE)
			d->next_port = VSOCK_EPHEMERAL_BASE;
		if (!vsock_lookup(d, p, guest_port))
			return p;
	}
}

/* A host client's handshake line is complete: start the connection. The
 * bytes it sent after the line go to the guest once connected. */
static void vsock_hc_connect_line(struct vsock_dev *d, struct vsock_hc *hc, unsigned nl)
{
	uint32_t port;
	uint32_t extra = hc->line_len - nl - 1;

	hc->line[nl] = '\0';
	if (!vsock_parse_connect(hc->line, &port)) {
		log_debug("virtio-vsock: host client sent no CONNECT line: closed");
		vsock_hc_kill(d, hc);
		return;
	}
	hc->hbuf = malloc(VSOCK_HOST_BUF);
	if (!hc->hbuf) {
		vsock_hc_kill(d, hc);
		return;
	}
	memcpy(hc->hbuf, hc->line + nl + 1, extra);
	hc->hlen = extra;
	vsock_conn_init_connect(&hc->c, d->guest_cid, port, vsock_alloc_port(d, port), VSOCK_BUF_ALLOC);
	hc->phase = VSOCK_HC_ACTIVE;
	hc->deadline_ms = vsock_now_ms() + VSOCK_HANDSHAKE_MS;
	vsock_hash_add(d, hc);
	vsock_hc_progress(d, hc);
}

static void vsock_hc_handshake(struct vsock_dev *d, struct vsock_hc *hc)
{
	ssize_t n = recv(hc->fd, hc->line + hc->line_len, sizeof(hc->line) - hc->line_len, MSG_DONTWAIT);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vsock_hc_kill(d, hc);
		return;
	}
	hc->line_len += (unsigned)n;
	nl = memchr(hc->line, '\n', hc->line_len);
	if (nl)
		vsock_hc_connect_line(d, hc, (unsigned)(nl - hc->line));
	else if (hc->line_len == sizeof(hc->line)) {
		log_debug("virtio-vsock: host client's line too long: closed");
		vsock_hc_kill(d, hc);
	}
}

static int vsock_epoll_add(int ep, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void vsock_accept(struct vsock_dev *d)
{
	for (unsigned i = 0; i < VSOCK_ACCEPT_BUDGET; i++) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_hc *hc;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/* Out of fds or memory: the listener stays readable, so
			 * stop watching it until the next timer tick instead of
			 * spinning on the same failure. */
			log_warn_ratelimited("virtio-vsock: accept on %s: %s; pausing for %d ms",
					     d->uds_path, strerror(errno), VSOCK_TIMER_MS);
			if (epoll_ctl(d->ep_fd, EPOLL_CTL_DEL, d->listen_fd, NULL) == 0)
				d->listen_paused = true;
			return;
		}
		if (d->nconns >= d->max_conns) {
			log_warn_ratelimited("virtio-vsock: %u connections open: refusing a host client", d->nconns);
			close(fd);
			continue;
		}
		hc = vsock_hc_new(d, fd, EPOLLIN);
		if (!hc) {
			close(fd);
			continue;
		}
		hc->phase = VSOCK_HC_HANDSHAKE;
		hc->deadline_ms = vsock_now_ms() + VSOCK_HANDSHAKE_MS;
	}
}

static void vsock_timer(struct vsock_dev *d)
{
	uint64_t now = vsock_now_ms(), ticks;
	struct vsock_hc *hc, *next;

	(void)!read(d->timer_fd, &ticks, sizeof(ticks));
	if (d->listen_paused && vsock_epoll_add(d->ep_fd, d->listen_fd, &vsock_listen_tag) == 0)
		d->listen_paused = false;
	for (hc = d->all.head; hc; hc = next) {
		next = hc->next[VSOCK_L_ALL];
		if (!hc->deadline_ms || now < hc->deadline_ms)
			continue;
		if (hc->phase == VSOCK_HC_HANDSHAKE) {
			log_debug("virtio-vsock: host client sent no CONNECT line in time: closed");
			vsock_hc_kill(d, hc);
		} else {
			log_debug("virtio-vsock: guest port %u did not answer: reset", hc->c.guest_port);
			vsock_hc_abort(d, hc);
		}
	}
}

static void vsock_host_event(struct vsock_dev *d, struct vsock_hc *hc, uint32_t events)
{
	if (hc->phase == VSOCK_HC_DEAD)
		return;
	if (hc->phase == VSOCK_HC_HANDSHAKE) {
		vsock_hc_handshake(d, hc);
		return;
	}
	if (events & EPOLLERR) {
		vsock_hc_abort(d, hc);
		return;
	}
	if ((events & EPOLLOUT) && !vsock_hc_flush(hc)) {
		vsock_hc_abort(d, hc);
		return;
	}
	if (events & EPOLLHUP) {
		/* The peer closed both ways: read what is left as the guest
		 * takes it, without being woken for the hang-up again. */
		epoll_ctl(d->ep_fd, EPOLL_CTL_DEL, hc->fd, NULL);
		hc->host_gone = true;
	}
	vsock_hc_progress(d, hc);
	/* A gone peer with nothing left to read and an empty backlog is done. */
	if (hc->phase == VSOCK_HC_ACTIVE && hc->host_gone && hc->glen)
		vsock_hc_abort(d, hc);
}

void vsock_host_ready(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;
	struct epoll_event evs[VSOCK_HOST_EVENTS];
	int n;

	(void)events;
	n = epoll_wait(d->ep_fd, evs, VSOCK_HOST_EVENTS, 0);
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;

		if (p == &vsock_listen_tag)
			vsock_accept(d);
		else if (p == &vsock_timer_tag)
			vsock_timer(d);
		else
			vsock_host_event(d, p, evs[i].events);
	}
	vsock_rx_flush(d);
	vsock_reap(d);
}

void vsock_close_all(struct vsock_dev *d)
{
	while (d->all.head)
		vsock_hc_kill(d, d->all.head);
	vsock_reap(d);
	d->reply_head = d->reply_count = 0;
	d->tx_stalled = false;
}

static int vsock_listen(struct vsock_dev *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	memcpy(sa.sun_path, d->uds_path, strlen(d->uds_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int probe;
		bool live;

		err = -errno;
		if (err != -EADDRINUSE)
			goto fail;
		/* A file is there: take it over only if it is a socket nobody
		 * listens on (left behind by a process that died). */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live || lstat(d->uds_path, &st) < 0 || !S_ISSOCK(st.st_mode))
			goto fail;
		unlink(d->uds_path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			err = -errno;
			goto fail;
		}
	}
	if (listen(fd, 128) < 0 || stat(d->uds_path, &st) < 0) {
		err = -errno;
		unlink(d->uds_path);
		goto fail;
	}
	d->sock_dev = st.st_dev;
	d->sock_ino = st.st_ino;
	d->listen_fd = fd;
	return 0;
fail:
	close(fd);
	return err;
}

/* VSOCK_MAX_CONNS, lowered to stay VSOCK_FD_RESERVE below the open-file
 * limit (each connection holds one fd). */
static unsigned vsock_max_conns(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= VSOCK_MAX_CONNS + VSOCK_FD_RESERVE)
		return VSOCK_MAX_CONNS;
	return rl.rlim_cur > 2 * VSOCK_FD_RESERVE ? (unsigned)(rl.rlim_cur - VSOCK_FD_RESERVE)
						  : (unsigned)(rl.rlim_cur / 2);
}

int vsock_host_open(struct vsock_dev *d)
{
	struct itimerspec its = {
		.it_interval = { 0, VSOCK_TIMER_MS * 1000000L },
		.it_value = { 0, VSOCK_TIMER_MS * 1000000L },
	};
	int err;

	d->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->ep_fd < 0 || d->timer_fd < 0 || timerfd_settime(d->timer_fd, 0, &its, NULL) < 0) {
		err = -errno;
		goto fail;
	}
	err = vsock_listen(d);
	if (err)
		goto fail;
	d->max_conns = vsock_max_conns();
	d->listen_paused = false;
	err = vsock_epoll_add(d->ep_fd, d->listen_fd, &vsock_listen_tag);
	if (!err)
		err = vsock_epoll_add(d->ep_fd, d->timer_fd, &vsock_timer_tag);
	if (!err)
		return 0;
	unlink(d->uds_path);
	close(d->listen_fd);
fail:
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->ep_fd >= 0)
		close(d->ep_fd);
	d->listen_fd = d->ep_fd = d->timer_fd = -1;
	return err;
}

void vsock_host_close(struct vsock_dev *d)
{
	struct stat st;

	vsock_close_all(d);
	/* Remove the socket file only if it is still the one we made. */
	if (stat(d->uds_path, &st) == 0 && st.st_dev == d->sock_dev && st.st_ino == d->sock_ino)
		unlink(d->uds_path);
	close(d->listen_fd);
	close(d->timer_fd);
	close(d->ep_fd);
	d->listen_fd = d->ep_fd = d->timer_fd = -1;
}
