/*
 * virtio-vsock model: the three queues (rx: packets to the guest, tx:
 * packets from the guest, event: TRANSPORT_RESET) and the vdev ops. The
 * host sockets are in vsock_host.c; the per-connection protocol logic in
 * vsock_conn.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "vsock_internal.h"

#define VSOCK_TX_BUDGET 64
#define VSOCK_RX_BUDGET 256

static struct vsock_dev *vsock_from_vdev(struct vdev *dev)
{
	return (struct vsock_dev *)dev;
}

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

void vsock_rx_flush(struct vsock_dev *d)
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
			log_warn_ratelimited("virtio-vsock: the driver put a malformed chain on the rx queue; stopped until reset");
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
			log_warn_ratelimited("virtio-vsock: out of memory for a connection's buffer");
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
		if (h.op != VSOCK_OP_REQUEST || vsock_host_connect(d, &h) < 0)
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
		log_warn_ratelimited("virtio-vsock: the driver put a malformed chain on the tx queue; stopped until reset");
}

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

static void vsock_rx_kick(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;

	(void)events;
	virtq_kick_consume(&d->vqs[VSOCK_Q_RX]);
	vsock_rx_flush(d);
	vsock_reap(d);
}

static void vsock_tx_kick(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;

	(void)events;
	virtq_kick_consume(&d->vqs[VSOCK_Q_TX]);
	vsock_tx_process(d);
	vsock_rx_flush(d);
	vsock_reap(d);
}

static void vsock_event_kick(void *arg, uint32_t events)
{
	struct vsock_dev *d = arg;

	(void)events;
	virtq_kick_consume(&d->vqs[VSOCK_Q_EVENT]);
	vsock_event_send(d);
}

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

int vsock_dev_init(struct vsock_dev *d, const struct vsock_dev_config *cfg)
{
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
	err = vsock_host_open(d);
	if (err)
		goto fail;
	err = worker_init(&d->worker, "virtio-vsock");
	if (err)
		goto fail_host;
	d->host_watch = (struct worker_watch){ .fn = vsock_host_ready, .arg = d };
	d->kick_watch[VSOCK_Q_RX] = (struct worker_watch){ .fn = vsock_rx_kick, .arg = d };
	d->kick_watch[VSOCK_Q_TX] = (struct worker_watch){ .fn = vsock_tx_kick, .arg = d };
	d->kick_watch[VSOCK_Q_EVENT] = (struct worker_watch){ .fn = vsock_event_kick, .arg = d };
	err = worker_watch(&d->worker, d->ep_fd, EPOLLIN, &d->host_watch);
	if (!err)
		err = worker_start(&d->worker);
	if (err) {
		worker_destroy(&d->worker);
		goto fail_host;
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
fail_host:
	vsock_host_close(d);
fail:
	free(d->buckets);
	free(d->rx_chain);
	free(d->tx_chain);
	free(d->ev_chain);
	free(d->scratch_iov);
	d->buckets = NULL;
	d->rx_chain = d->tx_chain = d->ev_chain = NULL;
	d->scratch_iov = NULL;
	return err;
}

void vsock_dev_destroy(struct vsock_dev *d)
{
	if (!d->buckets)
		return;
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		vsock_queue_stop(&d->vdev, q);
	worker_destroy(&d->worker);
	vsock_host_close(d);
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		virtq_destroy(&d->vqs[q]);
	free(d->buckets);
	free(d->rx_chain);
	free(d->tx_chain);
	free(d->ev_chain);
	free(d->scratch_iov);
	d->buckets = NULL;
}

unsigned vsock_dev_nconns(const struct vsock_dev *d)
{
	return d->nconns;
}
