/*
 * The virtio-vsock device type (devtype.h), host side hybrid vsock:
 *  - in a VM, --vsock cid=N,socket=PATH: the device runs in cvmm and host
 *    programs use PATH (as with Firecracker and cloud-hypervisor);
 *  - in a VM, --vsock [cid=N,]vhost_user=on,socket=SOCK: a vhost-user
 *    back-end on SOCK (cvmm --vsock-backend) serves rx and tx, and host
 *    programs use its hybrid socket; cvmm keeps the event queue
 *    (vhost/frontend/vu_fe_dev.c);
 *  - as a back-end, --vsock-backend cid=N,socket=SOCK,uds_path=PATH[,client=on]:
 *    socket= is the vhost-user socket and uds_path= the hybrid one. A
 *    vhost-user front-end reads the guest CID with GET_CONFIG; when it goes
 *    away the server resets the device (every connection closed) and the
 *    next one is told with a TRANSPORT_RESET.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "cvmm/vu_fe_dev.h"
#include "virtio_vsock.h"
#include "cvmm/vu_proto.h"

/* MQ and inflight tracking mean nothing for vsock (its state lives in the
 * host sockets, not in resubmittable requests). */
#define VSOCK_TYPE_PROTOCOL_FEATURES                                                   \
	(VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct vsock_type_opts {
	uint64_t cid;
	char *uds_path;    /* back-end: uds_path=; in a VM: socket= (vhost_user=on: the back-end's) */
	bool vhost_user;   /* in a VM: the device is a vhost-user back-end's */
	char *vhost_mode;  /* in a VM, vhost_user=on: client or server */
};

/* cid first in both: bit 0 of seen. */
static const struct opt_spec vsock_type_spec[] = {
	OPT_SPEC("cid", OPT_U64, struct vsock_type_opts, cid),
	OPT_SPEC("uds_path", OPT_STRING, struct vsock_type_opts, uds_path),
	OPT_SPEC_END,
};

static const struct opt_spec vsock_type_vm_spec[] = {
	OPT_SPEC("cid", OPT_U64, struct vsock_type_opts, cid),
	OPT_SPEC("socket", OPT_STRING, struct vsock_type_opts, uds_path),
	OPT_SPEC("vhost_user", OPT_BOOL, struct vsock_type_opts, vhost_user),
	OPT_SPEC("vhost_mode", OPT_STRING, struct vsock_type_opts, vhost_mode),
	OPT_SPEC_END,
};

/* cid= is checked the same in every role. */
static int vsock_type_check_cid(uint64_t cid, const char *who)
{
	if (cid < 3 || cid > UINT32_MAX - 1) {
		log_err("%s: cid=%llu: must be 3..%u (0-2 are reserved)", who, (unsigned long long)cid,
			UINT32_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

/* vhost_user=on: socket= is the vhost-user back-end's socket (its own
 * uds_path is the hybrid one); cid= may come from the back-end's config. */
static int vsock_type_create_vhost(struct devtype_dev *d, const struct vsock_type_opts *o, uint64_t seen,
				   const char *who)
{
	/* rx and tx are the back-end's; the event queue after them is cvmm's. */
	struct vu_fe_dev_config c = { .device_id = VIRTIO_ID_VSOCK, .num_queues = VSOCK_Q_EVENT };
	int err;

	if ((seen & 1) && (err = vsock_type_check_cid(o->cid, who)))
		return err;
	if (!o->uds_path) {
		log_err("%s vhost_user=on: socket=PATH (the back-end's socket) is required", who);
		return -EINVAL;
	}
	if (o->vhost_mode && strcmp(o->vhost_mode, "client") && strcmp(o->vhost_mode, "server")) {
		log_err("%s: vhost_mode=%s: expected client or server", who, o->vhost_mode);
		return -EINVAL;
	}
	d->socket = strdup(o->uds_path);
	if (!d->socket) {
		log_err("%s: out of memory", who);
		return -ENOMEM;
	}
	d->vhost_user = true;
	d->vhost_server = o->vhost_mode && !strcmp(o->vhost_mode, "server");
	c.cid = (seen & 1) ? o->cid : 0;
	return vu_fe_devtype_create(d, &c, VSOCK_QUEUE_SIZE, who);
}

/* key: what the hybrid socket's option is called in this role. */
static int vsock_type_check(const struct vsock_type_opts *o, uint64_t seen, const char *socket,
			    const char *key, const char *who)
{
	if (o->vhost_mode) {
		log_err("%s: vhost_mode= needs vhost_user=on", who);
		return -EINVAL;
	}
	if (!(seen & 1)) {
		log_err("%s: cid=N is required (the guest's CID, 3 or more)", who);
		return -EINVAL;
	}
	if (vsock_type_check_cid(o->cid, who))
		return -EINVAL;
	if (!o->uds_path) {
		log_err("%s: %s=PATH is required (the hybrid-vsock socket)", who, key);
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
	const char *key = role == DEVTYPE_IN_VM ? "socket" : "uds_path";
	struct vsock_dev_config cfg;
	struct vsock_dev *v;
	int err;

	if (o->vhost_user)
		return vsock_type_create_vhost(d, o, seen, who);
	err = vsock_type_check(o, seen, d->socket, key, who);
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
		log_err("%s: %s %s: another process listens there", who, key, o->uds_path);
	else if (err == -ENAMETOOLONG)
		log_err("%s: %s %s: too long for a Unix socket (with \"_<port>\" added)", who, key,
			o->uds_path);
	else if (err)
		log_err("%s: cannot listen on %s %s: %s", who, key, o->uds_path, strerror(-err));
	if (err) {
		free(v);
		return err;
	}
	d->model = v;
	d->vdev = &v->vdev;
	if (role == DEVTYPE_IN_VM) {
		log_info("%s: guest cid %llu, host connections on %s", who, (unsigned long long)o->cid,
			 o->uds_path);
		return 0;
	}
	if (asprintf(&d->ready, "vsock-backend: guest cid %llu, vhost-user on %s, host connections on %s",
		     (unsigned long long)o->cid, d->socket, o->uds_path) < 0)
		d->ready = NULL;
	return 0;
}

static void vsock_type_destroy(struct devtype_dev *d)
{
	if (d->vhost_user)
		vu_fe_dev_destroy(d->model);
	else
		vsock_dev_destroy(d->model);
}

const struct devtype vsock_devtype = {
	.name = "vsock",
	.vm_option = "--vsock",
	.vm_usage = "  --vsock cid=N,socket=PATH[,id=ID]\n"
		    "                       a virtio-vsock device (guest CID N, 3 or more); host programs\n"
		    "                       reach guest port P by writing \"CONNECT P\\n\" to the Unix socket\n"
		    "                       PATH, and the guest reaches host port P at PATH_P\n"
		    "  --vsock [cid=N,]vhost_user=on,socket=SOCK[,vhost_mode=client|server][,id=ID]\n"
		    "                       a virtio-vsock device served by a vhost-user back-end (cvmm\n"
		    "                       --vsock-backend); the CID is the back-end's where it gives one\n",
	.max = 1,
	.vhost_user = true,
	.vm_spec = vsock_type_vm_spec,
	.backend_option = "--vsock-backend",
	.backend_usage = "cid=N,socket=SOCK,uds_path=PATH[,client=on]",
	.backend_client = true,
	.vu_protocol_features = VSOCK_TYPE_PROTOCOL_FEATURES,
	.spec = vsock_type_spec,
	.opts_size = sizeof(struct vsock_type_opts),
	.create = vsock_type_create,
	.destroy = vsock_type_destroy,
};
