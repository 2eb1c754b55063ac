/*
 * --vsock-backend: the virtio-vsock device type (devtype.h), hybrid-vsock
 * host side on uds_path. A vhost-user front-end reads the guest CID with
 * GET_CONFIG; when it goes away the server resets the device (every
 * connection closed) and the next one is told with a TRANSPORT_RESET.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "cvmm/virtio_vsock.h"
#include "cvmm/vu_proto.h"

/* MQ and inflight tracking mean nothing for vsock (its state lives in the
 * host sockets, not in resubmittable requests). */
#define VSOCK_TYPE_PROTOCOL_FEATURES                                                   \
	(VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct vsock_type_opts {
	uint64_t cid;
	char *uds_path;
};

/* cid first: bit 0 of seen. */
static const struct opt_spec vsock_type_spec[] = {
	OPT_SPEC("cid", OPT_U64, struct vsock_type_opts, cid),
	OPT_SPEC("uds_path", OPT_STRING, struct vsock_type_opts, uds_path),
	OPT_SPEC_END,
};

static int vsock_type_check(const struct vsock_type_opts *o, uint64_t seen, const char *socket,
			    const char *who)
{
	if (!(seen & 1)) {
		log_err("%s: cid=N is required (the guest's CID, 3 or more)", who);
		return -EINVAL;
	}
	if (o->cid < 3 || o->cid > UINT32_MAX - 1) {
		log_err("%s: cid=%llu: must be 3..%u (0-2 are reserved)", who, (unsigned long long)o->cid,
			UINT32_MAX - 1);
		return -EINVAL;
	}
	if (!o->uds_path) {
		log_err("%s: uds_path=PATH is required (the hybrid-vsock socket)", who);
		return -EINVAL;
	}
	if (socket && !strcmp(socket, o->uds_path)) {
		log_err("%s: socket and uds_path must be different paths", who);
		return -EINVAL;
	}
	return 0;
}

static int vsock_type_create(struct devtype_dev *d, const void *opts, uint64_t seen,
			     enum devtype_role role, const char *who)
{
	const struct vsock_type_opts *o = opts;
	struct vsock_dev_config cfg;
	struct vsock_dev *v;
	int err = vsock_type_check(o, seen, d->socket, who);

	(void)role;
	if (err)
		return err;
	v = calloc(1, sizeof(*v));
	if (!v) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	cfg = (struct vsock_dev_config){ .guest_cid = o->cid, .uds_path = o->uds_path };
	err = vsock_dev_init(v, &cfg);
	if (err == -EADDRINUSE)
		log_err("%s: uds_path %s: another process listens there", who, o->uds_path);
	else if (err == -ENAMETOOLONG)
		log_err("%s: uds_path %s: too long for a Unix socket (with \"_<port>\" added)", who,
			o->uds_path);
	else if (err)
		log_err("%s: cannot listen on uds_path %s: %s", who, o->uds_path, strerror(-err));
	if (err) {
		free(v);
		return err;
	}
	d->model = v;
	d->vdev = &v->vdev;
	if (asprintf(&d->ready, "vsock-backend: guest cid %llu, vhost-user on %s, host connections on %s",
		     (unsigned long long)o->cid, d->socket, o->uds_path) < 0)
		d->ready = NULL;
	return 0;
}

static void vsock_type_destroy(struct devtype_dev *d)
{
	vsock_dev_destroy(d->model);
}

const struct devtype vsock_devtype = {
	.name = "vsock",
	.backend_option = "--vsock-backend",
	.backend_usage = "cid=N,socket=SOCK,uds_path=PATH",
	.vu_protocol_features = VSOCK_TYPE_PROTOCOL_FEATURES,
	.spec = vsock_type_spec,
	.opts_size = sizeof(struct vsock_type_opts),
	.create = vsock_type_create,
	.destroy = vsock_type_destroy,
};
