/*
 * vhost-user device model: the vdev interface turned into front-end calls,
 * with one table entry per device type (what config the back-end gives,
 * which protocol features the type needs, the queue cvmm serves itself).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>

#include "cvmm/devtype.h"
#include "cvmm/iov.h"
#include "cvmm/log.h"
#include "cvmm/virtio_blk.h"
#include "cvmm/virtio_fs.h"
#include "cvmm/virtio_net.h"
#include "cvmm/vu_fe_dev.h"
#include "devices/vsock/virtio_vsock.h"

/* Transport features cvmm's transports and ring layout support; a
 * back-end's other transport bits (packed ring, notification data, ...)
 * are not offered to the guest. */
#define VU_FE_TRANSPORT_FEATURES \
	(VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_VERSION_1))
/* Device-specific feature bits are 0..23. */
#define VU_FE_DEVICE_FEATURES 0xffffffULL

struct vu_fe_type {
	uint32_t device_id;
	const char *name;
	uint32_t config_size;        /* the most the guest sees */
	/* The back-end's config bytes for its features (optional). */
	uint32_t (*config_size_for)(uint64_t features);
	uint64_t protocol_features;  /* wanted */
	uint64_t required_protocol;  /* the back-end must offer these */
	uint64_t device_features;    /* device-specific bits of the back-end's the guest may see */
	uint64_t own_features;       /* bits cvmm implements and offers itself */
	/* Adjusts the back-end's config to the guest's device (optional). */
	void (*fix_config)(const struct vu_fe_dev *d, uint8_t *config);
	/* Builds the whole config when cvmm owns it (no GET_CONFIG). */
	void (*build_config)(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg);
	/* The back-end cannot take over a running device (vu_frontend.h). */
	bool state_lost_on_disconnect;
	/* The type fixes its rings (no MQ): GET_QUEUE_NUM is not asked. */
	bool fixed_queues;
	/* The queue cvmm serves itself after the back-end's (optional): its
	 * kick handler, on the device's own worker, and how many queue pairs
	 * the device needs for it to exist. */
	void (*own_queue_kick)(void *arg, uint32_t events);
	unsigned own_queue_min_pairs;
	/* Optional: checks what the back-end gave once connected (logs one
	 * line). 0 or -EINVAL. */
	int (*check)(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg);
	/* Optional: the guest reset the device (its queues are stopped). */
	void (*reset)(struct vu_fe_dev *d);
	/* Optional: a new back-end took over the running device. */
	void (*restored)(struct vu_fe_dev *d);
};

static void vu_fe_net_ctrl_kick(void *arg, uint32_t events);
static void vu_fe_net_reset(struct vu_fe_dev *d);
static void vu_fe_vsock_event_kick(void *arg, uint32_t events);
static int vu_fe_vsock_check(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg);
static void vu_fe_vsock_fix_config(const struct vu_fe_dev *d, uint8_t *config);
static void vu_fe_vsock_owe_reset(struct vu_fe_dev *d);

/* The guest gets the queue count cvmm was given, which may be fewer than
 * the back-end serves. */
static void vu_fe_blk_fix_config(const struct vu_fe_dev *d, uint8_t *config)
{
	uint16_t nq = (uint16_t)d->num_queues;

	memcpy(config + offsetof(struct virtio_blk_config, num_queues), &nq, sizeof(nq));
}

/* The virtio-blk config layout ends after the last field a feature uses
 * (as QEMU computes it): back-ends refuse reads past their end. */
static uint32_t vu_fe_blk_config_size(uint64_t features)
{
	static const struct {
		unsigned bit;
		uint32_t end;
	} ends[] = {
		{ VIRTIO_BLK_F_DISCARD, offsetof(struct virtio_blk_config, discard_sector_alignment) + 4 },
		{ VIRTIO_BLK_F_WRITE_ZEROES, offsetof(struct virtio_blk_config, write_zeroes_may_unmap) + 1 },
		{ VIRTIO_BLK_F_SECURE_ERASE, sizeof(struct virtio_blk_config) },
	};
	uint32_t size = offsetof(struct virtio_blk_config, max_discard_sectors);

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if ((features & VIRTIO_BIT(ends[i].bit)) && ends[i].end > size)
			size = ends[i].end;
	return size;
}

