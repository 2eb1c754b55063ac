/*
 * virtio-rng (entropy device, virtio 1.2 5.4): one queue; each chain's
 * device-writable buffers are filled from getrandom() or from a source file
 * (--rng src=PATH). One worker thread (the core's) serves the queue.
 */
#ifndef CVMM_VIRTIO_RNG_H
#define CVMM_VIRTIO_RNG_H

#include "cvmm/vdev.h"

#define VIRTIO_ID_RNG 4
#define RNG_QUEUE_SIZE 256
/* Bytes handed out per request at most, so one driver cannot make the
 * worker read without bound. */
#define RNG_MAX_REQUEST 65536

struct rng_dev {
	struct vdev vdev;
	struct virtq vq;
	int src_fd;            /* -1: getrandom() */
	struct virtq_chain *chain;
};

/* src: a file or device to read entropy from, or NULL for getrandom(). */
int rng_dev_init(struct rng_dev *r, const char *src);
void rng_dev_destroy(struct rng_dev *r);

#endif
