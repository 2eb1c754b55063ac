/*
 * cvmm --block-backend: the virtio-blk model served to one vhost-user
 * front-end at a time (QEMU, cloud-hypervisor, cvmm). SIGINT/SIGTERM stop
 * it (vu_backend.c), SIGHUP re-reads the image size.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cvmm/backends.h"
#include "cvmm/blk_opts.h"
#include "cvmm/log.h"
#include "cvmm/opts.h"
#include "cvmm/virtio_blk.h"
#include "vu_backend.h"

struct blk_backend_opts {
	struct blk_opts blk;
	char *socket;
	bool client;
};

static const struct opt_spec blk_backend_spec[] = {
	BLK_OPTS_SPECS(struct blk_backend_opts, blk),
	OPT_SPEC("socket", OPT_STRING, struct blk_backend_opts, socket),
	OPT_SPEC("client", OPT_BOOL, struct blk_backend_opts, client),
	OPT_SPEC_END,
};

static void blk_backend_hup(void *arg)
{
	blk_dev_rescan(arg);
}

int blk_backend_main(const char *text)
{
	struct blk_backend_opts o = { .blk = BLK_OPTS_DEFAULTS };
	struct vu_server_config vcfg = { .protocol_features = VU_SERVER_PROTOCOL_FEATURES };
	struct vu_backend be;
	struct blk_dev *blk = NULL;
	char why[160], ready[PATH_MAX * 2 + 64];
	int ret = 1;

	if (opts_parse(text, blk_backend_spec, &o, NULL, why, sizeof(why)) < 0) {
		log_err("--block-backend: %s", why);
		return 1;
	}
	if (!o.socket) {
		log_err("--block-backend: socket=PATH is required");
		goto out;
	}
	blk = calloc(1, sizeof(*blk));
	if (!blk) {
		log_err("--block-backend: out of memory");
		goto out;
	}
	/* Before the device model starts its threads: they inherit the mask. */
	if (vu_backend_init(&be, "--block-backend"))
		goto out;
	if (blk_opts_open(blk, &o.blk, "--block-backend") == 0) {
		be.on_hup = blk_backend_hup;
		be.hup_arg = blk;
		vcfg.socket_path = o.socket;
		vcfg.client = o.client;
		snprintf(ready, sizeof(ready), "block-backend: serving %s on %s", o.blk.path, o.socket);
		ret = vu_backend_run(&be, &blk->vdev, &vcfg, ready) ? 1 : 0;
		blk_dev_destroy(blk);
	}
	vu_backend_destroy(&be);
out:
	free(blk);
	opts_free(blk_backend_spec, &o);
	return ret;
}
