/*
 * The fuzz targets' device model for hosts (the vhost-user server, the
 * transports): it checks the host keeps the vdev contract (config bounds,
 * queues started only with valid rings) and aborts when it does not, so the
 * fuzzer reports it. It runs no worker: when a queue starts, queue_start
 * drains the ring on the calling thread (every buffer touched, every chain
 * returned), so the ring walker runs on what the host set up, deterministically.
 */
#ifndef CVMM_FUZZ_VDEV_H
#define CVMM_FUZZ_VDEV_H

#include "cvmm/vdev.h"

#define FUZZ_VDEV_QUEUES 2
#define FUZZ_VDEV_QUEUE_MAX 256
#define FUZZ_VDEV_CONFIG 24
/* Chains drained per queue start. */
#define FUZZ_VDEV_BUDGET 64

struct fuzz_vdev {
	struct vdev dev;
	struct virtq vqs[FUZZ_VDEV_QUEUES];
	uint8_t config[FUZZ_VDEV_CONFIG];
	bool started[FUZZ_VDEV_QUEUES];
	struct virtq_chain *chain;
};

/* A device with 2 queues of at most 256 entries, 24 config bytes (the
 * first 8 writable), EVENT_IDX and INDIRECT_DESC. 0 or -errno. */
int fuzz_vdev_init(struct fuzz_vdev *f, uint32_t device_id);
void fuzz_vdev_destroy(struct fuzz_vdev *f);

#endif