/* virtio-net: the back-end moves frames, cvmm owns the config (as QEMU
 * does; DPDK offers no CONFIG): the MAC, a link that is always up, the pairs. */
static void vu_fe_net_build_config(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	struct virtio_net_config c = { .status = VIRTIO_NET_S_LINK_UP, .max_virtqueue_pairs = (uint16_t)d->pairs };

	(void)cfg;
	memcpy(c.mac, d->mac, sizeof(c.mac));
	memcpy(d->config, &c, offsetof(struct virtio_net_config, mtu));
}

/* virtio-fs: virtiofsd offers no CONFIG; the tag and the request queues
 * are what the user gave (as QEMU and cloud-hypervisor do). */
static void vu_fe_fs_build_config(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	struct virtio_fs_config c = { .num_request_queues = d->num_queues - VIRTIO_FS_HIPRIO_QUEUES };

	memcpy(c.tag, cfg->tag, strlen(cfg->tag));
	memcpy(d->config, &c, sizeof(c));
}

#define VU_FE_NET_OFFLOADS                                                                              \
	(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |                            \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |                      \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO) |                        \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |                        \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO) |                          \
	 VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF))

/* virtio-vsock's STREAM and SEQPACKET (virtio 1.2 5.10.3) and
 * NO_IMPLIED_STREAM (virtio 1.3): socket types the back-end serves; the
 * event queue is the same whatever they are. */
#define VU_FE_VSOCK_FEATURES 0x7ULL
#define VU_FE_VSOCK_CONFIG_SIZE 8

static const struct vu_fe_type vu_fe_types[] = {
	{
		.device_id = VIRTIO_ID_BLOCK,
		.name = "vhost-user-blk",
		.config_size = sizeof(struct virtio_blk_config),
		.config_size_for = vu_fe_blk_config_size,
		.protocol_features = VU_FRONTEND_PROTOCOL_FEATURES,
		.required_protocol = VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG),
		.device_features = VU_FE_DEVICE_FEATURES,
		.fix_config = vu_fe_blk_fix_config,
	},
	{
		.device_id = VIRTIO_ID_NET,
		.name = "vhost-user-net",
		.config_size = offsetof(struct virtio_net_config, mtu),
		/* No INFLIGHT (a frame resent is not a request) and no CONFIG. */
		.protocol_features = VU_FRONTEND_PROTOCOL_FEATURES & ~(VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
								       VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG)),
		.device_features = VU_FE_NET_OFFLOADS,
		.own_features = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS),
		.build_config = vu_fe_net_build_config,
		.own_queue_kick = vu_fe_net_ctrl_kick,
		.own_queue_min_pairs = 2,
		.reset = vu_fe_net_reset,
	},
	{
		/* rx and tx on the back-end; the event queue is cvmm's (as in
		 * QEMU's vhost-user-vsock), so cvmm can tell the guest when a
		 * new back-end took over. No INFLIGHT: a connection's state is
		 * in the back-end's host sockets, which die with it. */
		.device_id = VIRTIO_ID_VSOCK,
		.name = "vhost-user-vsock",
		.config_size = VU_FE_VSOCK_CONFIG_SIZE,
		.protocol_features = VU_FRONTEND_PROTOCOL_FEATURES & ~(VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
								       VU_BIT(VHOST_USER_PROTOCOL_F_MQ)),
		.device_features = VU_FE_VSOCK_FEATURES,
		.fix_config = vu_fe_vsock_fix_config,
		.fixed_queues = true,
		.own_queue_kick = vu_fe_vsock_event_kick,
		.check = vu_fe_vsock_check,
		.reset = vu_fe_vsock_owe_reset,
		.restored = vu_fe_vsock_owe_reset,
	},
	{
		.device_id = VIRTIO_ID_FS,
		.name = "vhost-user-fs",
		.config_size = sizeof(struct virtio_fs_config),
		/* No INFLIGHT (a FUSE session does not survive its back-end
		 * anyway) and no CONFIG (cvmm builds it). No device features:
		 * NOTIFICATION needs a notification queue cvmm does not make. */
		.protocol_features = VU_FRONTEND_PROTOCOL_FEATURES & ~(VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) |
								       VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG)),
		.build_config = vu_fe_fs_build_config,
		/* virtiofsd keeps the guest's open files and inodes in its
		 * process: a new one cannot go on with the old FUSE session. */
		.state_lost_on_disconnect = true,
	},
};

