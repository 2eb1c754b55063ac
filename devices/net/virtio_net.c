/*
 * virtio-net device model over a tap (see virtio_net.h for the threads and
 * the RX rules). TX frames go from the chain's own buffers to the tap with
 * one writev (the header is copied and checked first, so the guest cannot
 * change it after the check). RX frames are read into a private buffer
 * first: only then is the size known, and how many chains it needs.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cvmm/iov.h"
#include "cvmm/log.h"
#include "virtio_net_dev.h"

/* Chains / frames per pass before the worker serves its other fds. */
#define NET_TX_BUDGET 256
#define NET_RX_BUDGET 256
/* Writable pieces kept for stashed RX chains: room for four maximal chains. */
#define NET_RX_POOL_IOV (4 * VIRTQ_MAX_IOV)
/* writev's limit (UIO_MAXIOV). */
#define NET_IOV_MAX 1024

static struct net_dev *net_from_vdev(struct vdev *dev)
{
	return container_of(dev, struct net_dev, vdev);
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 17; i++) {
		bool colon = i % 3 == 2;

		if (colon ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]))
			return -EINVAL;
	}
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &end) != 6)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* ---- TX: guest -> tap ---- */

int net_hdr_check_tx(const struct virtio_net_hdr *h, uint64_t f, uint32_t frame_len)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	/* DATA_VALID (and anything else) is the device's to set, not the driver's. */
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return -EINVAL;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!(f & VIRTIO_BIT(VIRTIO_NET_F_CSUM)))
			return -EINVAL;
		if ((uint32_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2 > frame_len)
			return -EINVAL;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN)))
		return -EINVAL;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4)))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!(f & VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO)))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	return le16toh(h->gso_size) ? 0 : -EINVAL;
}

/* Writes batched frame i with write(): for a kernel whose tap takes no
 * RWF_NOWAIT writes through io_uring. */
static void net_tx_write_slot(struct net_pair *p, uint64_t i)
{
	ssize_t w;

	if (i >= NET_TX_BATCH) {
		p->tx_errors++;
		return;
	}
	do
		w = write(p->tap_fd, p->tx_slots + i * NET_TX_SLOT, p->tx_len[i]);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		p->tx_errors++;
		return;
	}
	p->tx_packets++;
	p->tx_bytes += p->tx_len[i] - p->net->hdr_len;
}

/* Writes the batched frames and accounts for them. */
static void net_tx_flush(struct net_pair *p)
{
	unsigned want = p->tx_batched, seen = 0, submitted = 0;
	struct io_uring_cqe *cqe;
	int r;

	if (!want)
		return;
	p->tx_batched = 0;
	/* Tap writes complete during the submission itself: the completions
	 * are there when it returns, so reaping them costs no system call. */
	while (submitted < want) {
		r = io_uring_submit(&p->ring);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0) {
			/* The ring itself failed: what it did not take is lost as
			 * on a wire; later frames use writev. */
			log_warn("virtio-net: pair %u: io_uring submit: %s; using writev", p->index,
				 strerror(r ? -r : EIO));
			p->tx_errors += want - submitted;
			want = submitted;
			p->ring_broken = true;
			break;
		}
		submitted += (unsigned)r;
	}
	while (seen < want) {
		r = io_uring_wait_cqe(&p->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			break;
		if (cqe->res == -EOPNOTSUPP) {
			/* A kernel whose tap cannot do RWF_NOWAIT (Linux 6.1): this
			 * batch goes out by write(), later frames by writev. */
			if (!p->ring_broken)
				log_warn("virtio-net: pair %u: tap writes through io_uring not supported; using writev",
					 p->index);
			p->ring_broken = true;
			net_tx_write_slot(p, cqe->user_data);
		} else if (cqe->res < 0) {
			p->tx_errors++;
		} else {
			p->tx_packets++;
			p->tx_bytes += (unsigned)cqe->res - p->net->hdr_len;
		}
		io_uring_cqe_seen(&p->ring, cqe);
		seen++;
	}
	if (p->ring_broken) {
		io_uring_queue_exit(&p->ring);
		p->ring_ok = p->ring_broken = false;
	}
}

