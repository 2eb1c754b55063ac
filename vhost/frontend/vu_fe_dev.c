/*
 * vhost-user device model: the vdev interface turned into front-end calls,
 * with one table entry per device type (what config the back-end gives,
 * which protocol features the type needs).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sys/random.h>

#include "cvmm/log.h"
#include "cvmm/virtio_blk.h"
#include "cvmm/virtio_net.h"
#include "cvmm/vu_fe_dev.h"

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
	void (*build_config)(struct vu_fe_dev *d);
};

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
 * does; DPDK offers no CONFIG): the MAC, a link that is always up, one pair. */
static void vu_fe_net_build_config(struct vu_fe_dev *d)
{
	struct virtio_net_config c = { .status = VIRTIO_NET_S_LINK_UP, .max_virtqueue_pairs = 1 };

	memcpy(c.mac, d->mac, sizeof(c.mac));
	memcpy(d->config, &c, offsetof(struct virtio_net_config, mtu));
}

#define VU_FE_NET_OFFLOADS                                                                              \
	(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |                            \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |                      \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO) |                        \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |                        \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO) |                          \
	 VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF))

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

static int vu_fe_dev_queue_start(struct vdev *dev, unsigned q)
{
	return vu_frontend_ring_start(&vu_fe_of(dev)->fe, dev->mem, dev->features, q, &dev->vqs[q]);
}

static void vu_fe_dev_queue_stop(struct vdev *dev, unsigned q)
{
	vu_frontend_ring_stop(&vu_fe_of(dev)->fe, q);
}

static void vu_fe_dev_reset(struct vdev *dev)
{
	vu_frontend_reset(&vu_fe_of(dev)->fe);
}

static void vu_fe_dev_vdestroy(struct vdev *dev)
{
	vu_fe_dev_destroy(vu_fe_of(dev));
}

static const struct vdev_ops vu_fe_dev_ops = {
	.name = "vhost-user",
	.read_config = vu_fe_dev_read_config,
	.write_config = vu_fe_dev_write_config,
	.queue_start = vu_fe_dev_queue_start,
	.queue_stop = vu_fe_dev_queue_stop,
	.reset = vu_fe_dev_reset,
	.destroy = vu_fe_dev_vdestroy,
};

static void vu_fe_dev_config_changed(void *opaque)
{
	vdev_config_changed(opaque);
}

static void vu_fe_dev_needs_reset(void *opaque)
{
	vdev_needs_reset(opaque);
}

static uint32_t vu_fe_dev_config_size(void *opaque, uint64_t features)
{
	const struct vu_fe_dev *d = opaque;

	return d->type->config_size_for ? d->type->config_size_for(features) : d->type->config_size;
}

static const struct vu_frontend_ops vu_fe_dev_fe_ops = {
	.config_changed = vu_fe_dev_config_changed,
	.needs_reset = vu_fe_dev_needs_reset,
	.config_size = vu_fe_dev_config_size,
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
	return 0;
}

int vu_fe_dev_init(struct vu_fe_dev *d, const struct vu_fe_dev_config *cfg)
{
	struct vu_frontend_config fc = {
		.name = cfg->id, .socket_path = cfg->socket_path, .server = cfg->server,
		.num_queues = cfg->num_queues, .queue_size = cfg->queue_size,
		.reply_timeout_ms = cfg->reply_timeout_ms, .ops = &vu_fe_dev_fe_ops, .opaque = &d->vdev,
	};
	int err;

	memset(d, 0, sizeof(*d));
	d->type = vu_fe_type_of(cfg->device_id);
	if (!d->type || !cfg->num_queues || cfg->num_queues > VU_FRONTEND_MAX_QUEUES)
		return -EINVAL;
	fc.protocol_features = d->type->protocol_features;
	fc.config_size = d->type->build_config ? 0 : d->type->config_size;
	fc.own_features = d->type->own_features;
	if (d->type->build_config) {
		if (cfg->mac)
			memcpy(d->mac, cfg->mac, sizeof(d->mac));
		else if (getrandom(d->mac, sizeof(d->mac), 0) != sizeof(d->mac))
			return -EIO;
		/* Unicast and locally administered when cvmm picks it. */
		if (!cfg->mac)
			d->mac[0] = (uint8_t)((d->mac[0] & 0xfe) | 0x02);
		d->type->build_config(d);
	}
	d->num_queues = cfg->num_queues;
	d->vqs = calloc(cfg->num_queues, sizeof(*d->vqs));
	if (!d->vqs)
		return -ENOMEM;
	for (unsigned q = 0; q < cfg->num_queues; q++)
		virtq_init(&d->vqs[q]);
	/* Before the connection: its service thread may report through vdev. */
	d->vdev = (struct vdev){
		.ops = &vu_fe_dev_ops,
		.device_id = cfg->device_id,
		.num_queues = cfg->num_queues,
		.queue_size_max = cfg->queue_size,
		.vqs = d->vqs,
		.config_size = d->type->config_size,
	};
	err = vu_frontend_init(&d->fe, &fc);
	if (err) {
		free(d->vqs);
		d->vqs = NULL;
		return err;
	}
	err = vu_frontend_connect(&d->fe);
	if (!err)
		err = vu_fe_dev_check(d, cfg);
	if (err) {
		vu_frontend_destroy(&d->fe);
		free(d->vqs);
		d->vqs = NULL;
		return err;
	}
	d->vdev.host_features = (vu_frontend_features(&d->fe) & (d->type->device_features | VU_FE_TRANSPORT_FEATURES)) |
				d->type->own_features;
	return 0;
}

void vu_fe_dev_destroy(struct vu_fe_dev *d)
{
	if (!d->vqs)
		return;
	vu_frontend_destroy(&d->fe);
	for (unsigned q = 0; q < d->num_queues; q++)
		virtq_destroy(&d->vqs[q]);
	free(d->vqs);
	d->vqs = NULL;
}
