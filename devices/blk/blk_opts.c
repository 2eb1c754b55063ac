#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk_opts.h"
#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "cvmm/vu_fe_dev.h"
#include "cvmm/vu_proto.h"

int blk_opts_open(struct blk_dev *b, const struct blk_opts *o, const char *who)
{
	struct blk_dev_config cfg = {
		.path = o->path, .readonly = o->readonly, .direct = o->direct,
		.num_queues = o->num_queues, .queue_size = (uint16_t)o->queue_size, .serial = o->serial,
	};
	int err;

	if (!o->path) {
		log_err("%s: path=IMG is required", who);
		return -EINVAL;
	}
	if (o->num_queues < 1 || o->num_queues > BLK_DEV_MAX_QUEUES) {
		log_err("%s: num_queues=%u: must be 1..%u", who, o->num_queues, BLK_DEV_MAX_QUEUES);
		return -EINVAL;
	}
	if (o->queue_size < 2 || o->queue_size > VIRTQ_MAX_SIZE || (o->queue_size & (o->queue_size - 1))) {
		log_err("%s: queue_size=%u: must be a power of two, 2..%u", who, o->queue_size, VIRTQ_MAX_SIZE);
		return -EINVAL;
	}
	if (o->serial && strlen(o->serial) > VIRTIO_BLK_ID_BYTES) {
		log_err("%s: serial=%s: at most %u characters (the guest reads no more)", who, o->serial,
			VIRTIO_BLK_ID_BYTES);
		return -EINVAL;
	}
	err = blk_dev_init(b, &cfg);
	if (err == -EBUSY)
		log_err("%s: image %s is in use by another process (a VM or back-end has it open)", who, o->path);
	else if (err == -EINVAL)
		log_err("%s: image %s is not a regular file or block device", who, o->path);
	else if (err)
		log_err("%s: cannot open image %s: %s", who, o->path, strerror(-err));
	return err;
}

/* ---- the device type (devtype.h) ---- */

struct blk_type_opts {
	struct blk_opts blk;
};

static const struct opt_spec blk_type_spec[] = {
	BLK_OPTS_SPECS(struct blk_type_opts, blk),
	OPT_SPEC_END,
};

static void blk_type_defaults(void *opts)
{
	*(struct blk_opts *)opts = (struct blk_opts)BLK_OPTS_DEFAULTS;
}

static void blk_type_hup(void *model)
{
	blk_dev_rescan(model);
}

/* vhost_user=on: the disk is served by an external back-end. */
static int blk_type_create_vhost(struct devtype_dev *d, const struct blk_opts *o, uint64_t seen, const char *who)
{
	/* Indexes into blk_type_spec of the keys the back-end owns. */
	static const unsigned backend_keys[] = { 0 /* path */, 1 /* readonly */, 2 /* direct */, 5 /* serial */ };
	struct vu_fe_dev_config c = { .device_id = VIRTIO_ID_BLOCK, .num_queues = o->num_queues };
	int err = vu_fe_devtype_refuse_keys(d->type, seen, backend_keys,
					    sizeof(backend_keys) / sizeof(backend_keys[0]), who);

	if (err)
		return err;
	if (o->num_queues < 1 || o->num_queues > BLK_DEV_MAX_QUEUES) {
		log_err("%s: num_queues=%u: must be 1..%u", who, o->num_queues, BLK_DEV_MAX_QUEUES);
		return -EINVAL;
	}
	return vu_fe_devtype_create(d, &c, o->queue_size, who);
}

static int blk_type_create(struct devtype_dev *d, const void *opts, uint64_t seen,
			   enum devtype_role role, const char *who)
{
	const struct blk_opts *o = opts;
	struct blk_dev *b;
	int err;

	if (d->vhost_user)
		return blk_type_create_vhost(d, o, seen, who);
	b = calloc(1, sizeof(*b));
	if (!b) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	err = blk_opts_open(b, o, who);
	if (err) {
		free(b);
		return err;
	}
	d->model = b;
	d->vdev = &b->vdev;
	if (role == DEVTYPE_BACKEND) {
		/* SIGHUP re-reads the image size. */
		d->on_hup = blk_type_hup;
		if (asprintf(&d->ready, "block-backend: serving %s on %s", o->path, d->socket) < 0)
			d->ready = NULL;
	}
	return 0;
}

static void blk_type_destroy(struct devtype_dev *d)
{
	if (d->vhost_user)
		vu_fe_dev_destroy(d->model);
	else
		blk_dev_destroy(d->model);
}

const struct devtype blk_devtype = {
	.name = "disk",
	.vm_option = "--disk",
	.vm_usage =
		"  --disk path=IMG[,readonly=on][,direct=on][,num_queues=N][,queue_size=N][,serial=STR][,id=ID]\n"
		"                       a virtio-blk disk on a raw image (repeatable, at most 8);\n"
		"                       num_queues defaults to the vCPUs with pci, 1 with mmio\n"
		"  --disk vhost_user=on,socket=SOCK[,num_queues=N][,queue_size=N][,id=ID]\n"
		"                       a virtio-blk disk served by a vhost-user back-end (guest RAM\n"
		"                       becomes shared, as with --memory shared=on)\n",
	.max = 8,
	.vm_queues_key = "num_queues",
	.vm_queues_max = BLK_DEV_MAX_QUEUES,
	.vhost_user = true,
	.backend_option = "--block-backend",
	.backend_usage = "path=IMG,socket=SOCK[,...]",
	.backend_client = true,
	.vu_protocol_features =
		VU_BIT(VHOST_USER_PROTOCOL_F_MQ) | VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
		VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) |
		VU_BIT(VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |
		VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
	.spec = blk_type_spec,
	.opts_size = sizeof(struct blk_type_opts),
	.opts_defaults = blk_type_defaults,
	.create = blk_type_create,
	.destroy = blk_type_destroy,
};
