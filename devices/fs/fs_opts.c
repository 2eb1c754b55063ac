/*
 * --fs: a virtio-fs device (devtype.h). cvmm has no file server of its own:
 * the FUSE requests always go to a vhost-user back-end such as virtiofsd,
 * so socket= is one of the device's own keys and vhost_user= is implied.
 * cvmm builds the config (tag, request queues) itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "cvmm/virtio_fs.h"
#include "cvmm/vu_fe_dev.h"

#define FS_DEFAULT_QUEUE_SIZE 1024
#define FS_MAX_REQUEST_QUEUES 64

struct fs_type_opts {
	char *tag, *socket, *vhost_mode;
	uint32_t num_queues, queue_size;
	bool vhost_user;
};

static const struct opt_spec fs_type_spec[] = {
	OPT_SPEC("tag", OPT_STRING, struct fs_type_opts, tag),
	OPT_SPEC("socket", OPT_STRING, struct fs_type_opts, socket),
	OPT_SPEC("num_queues", OPT_U32, struct fs_type_opts, num_queues),
	OPT_SPEC("queue_size", OPT_U32, struct fs_type_opts, queue_size),
	/* Accepted for symmetry with --disk/--net vhost_user=on. */
	OPT_SPEC("vhost_user", OPT_BOOL, struct fs_type_opts, vhost_user),
	OPT_SPEC("vhost_mode", OPT_STRING, struct fs_type_opts, vhost_mode),
	OPT_SPEC_END,
};

/* Index of vhost_user in fs_type_spec: bit 4 of seen. */
#define FS_SEEN_VHOST_USER (1ULL << 4)

static void fs_type_defaults(void *opts)
{
	*(struct fs_type_opts *)opts = (struct fs_type_opts){ .num_queues = 1, .queue_size = FS_DEFAULT_QUEUE_SIZE };
}

static int fs_type_check(const struct fs_type_opts *o, uint64_t seen, const char *who)
{
	if ((seen & FS_SEEN_VHOST_USER) && !o->vhost_user) {
		log_err("%s: vhost_user=off: a virtio-fs device is always served by a vhost-user back-end (virtiofsd)",
			who);
		return -EINVAL;
	}
	if (!o->tag || !o->tag[0]) {
		log_err("%s: tag=TAG is required (the name the guest mounts: mount -t virtiofs TAG DIR)", who);
		return -EINVAL;
	}
	if (strlen(o->tag) > VIRTIO_FS_TAG_LEN) {
		log_err("%s: tag=%s: at most %d bytes", who, o->tag, VIRTIO_FS_TAG_LEN);
		return -EINVAL;
	}
	if (!o->socket) {
		log_err("%s: socket=PATH (the vhost-user back-end's socket, e.g. virtiofsd's --socket-path) is required",
			who);
		return -EINVAL;
	}
	if (o->num_queues < 1 || o->num_queues > FS_MAX_REQUEST_QUEUES) {
		log_err("%s: num_queues=%u: must be 1..%u (request queues)", who, o->num_queues, FS_MAX_REQUEST_QUEUES);
		return -EINVAL;
	}
	if (o->vhost_mode && strcmp(o->vhost_mode, "client") && strcmp(o->vhost_mode, "server")) {
		log_err("%s: vhost_mode=%s: expected client or server", who, o->vhost_mode);
		return -EINVAL;
	}
	return 0;
}

static int fs_type_create(struct devtype_dev *d, const void *opts, uint64_t seen, enum devtype_role role,
			  const char *who)
{
	const struct fs_type_opts *o = opts;
	struct vu_fe_dev_config c = { .device_id = VIRTIO_ID_FS, .tag = o->tag };
	int err;

	(void)role;
	err = fs_type_check(o, seen, who);
	if (err)
		return err;
	d->socket = strdup(o->socket);
	if (!d->socket) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	/* Guest memory is shared with the back-end (machine_virtio_shares_memory). */
	d->vhost_user = true;
	d->vhost_server = o->vhost_mode && !strcmp(o->vhost_mode, "server");
	c.num_queues = VIRTIO_FS_HIPRIO_QUEUES + o->num_queues;
	return vu_fe_devtype_create(d, &c, o->queue_size, who);
}

static void fs_type_destroy(struct devtype_dev *d)
{
	vu_fe_dev_destroy(d->model);
}

const struct devtype fs_devtype = {
	.name = "fs",
	.vm_option = "--fs",
	.vm_usage =
		"  --fs tag=TAG,socket=SOCK[,num_queues=N][,queue_size=N][,vhost_mode=client|server][,id=ID]\n"
		"                       a virtio-fs device served by a vhost-user back-end such as\n"
		"                       virtiofsd (repeatable, at most 4; guest RAM becomes shared);\n"
		"                       the guest mounts it with: mount -t virtiofs TAG DIR\n",
	.max = 4,
	.spec = fs_type_spec,
	.opts_size = sizeof(struct fs_type_opts),
	.opts_defaults = fs_type_defaults,
	.create = fs_type_create,
	.destroy = fs_type_destroy,
};
