/*
 * Inside the virtio-blk model: what devices/blk/virtio_blk.c (device, queues,
 * config) and devices/blk/virtio_blk_req.c (requests, I/O) share.
 */
#ifndef CVMM_VIRTIO_BLK_REQ_H
#define CVMM_VIRTIO_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio_blk_dev.h"

/* Limits advertised for DISCARD / WRITE_ZEROES. */
#define BLK_MAX_DZ_SECTORS (1u << 22)
#define BLK_MAX_DZ_SEG 32
/* "Not completed yet": the request went to io_uring. */
#define BLK_PENDING UINT32_MAX

/* Disk size in sectors; changes under the queues when the image is resized. */
static inline uint64_t blk_capacity(const struct blk_dev *b)
{
	return __atomic_load_n(&b->capacity, __ATOMIC_RELAXED);
}

/* Serves one popped chain: returns the used length to push, or BLK_PENDING
 * when its read or write went to the queue's io_uring or, write-through,
 * waits for a sync. Needs a free request slot (q->nfree). */
uint32_t blk_req_handle_chain(struct blk_dev *b, struct blk_queue *q, struct virtq_chain *c);
/* Requests of queue q taken and not completed yet. */
unsigned blk_req_in_flight(const struct blk_queue *q);
/* Submits the queue's prepared requests and waits until some of those in
 * flight progress (completed ones are pushed to the used ring; the caller
 * notifies) or, with kick_fd >= 0, the driver kicks. 0 or -errno when
 * io_uring fails. */
int blk_req_wait(struct blk_dev *b, struct blk_queue *q, int kick_fd);
/* Ends what blk_req_wait set up to watch kicks; at the end of every pass,
 * before the kick fd may change. */
void blk_req_unwatch_kicks(struct blk_dev *b, struct blk_queue *q);
/* Submits the queue's prepared requests and completes them all. */
void blk_req_complete_all(struct blk_dev *b, struct blk_queue *q);
/* Gives queue q its request slots and, with use_uring, an io_uring; without
 * one (old kernel, seccomp, memory) it stays synchronous. 0 or -ENOMEM. */
int blk_req_queue_init(struct blk_queue *q, bool use_uring);
void blk_req_queue_destroy(struct blk_queue *q);

#endif