/* Copies a frame (header copy first, n iovecs of total bytes) into the next
 * slot and queues its write; a full batch is written at once. */
static void net_tx_queue(struct net_pair *p, const struct iovec *iov, unsigned n, uint32_t total)
{
	uint8_t *slot = p->tx_slots + (size_t)p->tx_batched * NET_TX_SLOT;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		memcpy(slot + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (p->ring_fixed_fd) {
		io_uring_prep_write(sqe, 0, slot, total, 0);
		sqe->flags |= IOSQE_FIXED_FILE;
	} else {
		io_uring_prep_write(sqe, p->tap_fd, slot, total, 0);
	}
	sqe->user_data = p->tx_batched;
	p->tx_len[p->tx_batched] = total;
	/* A write that cannot go through now fails with EAGAIN (the frame is
	 * lost, as on a full NIC queue) instead of waiting in the ring, which
	 * would stall the worker in net_tx_flush. */
	sqe->rw_flags = RWF_NOWAIT;
	if (++p->tx_batched == NET_TX_BATCH)
		net_tx_flush(p);
}

static uint32_t net_tx_handle(void *arg, struct virtq_chain *c)
{
	struct net_pair *p = arg;
	struct net_dev *n = p->net;
	struct virtio_net_hdr h = { 0 };
	unsigned hl = n->hdr_len, ni = 1;
	size_t skip = hl;
	ssize_t w;

	/* Writable buffers have no meaning on TX and are ignored. */
	if (c->out_len < hl || iov_to_buf(c->iov, c->nout, 0, &h, hl) != hl ||
	    net_hdr_check_tx(&h, n->vdev.features, c->out_len - hl) < 0) {
		p->tx_errors++;
		return 0;
	}
	p->tx_iov[0] = (struct iovec){ .iov_base = &h, .iov_len = hl };
	for (unsigned i = 0; i < c->nout; i++) {
		size_t l = c->iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		p->tx_iov[ni++] = (struct iovec){ .iov_base = (uint8_t *)c->iov[i].iov_base + skip,
						  .iov_len = l - skip };
		skip = 0;
	}
	if (ni > NET_IOV_MAX) {
		p->tx_errors++;
		return 0;
	}
	if (p->ring_ok && c->out_len <= NET_TX_SLOT) {
		net_tx_queue(p, p->tx_iov, ni, c->out_len);
		return 0;
	}
	/* Frames stay in order: what is batched goes first. */
	net_tx_flush(p);
	do
		w = writev(p->tap_fd, p->tx_iov, (int)ni);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		/* The tap is down or the host stack refused the frame: as on a
		 * wire, the frame is lost. */
		p->tx_errors++;
		return 0;
	}
	p->tx_packets++;
	p->tx_bytes += c->out_len - hl;
	return 0;
}

int net_dev_tx_process(struct net_dev *n, unsigned pi)
{
	struct net_pair *p = &n->pairs[pi];

	int r = virtq_serve(&n->vqs[2 * pi + 1], p->chain, NET_TX_BUDGET, net_tx_handle, p);

	net_tx_flush(p);
	return r;
}

/* ---- RX: tap -> guest ---- */

/* Takes one chain into the stash. 1: a chain was taken (stashed, or given
 * back unused when it has nothing writable), 0: ring empty, -EIO: broken. */
