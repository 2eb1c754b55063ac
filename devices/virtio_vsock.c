#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/virtio_vsock.h"

#define VSOCK_TX_BUDGET 64
#define VSOCK_RX_BUDGET 256
#define VSOCK_HOST_EVENTS 64
#define VSOCK_ACCEPT_BUDGET 16
#define VSOCK_TIMER_MS 500
/* Host-side ports of host-initiated connections (as Firecracker does: far
 * from the ports guest programs connect to). */
#define VSOCK_EPHEMERAL_BASE (1u << 30)

enum vsock_hc_phase {
	VSOCK_HC_HANDSHAKE,    /* host client: waiting for its CONNECT line */
	VSOCK_HC_ACTIVE,       /* has a vsock_conn (connecting or established) */
	VSOCK_HC_DEAD,         /* closed; freed after the current pass */
};

/* One host socket and, once addressed, its virtio-vsock connection. */
struct vsock_hc {
	struct vsock_conn c;
	int fd;
	enum vsock_hc_phase phase;
	bool in_hash, in_rx;
	bool host_eof;         /* read 0: the host side sends no more */
	bool host_gone;        /* hung up: not watched any more */
	bool shut_wr_done;     /* shutdown(SHUT_WR) passed on to the host */
	uint32_t events;       /* epoll interest currently set */
	uint64_t deadline_ms;  /* handshake / connect limit; 0: none */
	char line[VSOCK_LINE_MAX];
	unsigned line_len;
	uint8_t *hbuf;         /* host -> guest bytes read, not yet sent */
	uint32_t hoff, hlen;
	uint8_t *gbuf;         /* guest -> host bytes the socket did not take (ring) */
	uint32_t ghead, glen;
	struct vsock_hc *hnext;
	struct vsock_hc *prev[2], *next[2]; /* all / rx_ready (dead reuses all) */
};

enum { VSOCK_L_ALL, VSOCK_L_RX };

/* Markers for the nested epoll's non-connection fds. */
static char vsock_listen_tag, vsock_timer_tag;

static struct vsock_dev *vsock_from_vdev(struct vdev *dev)
{
	return (struct vsock_dev *)dev;
}

static uint64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- lists and lookup ---- */

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

static void vsock_list_del(struct vsock_hc_list *l, struct vsock_hc *hc, int k)
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

static struct vsock_hc *vsock_lookup(struct vsock_dev *d, uint32_t host_port, uint32_t guest_port)
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

/* ---- host connection lifetime ---- */

static void vsock_hc_set_events(struct vsock_dev *d, struct vsock_hc *hc, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.ptr = hc };

	if (hc->fd < 0 || hc->host_gone || want == hc->events)
		return;
	if (epoll_ctl(d->ep_fd, EPOLL_CTL_MOD, hc->fd, &ev) == 0)
		hc->events = want;
	else
		log_warn("virtio-vsock: epoll_ctl: %s", strerror(errno));
}

/* Closes the host side at once; the structure is freed after the pass. */
static void vsock_hc_kill(struct vsock_dev *d, struct vsock_hc *hc)
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

static void vsock_reap(struct vsock_dev *d)
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
		log_warn("virtio-vsock: epoll_ctl: %s", strerror(errno));
		free(hc);
		return NULL;
	}
	vsock_list_add(&d->all, hc, VSOCK_L_ALL);
	d->nconns++;
	return hc;
}

/* Something to put on the RX queue now? */
static bool vsock_hc_wants_rx(const struct vsock_hc *hc)
{
	if (hc->phase != VSOCK_HC_ACTIVE)
		return false;
	return hc->c.pending || (hc->hlen && vsock_conn_credit(&hc->c));
}

static void vsock_hc_sched(struct vsock_dev *d, struct vsock_hc *hc)
{
	bool want = vsock_hc_wants_rx(hc);

	if (want && !hc->in_rx)
		vsock_list_add(&d->rx_ready, hc, VSOCK_L_RX);
	else if (!want && hc->in_rx)
		vsock_list_del(&d->rx_ready, hc, VSOCK_L_RX);
	hc->in_rx = want;
}

/* Ends the connection with an RST to the guest (sent from the RX queue
 * before the structure goes). */
