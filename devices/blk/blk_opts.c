#include <errno.h>
#include <string.h>

#include "cvmm/blk_opts.h"
#include "cvmm/log.h"

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
	err = blk_dev_init(b, &cfg);
	if (err == -EBUSY)
		log_err("%s: image %s is in use by another process (a VM or back-end has it open)", who, o->path);
	else if (err == -EINVAL)
		log_err("%s: image %s is not a regular file or block device", who, o->path);
	else if (err)
		log_err("%s: cannot open image %s: %s", who, o->path, strerror(-err));
	return err;
}