static int net_rx_stash_pop(struct net_pair *p, struct virtq *vq)
{
	struct virtq_chain *c = p->chain;
	struct net_rx_slot *s;
	int r = virtq_pop(vq, c);

	if (r <= 0)
		return r;
	if (!c->in_len) {
		virtq_push(vq, c->head, 0);
		p->rx_errors++;
		/* The stash is no longer the last chains popped. */
		if (p->nslots)
			p->stash_gap = true;
		return 1;
	}
	s = &p->slots[p->nslots++];
	s->head = c->head;
	s->cap = c->in_len;
	s->iov_off = p->slot_iov_used;
	s->niov = c->nin;
	s->used_len = 0;
	memcpy(&p->slot_iov[p->slot_iov_used], &c->iov[c->nout], c->nin * sizeof(struct iovec));
	p->slot_iov_used += c->nin;
	return 1;
}

/* No more chains can join the stash: the ring cannot hold more (or the
 * iovec pool could not take a maximal chain). */
static bool net_rx_stash_full(const struct net_pair *p, const struct virtq *vq)
{
	return p->nslots >= vq->size || p->nslots >= p->net->vdev.queue_size_max ||
	       p->slot_iov_used > NET_RX_POOL_IOV - VIRTQ_MAX_IOV;
}

/* Drops the first k stash entries, keeping the others in order. */
static void net_rx_stash_consume(struct net_pair *p, unsigned k)
{
	unsigned iovs;

	if (k == p->nslots) {
		p->nslots = 0;
		p->slot_iov_used = 0;
		p->stash_gap = false;
		return;
	}
	iovs = p->slots[k].iov_off;
	memmove(p->slots, p->slots + k, (p->nslots - k) * sizeof(*p->slots));
	p->nslots -= k;
	memmove(p->slot_iov, p->slot_iov + iovs, (p->slot_iov_used - iovs) * sizeof(struct iovec));
	p->slot_iov_used -= iovs;
	for (unsigned i = 0; i < p->nslots; i++)
		p->slots[i].iov_off -= iovs;
}

/* Publishes the first k stash entries with one used-index update: with
 * MRG_RXBUF the driver must never see the first buffers of a frame
 * without the rest (it would count the frame as broken). */
static void net_rx_publish(struct virtq *vq, const struct net_rx_slot *s, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		virtq_push_stage(vq, i, s[i].head, s[i].used_len);
	virtq_push_publish(vq, k);
}

/* Places the pending frame. 1: delivered, 0: waiting for buffers,
 * -ENOSPC: larger than the buffers the driver can offer (dropped by the
 * caller), -EIO: broken ring. */
static int net_rx_place(struct net_pair *p, struct virtq *vq)
{
	struct net_dev *n = p->net;
	uint32_t need = p->frame_len, off = 0;
	uint64_t cap = 0;
	unsigned k = 0;
	int r;

	if (!vdev_has_feature(&n->vdev, VIRTIO_NET_F_MRG_RXBUF)) {
		while (!p->nslots) {
			r = net_rx_stash_pop(p, vq);
			if (r <= 0)
				return r;
		}
		if (p->slots[0].cap < need)
			return -ENOSPC;
		k = 1;
	} else {
		while (k < p->nslots && cap < need)
			cap += p->slots[k++].cap;
		while (cap < need) {
			unsigned before = p->nslots;

			if (net_rx_stash_full(p, vq))
				return -ENOSPC;
			r = net_rx_stash_pop(p, vq);
			if (r <= 0)
				return r;
			if (p->nslots > before)
				cap += p->slots[k++].cap;
		}
	}
	if (n->hdr_len == VIRTIO_NET_HDR_LEN) {
		uint16_t nb = htole16((uint16_t)k);

		memcpy(p->frame + offsetof(struct virtio_net_hdr, num_buffers), &nb, sizeof(nb));
	}
	for (unsigned i = 0; i < k; i++) {
		struct net_rx_slot *s = &p->slots[i];

		s->used_len = (uint32_t)iov_from_buf(&p->slot_iov[s->iov_off], s->niov, 0,
						       p->frame + off, need - off);
		off += s->used_len;
	}
	net_rx_publish(vq, p->slots, k);
	net_rx_stash_consume(p, k);
	p->rx_packets++;
	p->rx_bytes += need - n->hdr_len;
	return 1;
}

