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

#include "cvmm/iov.h"
#include "cvmm/log.h"
#include "vsock_internal.h"

#define VSOCK_TX_BUDGET 64
#define VSOCK_RX_BUDGET 256

static struct vsock_dev *vsock_from_vdev(struct vdev *dev)
{
	return container_of(dev, struct vsock_dev, vdev);
}

/* Fills one RX chain from connection hc; returns the bytes written. */
static uint32_t vsock_rx_fill_conn(struct vsock_dev *d, struct vsock_hc *hc, struct virtq_chain *c)
{
	const struct iovec *in = &c->iov[c->nout];
	uint32_t room = c->in_len - VSOCK_HDR_SIZE;
	struct vsock_hdr h;
	uint32_t len;

	if (vsock_conn_next_ctrl(&hc->c, &h)) {
		iov_from_buf(in, c->nin, 0, &h, VSOCK_HDR_SIZE);
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
	iov_from_buf(in, c->nin, 0, &h, VSOCK_HDR_SIZE);
	iov_from_buf(in, c->nin, VSOCK_HDR_SIZE, hc->hbuf + hc->hoff, len);
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

	if (!vdev_queue_started(&d->vdev, VSOCK_Q_RX) || vq->broken)
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
		r = virtq_pop_or_notify(vq, c);
		if (r <= 0)
			break;
		n++;
		if (c->in_len < VSOCK_HDR_SIZE) {
			/* Too small for a header: give it back empty. */
			virtq_push(vq, c->head, 0);
			continue;
		}
		if (!hc) {
			iov_from_buf(&c->iov[c->nout], c->nin, 0, &d->replies[d->reply_head],
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
		k = iov_slice(c->iov, c->nout, VSOCK_HDR_SIZE, len, d->scratch_iov, VIRTQ_MAX_IOV);
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

		iov_to_buf(c->iov, c->nout, VSOCK_HDR_SIZE + off, hc->gbuf + tail, chunk);
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
	    iov_to_buf(c->iov, c->nout, 0, &h, VSOCK_HDR_SIZE) != VSOCK_HDR_SIZE)
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

	if (!vdev_queue_started(&d->vdev, VSOCK_Q_TX) || vq->broken)
		return;
	if (budget > VSOCK_TX_BUDGET)
		budget = VSOCK_TX_BUDGET;
	if (!budget) {
		/* Every packet may need a reply: wait until the guest took some. */
		d->tx_stalled = true;
		return;
	}
	virtq_serve(vq, d->tx_chain, budget, vsock_tx_handle, d);
}

static void vsock_event_send(struct vsock_dev *d)
{
	struct virtq *vq = &d->vqs[VSOCK_Q_EVENT];
	struct virtq_chain *c = d->ev_chain;
	uint8_t ev[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };

	while (d->reset_owed && vdev_queue_started(&d->vdev, VSOCK_Q_EVENT) && !vq->broken) {
		if (virtq_pop_or_notify(vq, c) <= 0)
			return;
		if (c->in_len < sizeof(ev)) {
			virtq_push(vq, c->head, 0);
			continue;
		}
		iov_from_buf(&c->iov[c->nout], c->nin, 0, ev, sizeof(ev));
		virtq_push(vq, c->head, sizeof(ev));
		virtq_notify(vq);
		d->reset_owed = false;
	}
}

static void vsock_handle_queue(struct vdev *dev, unsigned q)
{
	struct vsock_dev *d = vsock_from_vdev(dev);

	switch (q) {
	case VSOCK_Q_RX:
		vsock_rx_flush(d);
		vsock_reap(d);
		break;
	case VSOCK_Q_TX:
		vsock_tx_process(d);
		vsock_rx_flush(d);
		vsock_reap(d);
		break;
	default:
		vsock_event_send(d);
		break;
	}
}

static void vsock_reset(struct vdev *dev)
{
	struct vsock_dev *d = vsock_from_vdev(dev);

	/* The next driver starts without connections and is told so. The
	 * worker serves the host side even while no queue runs: pause it. */
	vdev_worker_pause(dev, 0);
	vsock_close_all(d);
	d->reset_owed = true;
	vdev_worker_resume(dev, 0);
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

static const struct vdev_ops vsock_vdev_ops = {
	.name = "virtio-vsock",
	.read_config = vsock_read_config,
	.handle_queue = vsock_handle_queue,
	.reset = vsock_reset,
};

static void vsock_dev_free_buffers(struct vsock_dev *d)
{
	free(d->buckets);
	free(d->rx_chain);
	free(d->tx_chain);
	free(d->ev_chain);
	free(d->scratch_iov);
	d->buckets = NULL;
	d->rx_chain = d->tx_chain = d->ev_chain = NULL;
	d->scratch_iov = NULL;
}

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
	/* One worker serves the queues and the host sockets, even while no
	 * queue runs (host clients are answered or timed out). */
	err = vdev_init(&d->vdev, 1, "virtio-vsock");
	if (err)
		goto fail_host;
	d->host_watch = (struct worker_watch){ .fn = vsock_host_ready, .arg = d };
	err = vdev_watch(&d->vdev, 0, d->ep_fd, EPOLLIN, &d->host_watch);
	if (!err)
		err = vdev_worker_keep_running(&d->vdev, 0);
	if (err) {
		vdev_destroy(&d->vdev);
		goto fail_host;
	}
	return 0;
fail_host:
	vsock_host_close(d);
fail:
	vsock_dev_free_buffers(d);
	return err;
}

void vsock_dev_destroy(struct vsock_dev *d)
{
	if (!d->buckets)
		return;
	vdev_destroy(&d->vdev);
	vsock_host_close(d);
	for (unsigned q = 0; q < VSOCK_NUM_QUEUES; q++)
		virtq_destroy(&d->vqs[q]);
	vsock_dev_free_buffers(d);
}

unsigned vsock_dev_nconns(const struct vsock_dev *d)
{
	return d->nconns;
}
