/*
 * cvmm --vsock-backend: the virtio-vsock model (hybrid-vsock host side on
 * uds_path) served to one vhost-user front-end at a time. The front-end
 * reads the guest CID with GET_CONFIG. When a front-end goes away the
 * server resets the device (every connection closed) and the next one is
 * told with a fresh TRANSPORT_RESET. SIGINT/SIGTERM stop the server
 * (vu_backend.c); both sockets are removed on the way out.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/backends.h"
#include "cvmm/log.h"
#include "cvmm/opts.h"
#include "cvmm/virtio_vsock.h"
#include "vu_backend.h"
#include "cvmm/vu_proto.h"

/* MQ and inflight tracking mean nothing for vsock (its state lives in the
 * host sockets, not in resubmittable requests). */
#define VSOCK_BACKEND_PROTOCOL_FEATURES                                              \
	(VU_BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | VU_BIT(VHOST_USER_PROTOCOL_F_BACKEND_REQ) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_CONFIG) | VU_BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) | \
	 VU_BIT(VHOST_USER_PROTOCOL_F_STATUS) | VU_BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct vsock_backend_opts {
	uint64_t cid;
	char *socket;
	char *uds_path;
};

static const struct opt_spec vsock_backend_spec[] = {
	OPT_SPEC("cid", OPT_U64, struct vsock_backend_opts, cid),
	OPT_SPEC("socket", OPT_STRING, struct vsock_backend_opts, socket),
	OPT_SPEC("uds_path", OPT_STRING, struct vsock_backend_opts, uds_path),
	OPT_SPEC_END,
};

static int vsock_backend_check_opts(const struct vsock_backend_opts *o, uint64_t seen)
{
	if (!(seen & 1)) {
		log_err("--vsock-backend: cid=N is required (the guest's CID, 3 or more)");
		return -EINVAL;
	}
	if (o->cid < 3 || o->cid > UINT32_MAX - 1) {
		log_err("--vsock-backend: cid=%llu: must be 3..%u (0-2 are reserved)",
			(unsigned long long)o->cid, UINT32_MAX - 1);
		return -EINVAL;
	}
	if (!o->socket) {
		log_err("--vsock-backend: socket=PATH is required (the vhost-user socket)");
		return -EINVAL;
	}
	if (!o->uds_path) {
		log_err("--vsock-backend: uds_path=PATH is required (the hybrid-vsock socket)");
		return -EINVAL;
	}
	if (!strcmp(o->socket, o->uds_path)) {
		log_err("--vsock-backend: socket and uds_path must be different paths");
		return -EINVAL;
	}
	return 0;
}

int vsock_backend_main(const char *text)
{
	struct vsock_backend_opts o = { 0 };
	struct vu_server_config vcfg = {
		.protocol_features = VSOCK_BACKEND_PROTOCOL_FEATURES & VU_SERVER_PROTOCOL_FEATURES,
	};
	struct vsock_dev_config dcfg;
	struct vu_backend be;
	struct vsock_dev *dev = NULL;
	char why[160], ready[PATH_MAX * 2 + 96];
	uint64_t seen = 0;
	int ret = 1, err;

	if (opts_parse(text, vsock_backend_spec, &o, &seen, why, sizeof(why)) < 0) {
		log_err("--vsock-backend: %s", why);
		return 1;
	}
	if (vsock_backend_check_opts(&o, seen) < 0)
		goto out;
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		log_err("--vsock-backend: out of memory");
		goto out;
	}
	/* Before the device model starts its threads: they inherit the mask. */
	if (vu_backend_init(&be, "--vsock-backend"))
		goto out;
	dcfg = (struct vsock_dev_config){ .guest_cid = o.cid, .uds_path = o.uds_path };
	err = vsock_dev_init(dev, &dcfg);
	if (err == -EADDRINUSE)
		log_err("--vsock-backend: uds_path %s: another process listens there", o.uds_path);
	else if (err == -ENAMETOOLONG)
		log_err("--vsock-backend: uds_path %s: too long for a Unix socket (with \"_<port>\" added)",
			o.uds_path);
	else if (err)
		log_err("--vsock-backend: cannot listen on uds_path %s: %s", o.uds_path, strerror(-err));
	if (!err) {
		vcfg.socket_path = o.socket;
		snprintf(ready, sizeof(ready), "vsock-backend: guest cid %llu, vhost-user on %s, host connections on %s",
			 (unsigned long long)o.cid, o.socket, o.uds_path);
		ret = vu_backend_run(&be, &dev->vdev, &vcfg, ready) ? 1 : 0;
		vsock_dev_destroy(dev);
	}
	vu_backend_destroy(&be);
out:
	free(dev);
	opts_free(vsock_backend_spec, &o);
	return ret;
}