static void net_rx_watch_tap(struct net_pair *p, bool on)
{
	struct vdev *dev = &p->net->vdev;

	if (on == p->tap_watched)
		return;
	if (on ? vdev_watch(dev, p->index, p->tap_fd, EPOLLIN, &p->tap_watch)
	       : vdev_unwatch(dev, p->index, p->tap_fd))
		log_warn("virtio-net: pair %u: cannot %s the tap: %s", p->index,
			 on ? "watch" : "unwatch", strerror(errno));
	else
		p->tap_watched = on;
}

int net_dev_rx_process(struct net_dev *n, unsigned pi)
{
	struct net_pair *p = &n->pairs[pi];
	struct virtq *vq = &n->vqs[2 * pi];
	uint16_t used_before = vq->used_idx;
	bool watch = true;
	int done = 0, r = 0;

	/* While buffers last, the tap's readiness drives us, not kicks. */
	virtq_disable_notify(vq);
	while (done < NET_RX_BUDGET) {
		if (!p->frame_len) {
			ssize_t len = read(p->tap_fd, p->frame, NET_MAX_FRAME);

			if (len < 0 && errno == EINTR)
				continue;
			if (len < 0 && errno == EAGAIN)
				break;
			if (len <= 0) {
				/* End of file (a socket standing in for the tap
				 * closed) or a tap error: stop watching it; the
				 * driver's next buffers try again. */
				if (len < 0)
					log_warn_ratelimited("virtio-net: pair %u: tap read: %s", pi, strerror(errno));
				virtq_enable_notify(vq);
				watch = false;
				break;
			}
			if ((size_t)len < n->hdr_len) {
				p->rx_errors++;
				continue;
			}
			/* A tap returns a frame's whole length even when it cut
			 * the frame to fit the buffer. */
			if ((size_t)len > NET_MAX_FRAME) {
				if (!p->rx_oversize++)
					log_warn_ratelimited("virtio-net: pair %u: a %zd-byte frame from the tap "
							     "is larger than %u bytes: dropped (counted; warned once)",
							     pi, len, NET_MAX_FRAME);
				continue;
			}
			p->frame_len = (uint32_t)len;
		}
		r = net_rx_place(p, vq);
		if (r == 0) {
			/* Out of buffers: ask for a kick, unless some arrived
			 * meanwhile. The frame stays pending. */
			if (virtq_enable_notify(vq)) {
				virtq_disable_notify(vq);
				continue;
			}
			watch = false;
			break;
		}
		if (r == -EIO) {
			watch = false;
			break;
		}
		if (r == -ENOSPC) {
			if (!p->rx_oversize++)
				log_warn_ratelimited("virtio-net: pair %u: a %u-byte frame is larger than the driver's "
						     "receive buffers: dropped (counted; warned once)", pi,
						     p->frame_len - n->hdr_len);
		}
		p->frame_len = 0;
		done++;
	}
	if (vq->used_idx != used_before)
		virtq_notify(vq);
	net_rx_watch_tap(p, watch);
	return r == -EIO ? -EIO : done;
}

/* Gives the stashed chains back to the driver. When they are the last ones
 * popped, stepping back over them leaves them on the ring, offered again
 * after a restart; otherwise (a chain was returned in between) they are
 * returned unused. */
static void net_rx_unstash(struct net_pair *p, struct virtq *vq)
{
	if (p->nslots && !p->stash_gap && !vq->inflight && vq->resubmit_pos >= vq->nresubmit) {
		vq->last_avail_idx -= (uint16_t)p->nslots;
	} else if (p->nslots && vq->desc && !vq->broken) {
		for (unsigned i = 0; i < p->nslots; i++)
			p->slots[i].used_len = 0;
		net_rx_publish(vq, p->slots, p->nslots);
		virtq_notify(vq);
	}
	p->nslots = 0;
	p->slot_iov_used = 0;
	p->stash_gap = false;
}

/* ---- worker handlers ---- */

