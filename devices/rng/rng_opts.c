/* --rng: the virtio-rng device type (devtype.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/devtype.h"
#include "cvmm/log.h"
#include "virtio_rng.h"

struct rng_type_opts {
	char *src;
};

static const struct opt_spec rng_type_spec[] = {
	OPT_SPEC("src", OPT_STRING, struct rng_type_opts, src),
	OPT_SPEC_END,
};

static int rng_type_create(struct devtype_dev *d, const void *opts, uint64_t seen,
			   enum devtype_role role, const char *who)
{
	const struct rng_type_opts *o = opts;
	struct rng_dev *r = calloc(1, sizeof(*r));
	int err;

	(void)seen;
	(void)role;
	err = r ? rng_dev_init(r, o->src) : -ENOMEM;
	if (err) {
		log_err("%s: cannot open %s: %s", who, o->src ? o->src : "the entropy source",
			err == -EINVAL ? "not a character device or regular file" : strerror(-err));
		free(r);
		return err;
	}
	d->model = r;
	d->vdev = &r->vdev;
	return 0;
}

static void rng_type_destroy(struct devtype_dev *d)
{
	rng_dev_destroy(d->model);
}

const struct devtype rng_devtype = {
	.name = "rng",
	.vm_option = "--rng",
	.vm_usage = "  --rng [src=PATH]     a virtio-rng device fed by getrandom() or by PATH\n",
	.max = 1,
	.value_optional = true,
	.spec = rng_type_spec,
	.opts_size = sizeof(struct rng_type_opts),
	.create = rng_type_create,
	.destroy = rng_type_destroy,
};