static struct vu_fe_dev *vu_fe_of(struct vdev *dev)
{
	return (struct vu_fe_dev *)dev;
}

static void vu_fe_dev_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	struct vu_fe_dev *d = vu_fe_of(dev);
	uint8_t config[VU_MAX_CONFIG_SIZE];

	if (d->type->build_config) {
		memcpy(buf, d->config + off, len);
		return;
	}
	vu_frontend_read_config(&d->fe, 0, config, dev->config_size);
	if (d->type->fix_config)
		d->type->fix_config(d, config);
	memcpy(buf, config + off, len);
}

static int vu_fe_dev_write_config(struct vdev *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct vu_fe_dev *d = vu_fe_of(dev);

	/* A config cvmm owns is read-only (MAC writes need CTRL_MAC_ADDR). */
	return d->type->build_config ? -EINVAL : vu_frontend_write_config(&d->fe, off, buf, len);
}

/* ---- net's control queue ---- */

/* Pairs after the first start disabled on the back-end until the driver
 * switches them on. */
static int vu_fe_net_set_pairs(void *arg, unsigned active)
{
	struct vu_fe_dev *d = arg;
	int err = 0;

	for (unsigned q = 2; q < 2 * d->pairs && !err; q++)
		err = vu_frontend_ring_enable(&d->fe, q, q / 2 < active);
	return err;
}

static uint32_t vu_fe_net_ctrl_handle(void *arg, struct virtq_chain *c)
{
	struct vu_fe_dev *d = arg;

	return net_ctrl_answer(c, d->pairs, vu_fe_net_set_pairs, d);
}

static void vu_fe_net_ctrl_kick(void *arg, uint32_t events)
{
	struct vu_fe_dev *d = arg;
	struct virtq *vq = &d->vqs[d->num_queues];

	(void)events;
	virtq_kick_consume(vq);
	/* A malformed chain: the core logged it once and asked for a reset;
	 * the broken ring serves nothing more, however often it is kicked. */
	(void)virtq_serve(vq, d->own_chain, 64, vu_fe_net_ctrl_handle, d);
}

/* A reset driver starts with one pair. */
static void vu_fe_net_reset(struct vu_fe_dev *d)
{
	if (d->has_own_queue)
		vu_fe_net_set_pairs(d, 1);
}

/* ---- vsock: the CID and the event queue ---- */

static uint64_t vu_fe_vsock_cid_of(const uint8_t *config)
{
	uint64_t cid;

	memcpy(&cid, config, sizeof(cid));
	return cid;
}

static bool vu_fe_vsock_cid_ok(uint64_t cid)
{
	return cid >= 3 && cid <= UINT32_MAX - 1;
}

/* A back-end without CONFIG (or one that says nonsense) gets the CID the
 * device was made with. */
static void vu_fe_vsock_fix_config(const struct vu_fe_dev *d, uint8_t *config)
{
	if (!vu_fe_vsock_cid_ok(vu_fe_vsock_cid_of(config)))
		memcpy(config, &d->cid, sizeof(d->cid));
}