static void net_on_tap(void *arg, uint32_t events)
{
	struct net_pair *p = arg;

	(void)events;
	net_dev_rx_process(p->net, p->index);
}

/* ---- control queue ---- */

/* Attaches or detaches pair i's tap queue (pair 0's stays: a tap needs
 * one). Only a change is made: the kernel refuses to detach a detached
 * queue (EINVAL). */
static int net_tap_attach(struct net_dev *n, unsigned i, bool on)
{
	struct net_pair *p = &n->pairs[i];
	int err;

	if (!n->is_tap || i == 0 || on != p->tap_detached)
		return 0;
	err = tap_queue_enable(&n->tap, i, on);
	if (!err)
		p->tap_detached = !on;
	return err;
}

/* Attaches the tap queues of the first k pairs and detaches the others. */
static int net_set_active_pairs(struct net_dev *n, unsigned k)
{
	int err = 0;

	for (unsigned i = 1; i < n->npairs && !err; i++)
		err = net_tap_attach(n, i, i < k);
	if (err) {
		log_warn("virtio-net: %s: cannot switch to %u pairs: %s", n->tap.name, k, strerror(-err));
		return err;
	}
	n->active_pairs = k;
	return 0;
}

static bool net_ctrl_parse(const struct virtq_chain *c, uint8_t **ack, uint16_t *pairs)
{
	uint8_t hdr[2];

	*ack = NULL;
	for (unsigned i = c->nout + c->nin; i-- > c->nout && !*ack;)
		if (c->iov[i].iov_len)
			*ack = (uint8_t *)c->iov[i].iov_base + c->iov[i].iov_len - 1;
	if (!*ack || iov_to_buf(c->iov, c->nout, 0, hdr, 2) != 2 || hdr[0] != VIRTIO_NET_CTRL_MQ ||
	    hdr[1] != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || iov_to_buf(c->iov, c->nout, 2, pairs, 2) != 2)
		return false;
	*pairs = le16toh(*pairs);
	return true;
}

uint32_t net_ctrl_answer(const struct virtq_chain *c, unsigned max_pairs,
			 int (*set_pairs)(void *arg, unsigned pairs), void *arg)
{
	uint8_t *ack;
	uint16_t pairs;
	bool set = net_ctrl_parse(c, &ack, &pairs);

	if (!ack)
		return 0;
	*ack = set && pairs >= 1 && pairs <= max_pairs && set_pairs(arg, pairs) == 0 ? VIRTIO_NET_OK
										   : VIRTIO_NET_ERR;
	return 1;
}

static int net_ctrl_set_pairs(void *arg, unsigned pairs)
{
	return net_set_active_pairs(arg, pairs);
}

/* One control command. Only VQ_PAIRS_SET is offered (no CTRL_RX,
 * CTRL_VLAN, ...): the rest get ERR. */
static uint32_t net_ctrl_handle(void *arg, struct virtq_chain *c)
{
	struct net_dev *n = arg;

	return net_ctrl_answer(c, n->npairs, net_ctrl_set_pairs, n);
}

static int net_dev_runtime_init(struct net_dev *n);

int net_dev_enable_ctrl(struct net_dev *n)
{
	unsigned cq = 2 * n->npairs;
	struct virtq *vqs;
	int err;

	if (n->has_ctrl)
		return 0;
	vqs = realloc(n->vqs, (cq + 1) * sizeof(*vqs));
	if (!vqs)
		return -ENOMEM;
	n->vqs = vqs;
	virtq_init(&n->vqs[cq]);
	n->ctrl_chain = malloc(sizeof(*n->ctrl_chain));
	if (!n->ctrl_chain)
		return -ENOMEM;
	/* Nothing runs yet: set the queue runtime up again with the control
	 * queue on its own worker. */
	vdev_destroy(&n->vdev);
	n->has_ctrl = true;
	n->vdev.vqs = n->vqs;
	n->vdev.num_queues = cq + 1;
	err = net_dev_runtime_init(n);
	if (err)
		return err;
	n->vdev.host_features |= VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ);
	net_dev_offer_mq(n);
	return net_set_active_pairs(n, 1);
}