static void vsock_hc_abort(struct vsock_dev *d, struct vsock_hc *hc)
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

/* Writes guest bytes to the host socket; returns how many it took, or -1
 * when the host side is gone. */
static ssize_t vsock_hc_send(struct vsock_hc *hc, const struct iovec *iov, unsigned n)
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

/* Moves a connection on after anything changed: half-closes, the end of
 * both directions, host reads, epoll interest and the RX schedule. */
static void vsock_hc_progress(struct vsock_dev *d, struct vsock_hc *hc)
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

/* ---- RX queue: device -> guest ---- */

static size_t vsock_iov_to(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)iov[i].iov_base + off, s + done, l);
		done += l;
		off = 0;
	}
	return done;
}

static size_t vsock_iov_from(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	uint8_t *t = dst;
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len - done)
			l = len - done;
		memcpy(t + done, (const uint8_t *)iov[i].iov_base + off, l);
		done += l;
		off = 0;
	}
	return done;
}

/* The iovecs covering [off, off+len) of iov, into out (at most max). */
static unsigned vsock_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
				struct iovec *out, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len && k < max; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k++].iov_len = l;
		len -= l;
		off = 0;
	}
	return k;
}

/* Fills one RX chain from connection hc; returns the bytes written. */
static uint32_t vsock_rx_fill_conn(struct vsock_dev *d, struct vsock_hc *hc, struct virtq_chain *c)
{
	const struct iovec *in = &c->iov[c->nout];
	uint32_t room = c->in_len - VSOCK_HDR_SIZE;
	struct vsock_hdr h;
	uint32_t len;

	if (vsock_conn_next_ctrl(&hc->c, &h)) {
		vsock_iov_to(in, c->nin, 0, &h, VSOCK_HDR_SIZE);
		if (h.op == VSOCK_OP_RST)
			vsock_hc_kill(d, hc);
		return VSOCK_HDR_SIZE;
	}
	len = vsock_conn_credit(&hc->c);
	if (len > hc->hlen)
		len = hc->hlen;
	if (len > room)
		len = room;
	if (len > VSOCK_MAX_PKT_LEN)
		len = VSOCK_MAX_PKT_LEN;
	if (!len)
		return 0;
	vsock_conn_data_hdr(&hc->c, &h, len);
	vsock_iov_to(in, c->nin, 0, &h, VSOCK_HDR_SIZE);
	vsock_iov_to(in, c->nin, VSOCK_HDR_SIZE, hc->hbuf + hc->hoff, len);
	hc->hoff += len;
	hc->hlen -= len;
	if (!hc->hlen)
		hc->hoff = 0;
	return VSOCK_HDR_SIZE + len;
}

static void vsock_tx_process(struct vsock_dev *d);

/* Gives the guest everything owed that its RX buffers can hold. */
static void vsock_rx_flush(struct vsock_dev *d)
{
	struct virtq *vq = &d->vqs[VSOCK_Q_RX];
	struct virtq_chain *c = d->rx_chain;
	unsigned n = 0;
	uint64_t one = 1;

	if (!(d->started & (1u << VSOCK_Q_RX)) || vq->broken)
		return;
	while (n < VSOCK_RX_BUDGET) {
		struct vsock_hc *hc = NULL;
		uint32_t len = 0;
		int r;

		if (!d->reply_count) {
			hc = d->rx_ready.head;
			if (!hc)
				break;
			if (!vsock_hc_wants_rx(hc)) {
				vsock_hc_sched(d, hc);
				continue;
			}
		}
		r = virtq_pop(vq, c);
		if (r < 0) {
			log_warn("virtio-vsock: the driver put a malformed chain on the rx queue; stopped until reset");
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(vq))
				continue;
			break;
		}
		n++;
		if (c->in_len < VSOCK_HDR_SIZE) {
			/* Too small for a header: give it back empty. */
			virtq_push(vq, c->head, 0);
			continue;
		}
		if (!hc) {
			vsock_iov_to(&c->iov[c->nout], c->nin, 0, &d->replies[d->reply_head],
				     VSOCK_HDR_SIZE);
			d->reply_head = (d->reply_head + 1) % VSOCK_REPLY_MAX;
			d->reply_count--;
			len = VSOCK_HDR_SIZE;
		} else {
			len = vsock_rx_fill_conn(d, hc, c);
			if (hc->phase == VSOCK_HC_ACTIVE) {
				/* Round robin: to the back of the line. */
				if (hc->in_rx) {
					vsock_list_del(&d->rx_ready, hc, VSOCK_L_RX);
					hc->in_rx = false;
				}
				vsock_hc_progress(d, hc);
			}
		}
		virtq_push(vq, c->head, len);
	}
	if (n)
		virtq_notify(vq);
	if (n == VSOCK_RX_BUDGET && (d->reply_count || d->rx_ready.head))
		(void)!write(vq->kick_fd, &one, sizeof(one));
	if (d->tx_stalled && d->reply_count < VSOCK_REPLY_MAX) {
		/* Replies drained: read the TX queue again, and come back here
		 * for the replies that produces. */
		d->tx_stalled = false;
		vsock_tx_process(d);
		if (d->reply_count || d->rx_ready.head)
			(void)!write(vq->kick_fd, &one, sizeof(one));
	}
}