static int vu_fe_vsock_check(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	uint8_t config[VU_FE_VSOCK_CONFIG_SIZE];
	uint64_t cid;

	vu_frontend_read_config(&d->fe, 0, config, sizeof(config));
	cid = vu_fe_vsock_cid_of(config);
	if (!cid && !cfg->cid) {
		log_err("%s: the vhost-user back-end on %s gives no guest CID (no CONFIG): add cid=N", cfg->id,
			cfg->socket_path);
		return -EINVAL;
	}
	if (cid && !vu_fe_vsock_cid_ok(cid)) {
		log_err("%s: the vhost-user back-end on %s gives guest CID %llu (3..%u expected)", cfg->id,
			cfg->socket_path, (unsigned long long)cid, UINT32_MAX - 1);
		return -EINVAL;
	}
	if (cid && cfg->cid && cid != cfg->cid) {
		log_err("%s: cid=%llu, but the vhost-user back-end on %s serves guest CID %llu", cfg->id,
			(unsigned long long)cfg->cid, cfg->socket_path, (unsigned long long)cid);
		return -EINVAL;
	}
	d->cid = cid ? cid : cfg->cid;
	return 0;
}

/* The driver must hear of a TRANSPORT_RESET: a new driver (the device was
 * reset) or a new back-end (its predecessor's connections are gone). Any
 * thread. */
static void vu_fe_vsock_owe_reset(struct vu_fe_dev *d)
{
	uint64_t one = 1;

	__atomic_store_n(&d->reset_owed, true, __ATOMIC_SEQ_CST);
	(void)!write(d->event_wake_fd, &one, sizeof(one));
}

/* Gives an owed TRANSPORT_RESET in the driver's next event buffer; with
 * none there, waits for the driver's kick. Own worker. */
static void vu_fe_vsock_event_send(struct vu_fe_dev *d)
{
	static const uint8_t ev[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };
	struct virtq *vq = &d->vqs[d->num_queues];
	struct virtq_chain *c = d->own_chain;
	int r;

	while (__atomic_exchange_n(&d->reset_owed, false, __ATOMIC_SEQ_CST)) {
		r = virtq_pop_or_notify(vq, c);
		if (r <= 0) {
			if (r < 0)
				log_warn("%s: malformed chain on the event queue; stopped until reset", d->fe.name);
			else
				__atomic_store_n(&d->reset_owed, true, __ATOMIC_SEQ_CST);
			return;
		}
		if (c->in_len < sizeof(ev)) {
			virtq_push(vq, c->head, 0);
			__atomic_store_n(&d->reset_owed, true, __ATOMIC_SEQ_CST);
			continue;
		}
		iov_from_buf(&c->iov[c->nout], c->nin, 0, ev, sizeof(ev));
		virtq_push(vq, c->head, sizeof(ev));
		virtq_notify(vq);
	}
}

static void vu_fe_vsock_event_kick(void *arg, uint32_t events)
{
	struct vu_fe_dev *d = arg;

	(void)events;
	virtq_kick_consume(&d->vqs[d->num_queues]);
	vu_fe_vsock_event_send(d);
}

static void vu_fe_vsock_event_wake(void *arg, uint32_t events)
{
	struct vu_fe_dev *d = arg;
	uint64_t v;

	(void)events;
	(void)!read(d->event_wake_fd, &v, sizeof(v));
	vu_fe_vsock_event_send(d);
}

/* The event wake-up on the own worker: it runs while the event queue does. */
static int vu_fe_vsock_init(struct vu_fe_dev *d)
{
	d->event_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->event_wake_fd < 0)
		return -errno;
	d->event_wake_watch = (struct worker_watch){ .fn = vu_fe_vsock_event_wake, .arg = d };
	d->reset_owed = true;
	return worker_watch(&d->own_worker, d->event_wake_fd, EPOLLIN, &d->event_wake_watch);
}

/* ---- the queue cvmm serves itself ---- */

static int vu_fe_own_queue_start(struct vu_fe_dev *d)
{
	struct virtq *vq = &d->vqs[d->num_queues];
	uint64_t one = 1;
	int err;

	if (d->own_started)
		return 0;
	err = worker_watch(&d->own_worker, vq->kick_fd, EPOLLIN, &d->own_watch);
	if (!err && (err = worker_start(&d->own_worker)) < 0)
		worker_unwatch(&d->own_worker, vq->kick_fd);
	if (err)
		return err;
	d->own_started = true;
	/* Buffers queued before the start. */
	(void)!write(vq->kick_fd, &one, sizeof(one));
	return 0;
}