/* ---- queue lifecycle ---- */

static bool net_is_ctrl(const struct net_dev *n, unsigned q)
{
	return n->has_ctrl && q == 2 * n->npairs;
}

static void net_handle_queue(struct vdev *dev, unsigned q)
{
	struct net_dev *n = net_from_vdev(dev);

	if (net_is_ctrl(n, q))
		virtq_serve(&n->vqs[q], n->ctrl_chain, NET_TX_BUDGET, net_ctrl_handle, n);
	else if (q & 1)
		net_dev_tx_process(n, q / 2);
	else
		net_dev_rx_process(n, q / 2);
}

/* Without a control queue of its own (a back-end: the front-end runs it and
 * enables the rings of the pairs the driver uses) a pair's tap queue is
 * attached while its receive ring runs. */
static void net_rx_ring_attach(struct net_dev *n, unsigned pi, bool on)
{
	int err;

	if (n->has_ctrl)
		return;
	err = net_tap_attach(n, pi, on);
	if (err)
		log_warn("virtio-net: %s: cannot %s queue %u: %s", n->tap.name, on ? "attach" : "detach",
			 pi, strerror(-err));
}

/* The pair's worker is stopped: its handlers read the pair's state. */
static int net_queue_start(struct vdev *dev, unsigned q)
{
	struct net_dev *n = net_from_vdev(dev);

	if (!net_is_ctrl(n, q) && !(q & 1)) {
		net_rx_ring_attach(n, q / 2, true);
		net_rx_watch_tap(&n->pairs[q / 2], true);
	}
	return 0;
}

static void net_queue_stop(struct vdev *dev, unsigned q)
{
	struct net_dev *n = net_from_vdev(dev);
	struct net_pair *p;

	if (net_is_ctrl(n, q) || (q & 1))
		return;
	p = &n->pairs[q / 2];
	/* Frames are handled synchronously in the handlers: the stopped
	 * worker left none half done. */
	log_info("virtio-net: pair %u: rx %llu frames, %llu oversize dropped; tx %llu frames, %llu errors",
		 p->index, (unsigned long long)p->rx_packets, (unsigned long long)p->rx_oversize,
		 (unsigned long long)p->tx_packets, (unsigned long long)p->tx_errors);
	net_rx_watch_tap(p, false);
	net_rx_unstash(p, &n->vqs[q]);
	net_rx_ring_attach(n, q / 2, false);
}

/* A worker per pair (both its queues and its tap), then one for the
 * control queue. */
static int net_dev_runtime_init(struct net_dev *n)
{
	int err = vdev_init(&n->vdev, n->npairs + 1, "net-w");

	if (err)
		return err;
	for (unsigned q = 0; q < 2 * n->npairs; q++)
		vdev_set_queue_worker(&n->vdev, q, q / 2);
	/* A worker that preempts the vCPU on each kick sends one frame per
	 * pass and hands the guest each acknowledgement with an interrupt of
	 * its own (docs/performance.md, "Where the guest's process runs"). */
	for (unsigned pi = 0; pi < n->npairs; pi++)
		vdev_worker_adaptive(&n->vdev, pi);
	if (n->has_ctrl)
		vdev_set_queue_worker(&n->vdev, 2 * n->npairs, n->npairs);
	return 0;
}

/* ---- config and features ---- */

static void net_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	struct net_dev *n = net_from_vdev(dev);

	if (off >= sizeof(n->config))
		return;
	memcpy(buf, (uint8_t *)&n->config + off,
	       len < sizeof(n->config) - off ? len : sizeof(n->config) - off);
}

