/*
 * The virtio-blk options that --disk (in-process) and --block-backend
 * (vhost-user) share, with cloud-hypervisor's names and defaults: one
 * queue of 1024, read-write, through the page cache.
 */
#ifndef CVMM_BLK_OPTS_H
#define CVMM_BLK_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/opts.h"
#include "virtio_blk_dev.h"

struct blk_opts {
	char *path, *serial;
	uint32_t num_queues, queue_size;
	bool readonly, direct;
};

#define BLK_OPTS_DEFAULTS { .num_queues = 1, .queue_size = BLK_DEV_DEFAULT_QUEUE_SIZE }

/* The opt_spec entries for a struct blk_opts member m of struct st. */
#define BLK_OPTS_SPECS(st, m)                                      \
	OPT_SPEC("path", OPT_STRING, st, m.path),                  \
	OPT_SPEC("readonly", OPT_BOOL, st, m.readonly),            \
	OPT_SPEC("direct", OPT_BOOL, st, m.direct),                \
	OPT_SPEC("num_queues", OPT_U32, st, m.num_queues),         \
	OPT_SPEC("queue_size", OPT_U32, st, m.queue_size),         \
	OPT_SPEC("serial", OPT_STRING, st, m.serial)

/* Checks the values and opens the image into b (blk_dev_init). On error
 * logs one line starting with who ("--disk", "--block-backend") and
 * returns -errno. */
int blk_opts_open(struct blk_dev *b, const struct blk_opts *o, const char *who);

#endif