static void vu_fe_own_queue_stop(struct vu_fe_dev *d)
{
	if (!d->own_started)
		return;
	worker_stop(&d->own_worker);
	worker_unwatch(&d->own_worker, d->vqs[d->num_queues].kick_fd);
	d->own_started = false;
}

/* ---- queue life cycle ---- */

static int vu_fe_dev_queue_start(struct vdev *dev, unsigned q)
{
	struct vu_fe_dev *d = vu_fe_of(dev);

	if (q == d->num_queues)
		return vu_fe_own_queue_start(d);
	return vu_frontend_ring_start(&d->fe, dev->mem, dev->features, q, &dev->vqs[q]);
}

static void vu_fe_dev_queue_stop(struct vdev *dev, unsigned q)
{
	struct vu_fe_dev *d = vu_fe_of(dev);

	if (q == d->num_queues)
		vu_fe_own_queue_stop(d);
	else
		vu_frontend_ring_stop(&d->fe, q);
}

static void vu_fe_dev_reset(struct vdev *dev)
{
	struct vu_fe_dev *d = vu_fe_of(dev);

	vu_frontend_reset(&d->fe);
	if (d->type->reset)
		d->type->reset(d);
}

static const struct vdev_ops vu_fe_dev_ops = {
	.name = "vhost-user",
	.read_config = vu_fe_dev_read_config,
	.write_config = vu_fe_dev_write_config,
	.queue_start = vu_fe_dev_queue_start,
	.queue_stop = vu_fe_dev_queue_stop,
	.reset = vu_fe_dev_reset,
};

static void vu_fe_dev_config_changed(void *opaque)
{
	vdev_config_changed(opaque);
}

/* The host's DEVICE_NEEDS_RESET path: what it does for a ring the driver
 * broke (status bit and config interrupt, safe from any thread). */
static void vu_fe_dev_needs_reset(void *opaque)
{
	vdev_needs_reset(opaque, 0);
}

static uint32_t vu_fe_dev_config_size(void *opaque, uint64_t features)
{
	const struct vu_fe_dev *d = opaque;

	return d->type->config_size_for ? d->type->config_size_for(features) : d->type->config_size;
}

static void vu_fe_dev_restored(void *opaque)
{
	struct vu_fe_dev *d = vu_fe_of(opaque);

	if (d->type->restored)
		d->type->restored(d);
}

static const struct vu_frontend_ops vu_fe_dev_fe_ops = {
	.config_changed = vu_fe_dev_config_changed,
	.needs_reset = vu_fe_dev_needs_reset,
	.config_size = vu_fe_dev_config_size,
	.restored = vu_fe_dev_restored,
};

static const struct vu_fe_type *vu_fe_type_of(uint32_t device_id)
{
	for (size_t i = 0; i < sizeof(vu_fe_types) / sizeof(vu_fe_types[0]); i++)
		if (vu_fe_types[i].device_id == device_id)
			return &vu_fe_types[i];
	return NULL;
}