static int net_set_features(struct vdev *dev, uint64_t f)
{
	struct net_dev *n = net_from_vdev(dev);
	unsigned hl = (f & (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)))
			      ? VIRTIO_NET_HDR_LEN : VIRTIO_NET_HDR_LEGACY_LEN;
	int err;

	if (f & ~dev->host_features)
		return -EINVAL;
	if (n->is_tap) {
		if (hl != n->hdr_len) {
			err = tap_set_hdr_len(&n->tap, hl);
			if (err) {
				log_err("virtio-net: %s: cannot set the vnet header size: %s",
					n->tap.name, strerror(-err));
				return err;
			}
		}
		/* Without offloads the kernel only hands us plain frames,
		 * which every driver takes: a failure here is not fatal. */
		err = tap_set_offload(&n->tap, tap_offload_flags(f));
		if (err)
			log_warn("virtio-net: %s: cannot set offloads: %s", n->tap.name, strerror(-err));
	}
	n->hdr_len = hl;
	return 0;
}

static void net_reset(struct vdev *dev)
{
	struct net_dev *n = net_from_vdev(dev);

	if (n->has_ctrl)
		net_set_active_pairs(n, 1);
	for (unsigned i = 0; i < n->npairs; i++) {
		n->pairs[i].frame_len = 0;
		n->pairs[i].nslots = 0;
		n->pairs[i].slot_iov_used = 0;
		n->pairs[i].stash_gap = false;
	}
}

static const struct vdev_ops net_vdev_ops = {
	.name = "virtio-net",
	.set_features = net_set_features,
	.read_config = net_read_config,
	.handle_queue = net_handle_queue,
	.queue_start = net_queue_start,
	.queue_stop = net_queue_stop,
	.reset = net_reset,
};

/* ---- setup ---- */

/* io_uring is an optimisation: without it (old kernel, disabled by
 * policy) frames go out with writev. */
static void net_pair_ring_init(struct net_pair *p)
{
	int r = io_uring_queue_init(NET_TX_BATCH, &p->ring, IORING_SETUP_COOP_TASKRUN);

	if (r == -EINVAL)
		r = io_uring_queue_init(NET_TX_BATCH, &p->ring, 0);
	if (r < 0) {
		log_info("virtio-net: pair %u: no io_uring (%s), TX uses writev", p->index, strerror(-r));
		return;
	}
	p->ring_ok = true;
	p->ring_fixed_fd = io_uring_register_files(&p->ring, &p->tap_fd, 1) == 0;
}

static int net_pair_init(struct net_dev *n, unsigned i, int fd)
{
	struct net_pair *p = &n->pairs[i];

	p->net = n;
	p->index = i;
	p->tap_fd = fd;
	p->tap_watch = (struct worker_watch){ .fn = net_on_tap, .arg = p };
	p->chain = malloc(sizeof(*p->chain));
	p->tx_iov = calloc(VIRTQ_MAX_IOV + 1, sizeof(*p->tx_iov));
	p->frame = malloc(NET_MAX_FRAME);
	p->slots = calloc(n->vdev.queue_size_max, sizeof(*p->slots));
	p->slot_iov = calloc(NET_RX_POOL_IOV, sizeof(*p->slot_iov));
	p->tx_slots = malloc((size_t)NET_TX_BATCH * NET_TX_SLOT);
	if (!p->chain || !p->tx_iov || !p->frame || !p->slots || !p->slot_iov || !p->tx_slots)
		return -ENOMEM;
	net_pair_ring_init(p);
	return 0;
}

static void net_pair_destroy(struct net_pair *p)
{
	free(p->chain);
	free(p->tx_iov);
	free(p->frame);
	free(p->slots);
	free(p->slot_iov);
	free(p->tx_slots);
	/* The ring is torn down asynchronously by the kernel: drop its
	 * reference to the tap now, so the interface goes away with our fd
	 * (a restarted back-end can create it again at once). */
	if (p->ring_ok && p->ring_fixed_fd)
		io_uring_unregister_files(&p->ring);
	if (p->ring_ok)
		io_uring_queue_exit(&p->ring);
	p->ring_ok = false;
}