static void vsock_reply(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct vsock_hdr rst;

	if (!vsock_rst_reply(h, d->guest_cid, &rst))
		return;
	/* The TX loop takes no more packets than there are free slots. */
	d->replies[(d->reply_head + d->reply_count) % VSOCK_REPLY_MAX] = rst;
	d->reply_count++;
}

/* ---- TX queue: guest -> device ---- */

/* Connects to the host listener for guest port request *h. */
static void vsock_guest_connect(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsock_hc *hc;
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", d->uds_path, h->dst_port);
	if (d->nconns >= VSOCK_MAX_CONNS || n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		vsock_reply(d, h);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		vsock_reply(d, h);
		return;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_debug("virtio-vsock: guest port %u -> %s: %s", h->src_port, sa.sun_path,
			  strerror(errno));
		close(fd);
		vsock_reply(d, h);
		return;
	}
	hc = vsock_hc_new(d, fd, 0);
	if (!hc) {
		close(fd);
		vsock_reply(d, h);
		return;
	}
	hc->phase = VSOCK_HC_ACTIVE;
	vsock_conn_init_accept(&hc->c, h, VSOCK_BUF_ALLOC);
	vsock_hash_add(d, hc);
	vsock_hc_progress(d, hc);
}

/* Guest bytes of an accepted RW packet: straight to the host socket, the
 * rest into the backlog (bounded by the credit we gave). */
static void vsock_tx_data(struct vsock_dev *d, struct vsock_hc *hc, const struct virtq_chain *c,
			  uint32_t len)
{
	unsigned k;
	ssize_t sent = 0;
	uint32_t cap = hc->c.buf_alloc;

	if (!hc->glen && hc->fd >= 0) {
		k = vsock_iov_slice(c->iov, c->nout, VSOCK_HDR_SIZE, len, d->scratch_iov, VIRTQ_MAX_IOV);
		sent = vsock_hc_send(hc, d->scratch_iov, k);
		if (sent < 0) {
			vsock_hc_abort(d, hc);
			return;
		}
		vsock_conn_forwarded(&hc->c, (uint32_t)sent);
	}
	if ((uint32_t)sent == len)
		return;
	if (!hc->gbuf) {
		hc->gbuf = malloc(cap);
		if (!hc->gbuf) {
			log_warn("virtio-vsock: out of memory for a connection's buffer");
			vsock_hc_abort(d, hc);
			return;
		}
	}
	/* vsock_conn_recv checked len against the free room: it fits. */
	for (uint32_t off = (uint32_t)sent; off < len;) {
		uint32_t tail = (hc->ghead + hc->glen) % cap;
		uint32_t chunk = cap - tail < len - off ? cap - tail : len - off;

		vsock_iov_from(c->iov, c->nout, VSOCK_HDR_SIZE + off, hc->gbuf + tail, chunk);
		hc->glen += chunk;
		off += chunk;
	}
}