/* Whether the connected back-end can carry this type of device. */
static int vu_fe_dev_check(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	uint64_t missing = d->type->required_protocol & ~d->fe.protocol_features;

	if (!(vu_frontend_features(&d->fe) & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		log_err("%s: the vhost-user back-end on %s does not offer VIRTIO_F_VERSION_1 (legacy only)",
			cfg->id, cfg->socket_path);
		return -EINVAL;
	}
	if (missing) {
		log_err("%s: the vhost-user back-end on %s lacks protocol features %s needs (0x%llx)", cfg->id,
			cfg->socket_path, d->type->name, (unsigned long long)missing);
		return -EINVAL;
	}
	return d->type->check ? d->type->check(d, cfg) : 0;
}

/* The queue cvmm serves itself, after the back-end's, on a worker of its
 * own. */
static int vu_fe_own_queue_init(struct vu_fe_dev *d)
{
	int err;

	d->own_chain = malloc(sizeof(*d->own_chain));
	if (!d->own_chain)
		return -ENOMEM;
	err = worker_init(&d->own_worker, "vu-own-q");
	if (err) {
		free(d->own_chain);
		d->own_chain = NULL;
		return err;
	}
	d->own_watch = (struct worker_watch){ .fn = d->type->own_queue_kick, .arg = d };
	d->has_own_queue = true;
	return 0;
}

/* The features the guest is offered: the back-end's that cvmm can carry,
 * and cvmm's own. */
static int vu_fe_dev_features(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	uint64_t backend = vu_frontend_features(&d->fe);

	d->vdev.host_features = (backend & (d->type->device_features | VU_FE_TRANSPORT_FEATURES)) |
				d->type->own_features;
	if (d->type->device_id != VIRTIO_ID_NET || !d->has_own_queue)
		return 0;
	/* Pairs are switched with SET_VRING_ENABLE, which needs bit 30. */
	if (!(backend & VIRTIO_BIT(VIRTIO_NET_F_MQ)) ||
	    !(d->fe.backend_features & VU_BIT(VHOST_USER_F_PROTOCOL_FEATURES))) {
		log_err("%s: the vhost-user back-end on %s offers no multiqueue (VIRTIO_NET_F_MQ): use num_queues=2",
			cfg->id, cfg->socket_path);
		return -EINVAL;
	}
	d->vdev.host_features |= VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ);
	return vu_fe_net_set_pairs(d, 1);
}

static void vu_fe_dev_free(struct vu_fe_dev *d)
{
	if (d->vdev.queues)
		vdev_destroy(&d->vdev);
	if (d->has_own_queue)
		worker_destroy(&d->own_worker);
	d->has_own_queue = false;
	free(d->own_chain);
	d->own_chain = NULL;
	if (d->event_wake_fd >= 0)
		close(d->event_wake_fd);
	d->event_wake_fd = -1;
	for (unsigned q = 0; q < d->vdev.num_queues; q++)
		virtq_destroy(&d->vqs[q]);
	free(d->vqs);
	d->vqs = NULL;
}