int net_dev_init(struct net_dev *n, const struct net_dev_config *cfg)
{
	unsigned pairs = cfg->num_pairs ? cfg->num_pairs : 1;
	uint16_t qsize = cfg->queue_size ? cfg->queue_size : NET_DEV_DEFAULT_QUEUE_SIZE;
	int err;

	memset(n, 0, sizeof(*n));
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		n->tap.fds[i] = -1;
	if (pairs > NET_DEV_MAX_PAIRS || qsize < 2 || qsize > VIRTQ_MAX_SIZE || (qsize & (qsize - 1)) ||
	    (!cfg->fds && !cfg->tap))
		return -EINVAL;
	/* The header size follows the negotiated features; 12 until then. */
	n->hdr_len = VIRTIO_NET_HDR_LEN;
	if (!cfg->fds) {
		err = tap_open(&n->tap, cfg->tap, pairs, n->hdr_len);
		if (err)
			return err;
		n->is_tap = true;
	} else {
		n->tap.nqueues = pairs;
		for (unsigned i = 0; i < pairs; i++)
			n->tap.fds[i] = cfg->fds[i];
	}
	if (cfg->mac) {
		memcpy(n->config.mac, cfg->mac, 6);
	} else {
		if (getrandom(n->config.mac, 6, 0) != 6) {
			err = -EIO;
			goto fail;
		}
		/* Unicast, locally administered. */
		n->config.mac[0] = (uint8_t)((n->config.mac[0] & 0xfe) | 0x02);
	}
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16((uint16_t)pairs);
	n->config.mtu = htole16(cfg->mtu);
	n->npairs = pairs;
	n->vqs = calloc(2 * pairs, sizeof(*n->vqs));
	n->pairs = calloc(pairs, sizeof(*n->pairs));
	if (!n->vqs || !n->pairs) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < 2 * pairs; i++)
		virtq_init(&n->vqs[i]);
	n->vdev = (struct vdev){
		.ops = &net_vdev_ops,
		.device_id = VIRTIO_ID_NET,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
				 VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
				 VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
				 VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
				 VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
				 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO) |
				 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
				 VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO) |
				 (cfg->mtu ? VIRTIO_BIT(VIRTIO_NET_F_MTU) : 0),
		.num_queues = 2 * pairs,
		.queue_size_max = qsize,
		.vqs = n->vqs,
		.config_size = sizeof(n->config),
	};
	for (unsigned i = 0; i < pairs; i++) {
		err = net_pair_init(n, i, n->tap.fds[i]);
		if (err)
			goto fail;
	}
	err = net_dev_runtime_init(n);
	if (err)
		goto fail;
	/* Until a driver uses them (a ring started, or the control queue's
	 * VQ_PAIRS_SET), frames must not go to the other pairs' queues. */
	for (unsigned i = 1; i < pairs; i++)
		net_rx_ring_attach(n, i, false);
	return 0;
fail:
	net_dev_destroy(n);
	return err;
}

void net_dev_offer_mq(struct net_dev *n)
{
	if (n->npairs > 1)
		n->vdev.host_features |= VIRTIO_BIT(VIRTIO_NET_F_MQ);
}

void net_dev_destroy(struct net_dev *n)
{
	vdev_destroy(&n->vdev);
	if (n->pairs)
		for (unsigned i = 0; i < n->npairs; i++)
			net_pair_destroy(&n->pairs[i]);
	if (n->has_ctrl) {
		virtq_destroy(&n->vqs[2 * n->npairs]);
		n->has_ctrl = false;
	}
	free(n->ctrl_chain);
	n->ctrl_chain = NULL;
	if (n->vqs)
		for (unsigned i = 0; i < 2 * n->npairs; i++)
			virtq_destroy(&n->vqs[i]);
	free(n->pairs);
	free(n->vqs);
	n->pairs = NULL;
	n->vqs = NULL;
	tap_close(&n->tap);
}