static void vsock_tx_packet(struct vsock_dev *d, const struct virtq_chain *c)
{
	struct vsock_hdr h;
	struct vsock_hc *hc;
	char ok[24];
	int n;

	/* A chain without a whole header has no addresses to answer. */
	if (c->out_len < VSOCK_HDR_SIZE ||
	    vsock_iov_from(c->iov, c->nout, 0, &h, VSOCK_HDR_SIZE) != VSOCK_HDR_SIZE)
		return;
	if (vsock_hdr_check(&h, d->guest_cid, c->out_len - VSOCK_HDR_SIZE) < 0) {
		log_debug("virtio-vsock: malformed packet (op %u type %u len %u): RST", h.op, h.type, h.len);
		vsock_reply(d, &h);
		return;
	}
	hc = vsock_lookup(d, h.dst_port, h.src_port);
	if (!hc) {
		if (h.op == VSOCK_OP_REQUEST)
			vsock_guest_connect(d, &h);
		else
			vsock_reply(d, &h);
		return;
	}
	switch (vsock_conn_recv(&hc->c, &h)) {
	case VSOCK_RECV_DATA:
		vsock_tx_data(d, hc, c, h.len);
		break;
	case VSOCK_RECV_CONNECTED:
		hc->deadline_ms = 0;
		n = snprintf(ok, sizeof(ok), "OK %u\n", hc->c.host_port);
		if (send(hc->fd, ok, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
			vsock_hc_abort(d, hc);
		break;
	default:
		break;
	}
	vsock_hc_progress(d, hc);
}

static uint32_t vsock_tx_handle(void *arg, struct virtq_chain *c)
{
	vsock_tx_packet(arg, c);
	return 0;
}

static void vsock_tx_process(struct vsock_dev *d)
{
	struct virtq *vq = &d->vqs[VSOCK_Q_TX];
	unsigned budget = VSOCK_REPLY_MAX - d->reply_count;

	if (!(d->started & (1u << VSOCK_Q_TX)) || vq->broken)
		return;
	if (budget > VSOCK_TX_BUDGET)
		budget = VSOCK_TX_BUDGET;
	if (!budget) {
		/* Every packet may need a reply: wait until the guest took some. */
		d->tx_stalled = true;
		return;
	}
	if (virtq_serve(vq, d->tx_chain, budget, vsock_tx_handle, d) < 0)
		log_warn("virtio-vsock: the driver put a malformed chain on the tx queue; stopped until reset");
}

/* ---- event queue ---- */

static void vsock_event_send(struct vsock_dev *d)
{
	struct virtq *vq = &d->vqs[VSOCK_Q_EVENT];
	struct virtq_chain *c = d->ev_chain;
	uint8_t ev[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };

	while (d->reset_owed && (d->started & (1u << VSOCK_Q_EVENT)) && !vq->broken) {
		int r = virtq_pop(vq, c);

		if (r < 0)
			return;
		if (r == 0) {
			if (virtq_enable_notify(vq))
				continue;
			return;
		}
		if (c->in_len < sizeof(ev)) {
			virtq_push(vq, c->head, 0);
			continue;
		}
		vsock_iov_to(&c->iov[c->nout], c->nin, 0, ev, sizeof(ev));
		virtq_push(vq, c->head, sizeof(ev));
		virtq_notify(vq);
		d->reset_owed = false;
	}
}

/* ---- host side: listener, host clients, timer ---- */

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

static void vsock_accept(struct vsock_dev *d)
{
	for (unsigned i = 0; i < VSOCK_ACCEPT_BUDGET; i++) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vsock_hc *hc;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("virtio-vsock: accept on %s: %s", d->uds_path, strerror(errno));
			return;
		}
		if (d->nconns >= VSOCK_MAX_CONNS) {
			log_warn("virtio-vsock: %u connections open: refusing a host client", d->nconns);
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

static void vsock_host_ready(void *arg, uint32_t events)
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

/* ---- queue kicks ---- */

static void vsock_kick_drain(int fd)
{
	uint64_t cnt;

	(void)!read(fd, &cnt, sizeof(cnt));
}

static void vsock_rx_kick(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;

	(void)events;
	vsock_kick_drain(d->vqs[VSOCK_Q_RX].kick_fd);
	vsock_rx_flush(d);
	vsock_reap(d);
}

static void vsock_tx_kick(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;

	(void)events;
	vsock_kick_drain(d->vqs[VSOCK_Q_TX].kick_fd);
	vsock_tx_process(d);
	vsock_rx_flush(d);
	vsock_reap(d);
}

static void vsock_event_kick(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;

	(void)events;
	vsock_kick_drain(d->vqs[VSOCK_Q_EVENT].kick_fd);
	vsock_event_send(d);
}

/* ---- vdev ops ---- */

/* The worker serves the host side even while no queue runs (host clients
 * are answered or timed out), so queue changes pause it briefly. */
static int vsock_worker_restart(struct vsock_dev *d)
{
	int err = worker_start(&d->worker);

	if (err)
		log_err("virtio-vsock: cannot restart the worker thread: %s", strerror(-err));
	return err;
}

static int vsock_queue_start(struct vdev *dev, unsigned q)
{
	struct vsock_dev *d = vsock_from_vdev(dev);
	uint64_t one = 1;
	int err;

	if (q >= VSOCK_NUM_QUEUES || (d->started & (1u << q)) || d->vqs[q].kick_fd < 0)
		return -EINVAL;
	worker_stop(&d->worker);
	err = worker_watch(&d->worker, d->vqs[q].kick_fd, EPOLLIN, &d->kick_watch[q]);
	if (!err)
		d->started |= 1u << q;
	if (vsock_worker_restart(d) && !err) {
		worker_unwatch(&d->worker, d->vqs[q].kick_fd);
		d->started &= ~(1u << q);
		return -EAGAIN;
	}
	if (err)
		return err;
	/* Serve what the driver queued before it could kick us. */
	(void)!write(d->vqs[q].kick_fd, &one, sizeof(one));
	return 0;
}

static void vsock_queue_stop(struct vdev *dev, unsigned q)
{
	struct vsock_dev *d = vsock_from_vdev(dev);

	if (q >= VSOCK_NUM_QUEUES || !(d->started & (1u << q)))
		return;
	worker_stop(&d->worker);
	worker_unwatch(&d->worker, d->vqs[q].kick_fd);
	d->started &= ~(1u << q);
	vsock_worker_restart(d);
}

static void vsock_close_all(struct vsock_dev *d)
{
	while (d->all.head)
		vsock_hc_kill(d, d->all.head);
	vsock_reap(d);
	d->reply_head = d->reply_count = 0;
	d->tx_stalled = false;
}

static void vsock_reset(struct vdev *dev)
{
	struct vsock_dev *d = vsock_from_vdev(dev);

	/* The next driver starts without connections and is told so. */
	worker_stop(&d->worker);
	vsock_close_all(d);
	d->reset_owed = true;
	vsock_worker_restart(d);
}

static void vsock_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	struct vsock_dev *d = vsock_from_vdev(dev);
	uint8_t cfg[8];

	for (unsigned i = 0; i < sizeof(cfg); i++)
		cfg[i] = (uint8_t)(d->guest_cid >> (8 * i));
	if (off < sizeof(cfg))
		memcpy(buf, cfg + off, len > sizeof(cfg) - off ? sizeof(cfg) - off : len);
}

static void vsock_vdev_destroy(struct vdev *dev)
{
	vsock_dev_destroy(vsock_from_vdev(dev));
}

static const struct vdev_ops vsock_vdev_ops = {
	.name = "virtio-vsock",
	.read_config = vsock_read_config,
	.queue_start = vsock_queue_start,
	.queue_stop = vsock_queue_stop,
	.reset = vsock_reset,
	.destroy = vsock_vdev_destroy,
};

/* ---- init ---- */

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

static int vsock_epoll_add(int ep, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int vsock_dev_init(struct vsock_dev *d, const struct vsock_dev_config *cfg)
{
	struct itimerspec its = {
		.it_interval = { 0, VSOCK_TIMER_MS * 1000000L },
		.it_value = { 0, VSOCK_TIMER_MS * 1000000L },
	};
	int err;

	memset(d, 0, sizeof(*d));
	d->listen_fd = d->ep_fd = d->timer_fd = -1;
	if (cfg->guest_cid < 3 || cfg->guest_cid > UINT32_MAX - 1 || !cfg->uds_path ||
	    !*cfg->uds_path)
		return -EINVAL;
	/* Room for "_<port>" (up to 11 bytes) after the path. */
	if (strlen(cfg->uds_path) + 12 > sizeof(d->uds_path))
		return -ENAMETOOLONG;
	snprintf(d->uds_path, sizeof(d->uds_path), "%s", cfg->uds_path);
	d->guest_cid = cfg->guest_cid;
	d->next_port = VSOCK_EPHEMERAL_BASE;
	d->reset_owed = true;
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		virtq_init(&d->vqs[q]);

	d->buckets = calloc(VSOCK_CONN_BUCKETS, sizeof(*d->buckets));
	d->rx_chain = malloc(sizeof(*d->rx_chain));
	d->tx_chain = malloc(sizeof(*d->tx_chain));
	d->ev_chain = malloc(sizeof(*d->ev_chain));
	d->scratch_iov = calloc(VIRTQ_MAX_IOV, sizeof(*d->scratch_iov));
	err = -ENOMEM;
	if (!d->buckets || !d->rx_chain || !d->tx_chain || !d->ev_chain || !d->scratch_iov)
		goto fail;
	d->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->ep_fd < 0 || d->timer_fd < 0 || timerfd_settime(d->timer_fd, 0, &its, NULL) < 0) {
		err = -errno;
		goto fail;
	}
	err = vsock_listen(d);
	if (err)
		goto fail;
	err = vsock_epoll_add(d->ep_fd, d->listen_fd, &vsock_listen_tag);
	if (!err)
		err = vsock_epoll_add(d->ep_fd, d->timer_fd, &vsock_timer_tag);
	if (err)
		goto fail_sock;
	err = worker_init(&d->worker, "virtio-vsock");
	if (err)
		goto fail_sock;
	d->host_watch = (struct worker_watch){ .fn = vsock_host_ready, .arg = d };
	d->kick_watch[VSOCK_Q_RX] = (struct worker_watch){ .fn = vsock_rx_kick, .arg = d };
	d->kick_watch[VSOCK_Q_TX] = (struct worker_watch){ .fn = vsock_tx_kick, .arg = d };
	d->kick_watch[VSOCK_Q_EVENT] = (struct worker_watch){ .fn = vsock_event_kick, .arg = d };
	err = worker_watch(&d->worker, d->ep_fd, EPOLLIN, &d->host_watch);
	if (!err)
		err = worker_start(&d->worker);
	if (err) {
		worker_destroy(&d->worker);
		goto fail_sock;
	}
	d->vdev = (struct vdev){
		.ops = &vsock_vdev_ops,
		.device_id = VIRTIO_ID_VSOCK,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
				 VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
		.num_queues = VSOCK_NUM_QUEUES,
		.queue_size_max = VSOCK_QUEUE_SIZE,
		.vqs = d->vqs,
		.config_size = 8,
	};
	return 0;
fail_sock:
	unlink(d->uds_path);
fail:
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->ep_fd >= 0)
		close(d->ep_fd);
	free(d->buckets);
	free(d->rx_chain);
	free(d->tx_chain);
	free(d->ev_chain);
	free(d->scratch_iov);
	d->buckets = NULL;
	d->rx_chain = d->tx_chain = d->ev_chain = NULL;
	d->scratch_iov = NULL;
	d->listen_fd = d->ep_fd = d->timer_fd = -1;
	return err;
}

void vsock_dev_destroy(struct vsock_dev *d)
{
	struct stat st;

	if (!d->buckets)
		return;
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		vsock_queue_stop(&d->vdev, q);
	worker_destroy(&d->worker);
	vsock_close_all(d);
	/* Remove the socket file only if it is still the one we made. */
	if (stat(d->uds_path, &st) == 0 && st.st_dev == d->sock_dev && st.st_ino == d->sock_ino)
		unlink(d->uds_path);
	close(d->listen_fd);
	close(d->timer_fd);
	close(d->ep_fd);
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		virtq_destroy(&d->vqs[q]);
	free(d->buckets);
	free(d->rx_chain);
	free(d->tx_chain);
	free(d->ev_chain);
	free(d->scratch_iov);
	d->buckets = NULL;
	d->listen_fd = d->ep_fd = d->timer_fd = -1;
}

unsigned vsock_dev_nconns(const struct vsock_dev *d)
{
	return d->nconns;
}