int vu_fe_dev_init(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	struct vu_frontend_config fc = {
		.name = cfg->id, .socket_path = cfg->socket_path, .server = cfg->server,
		.num_queues = cfg->num_queues, .queue_size = cfg->queue_size,
		.reply_timeout_ms = cfg->reply_timeout_ms, .ops = &vu_fe_dev_fe_ops, .opaque = &d->vdev,
	};
	bool net = cfg->device_id == VIRTIO_ID_NET, fs = cfg->device_id == VIRTIO_ID_FS;
	bool own_queue;
	unsigned nvqs;
	int err;

	memset(d, 0, sizeof(*d));
	d->event_wake_fd = -1;
	d->type = vu_fe_type_of(cfg->device_id);
	if (!d->type || !cfg->num_queues || cfg->num_queues > VU_FRONTEND_MAX_QUEUES || (net && cfg->num_queues % 2))
		return -EINVAL;
	if (fs && (cfg->num_queues <= VIRTIO_FS_HIPRIO_QUEUES || !cfg->tag || !cfg->tag[0] ||
		   strlen(cfg->tag) > VIRTIO_FS_TAG_LEN))
		return -EINVAL;
	d->num_queues = cfg->num_queues;
	d->pairs = net ? cfg->num_queues / 2 : 0;
	own_queue = d->type->own_queue_kick && d->pairs >= d->type->own_queue_min_pairs;
	nvqs = cfg->num_queues + own_queue;
	fc.protocol_features = d->type->protocol_features;
	fc.config_size = d->type->build_config ? 0 : d->type->config_size;
	fc.own_features = d->type->own_features | (d->pairs > 1 ? VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) : 0);
	/* Net back-ends count queue pairs in GET_QUEUE_NUM (QEMU and DPDK do);
	 * without MQ a back-end has the one queue (set) it was asked of. */
	fc.min_backend_queues = d->type->fixed_queues ? 1 : d->pairs;
	fc.state_lost_on_disconnect = d->type->state_lost_on_disconnect;
	if (net) {
		if (cfg->mac)
			memcpy(d->mac, cfg->mac, sizeof(d->mac));
		else if (getrandom(d->mac, sizeof(d->mac), 0) != sizeof(d->mac))
			return -EIO;
		/* Unicast and locally administered when cvmm picks it. */
		if (!cfg->mac)
			d->mac[0] = (uint8_t)((d->mac[0] & 0xfe) | 0x02);
	}
	if (d->type->build_config)
		d->type->build_config(d, cfg);
	d->vqs = calloc(nvqs, sizeof(*d->vqs));
	if (!d->vqs)
		return -ENOMEM;
	for (unsigned q = 0; q < nvqs; q++)
		virtq_init(&d->vqs[q]);
	/* Before the connection: its service thread may report through vdev. */
	d->vdev = (struct vdev){
		.ops = &vu_fe_dev_ops,
		.device_id = cfg->device_id,
		.num_queues = nvqs,
		.queue_size_max = cfg->queue_size,
		.vqs = d->vqs,
		.config_size = d->type->config_size,
	};
	/* The core's queue runtime, without workers (no handle_queue). */
	err = vdev_init(&d->vdev, 0, "vu");
	if (err)
		goto fail;
	if (own_queue && (err = vu_fe_own_queue_init(d)))
		goto fail;
	if (cfg->device_id == VIRTIO_ID_VSOCK && (err = vu_fe_vsock_init(d)))
		goto fail;
	err = vu_frontend_init(&d->fe, &fc);
	if (err)
		goto fail;
	err = vu_frontend_connect(&d->fe);
	if (!err)
		err = vu_fe_dev_check(d, cfg);
	if (!err)
		err = vu_fe_dev_features(d, cfg);
	if (!err)
		return 0;
	vu_frontend_destroy(&d->fe);
fail:
	vu_fe_dev_free(d);
	return err;
}

void vu_fe_dev_destroy(struct vu_fe_dev *d)
{
	if (!d->vqs)
		return;
	/* Queues still started are stopped through the front-end first. */
	vdev_destroy(&d->vdev);
	vu_fe_own_queue_stop(d);
	vu_frontend_destroy(&d->fe);
	vu_fe_dev_free(d);
}

bool vu_fe_dev_is(const struct vdev *dev)
{
	return dev && dev->ops == &vu_fe_dev_ops;
}

int vu_fe_devtype_create(struct devtype_dev *d, struct vu_fe_dev_config *c, uint32_t queue_size,
			 const char *who)
{
	struct vu_fe_dev *v;
	int err;

	if (queue_size < 2 || queue_size > VIRTQ_MAX_SIZE || (queue_size & (queue_size - 1))) {
		log_err("%s: queue_size=%u: must be a power of two, 2..%u", who, queue_size, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	c->id = d->id;
	c->socket_path = d->socket;
	c->server = d->vhost_server;
	c->queue_size = (uint16_t)queue_size;
	err = vu_fe_dev_init(v, c);
	if (err) {
		free(v);
		/* A back-end that is there but cannot serve the device is bad input. */
		return err == -EINVAL ? -EINVAL : -EIO;
	}
	d->model = v;
	d->vdev = &v->vdev;
	return 0;
}

int vu_fe_devtype_refuse_keys(const struct devtype *t, uint64_t seen, const unsigned *keys, unsigned nkeys,
			      const char *who)
{
	for (unsigned k = 0; k < nkeys; k++)
		if (seen & (1ULL << keys[k])) {
			log_err("%s vhost_user=on: %s= is the back-end's to set, not cvmm's", who, t->spec[keys[k]].key);
			return -EINVAL;
		}
	return 0;
}
