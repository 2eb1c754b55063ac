/*
 * virtio-blk device model (virtio 1.2, 5.2) over a raw image file or block
 * device. Written against vdev.h: the in-process transports and the
 * vhost-user back-end (cvmm --block-backend) host the same model.
 *
 * Threads: one worker per queue serves requests: on a kick it takes chains
 * off the ring (notifications off meanwhile), hands their reads and writes
 * to the queue's io_uring, completes them as they finish, takes what the
 * driver queued meanwhile, and ends the pass with nothing in flight (bounded
 * work per pass). Reads and writes go between the image and the chain's own
 * iovecs (no bounce buffer); preadv/pwritev serve them where io_uring is
 * unavailable. One control worker watches the image for size changes and
 * reports them with vdev_config_changed().
 *
 * Write-through (the driver did not negotiate FLUSH, or turned the cache
 * off with CONFIG_WCE): a write's completion reaches the used ring only
 * after a sync of the image that started once its data was written. Writes
 * stay pipelined: their data goes to io_uring as in writeback mode, the
 * completed ones wait for a sync, and one fdatasync (itself in io_uring, a
 * few at a time per queue) covers every write completed before it started;
 * writes completing meanwhile wait for the next. Without io_uring, one
 * fdatasync covers the writes of a pass.
 */
#ifndef CVMM_DEVICES_BLK_VIRTIO_BLK_DEV_H
#define CVMM_DEVICES_BLK_VIRTIO_BLK_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/vdev.h"
#include "cvmm/virtio_blk.h"
#include "cvmm/virtq.h"
#include "cvmm/worker.h"
#include "blk_writer.h"

#define BLK_DEV_MAX_QUEUES 64
#define BLK_DEV_DEFAULT_QUEUE_SIZE 1024

struct blk_dev_config {
	const char *path;      /* raw image file or block device */
	bool readonly;
	bool direct;           /* O_DIRECT */
	unsigned num_queues;   /* 1..BLK_DEV_MAX_QUEUES; 0 means 1 */
	uint16_t queue_size;   /* power of two up to VIRTQ_MAX_SIZE; 0 means 1024 */
	const char *serial;    /* GET_ID string (up to 20 bytes used); NULL: derived from the path */
	bool no_uring;         /* serve reads and writes with preadv/pwritev only */
};

struct blk_dev;
struct blk_req;
struct blk_io;
struct io_uring;
struct io_uring_sqe;

/* How the image is made durable (FLUSH requests, write-through writes).
 * NULL in blk_dev (the default) is fdatasync on the image; tests put an
 * instrumented sync in its place. */
struct blk_sync_ops {
	/* Syncs now, on the calling thread: 0 or -errno. */
	int (*sync)(struct blk_dev *b, void *arg);
	/* Prepares sqe to sync asynchronously; a completion result >= 0
	 * means every write that had completed before it was submitted is
	 * durable, a negative one is -errno. */
	void (*prep)(struct blk_dev *b, void *arg, struct io_uring_sqe *sqe);
};

/* Per-queue state; the worker thread owns it while the queue runs. */
struct blk_queue {
	struct blk_dev *blk;
	unsigned index;
	struct virtq_chain *chain;     /* scratch for the chain being served */
	struct iovec *data_iov;        /* scratch: the data part of a chain */

	/* Asynchronous reads and writes; uring is NULL when io_uring is
	 * unavailable and requests are served with preadv/pwritev. */
	struct io_uring *uring;
	struct blk_req *reqs;          /* BLK_REQ_SLOTS request slots: reads and
	                                  writes in io_uring, write-through
	                                  writes waiting for their sync */
	uint16_t *free_reqs;           /* stack of free slot numbers */
	unsigned nfree;
	unsigned unsubmitted;          /* prepared SQEs not yet submitted */

	struct blk_io *io;             /* the request engine's own state */
};

struct blk_dev {
	struct vdev vdev;
	int fd;                        /* the image */
	int fd_buffered;               /* with direct: the image without O_DIRECT, for
	                                  buffers O_DIRECT refuses; else -1 */
	bool readonly, direct, is_blockdev;
	char serial[VIRTIO_BLK_ID_BYTES];
	uint64_t capacity;             /* sectors; read and written atomically */
	uint8_t writeback;             /* config writeback (CONFIG_WCE); atomic */
	bool sync_failed;              /* a sync failed: every later one does; atomic */
	uint32_t seg_max, size_max;
	const struct blk_sync_ops *sync_ops; /* NULL: fdatasync */
	void *sync_arg;
	struct virtq *vqs;
	struct blk_queue *queues;
	/* Large buffered writes of several queues (blk_writer.h); has_writer
	 * is false with one queue (its io_uring keeps them in a row), direct
	 * I/O, a read-only image, or no io_uring messaging. */
	struct blk_writer writer;
	bool has_writer;

	/* Size watch on the control worker: inotify on the image plus an
	 * eventfd to force a check. */
	int inotify_fd, rescan_fd;
	struct worker_watch inotify_watch, rescan_watch;
};

/* Opens and locks the image and sets up the model (queues stopped). Returns
 * 0 or -errno: -ENOENT/-EACCES from open, -EBUSY when another process holds
 * the image, -EINVAL for bad parameters. */
int blk_dev_init(struct blk_dev *b, const struct blk_dev_config *cfg);
/* Stops everything and releases the image. */
void blk_dev_destroy(struct blk_dev *b);
/* Asks the control worker to re-read the image size now (e.g. on SIGHUP);
 * async-signal-safe. */
void blk_dev_rescan(struct blk_dev *b);
/* Re-reads the image size; when it changed, updates capacity and calls
 * vdev_config_changed(). Returns true when it changed. */
bool blk_dev_check_size(struct blk_dev *b);
/* Serves queue q once, as on a kick (the worker calls it): returns the
 * number of chains taken from the ring, all of them completed. */
unsigned blk_dev_process_queue(struct blk_dev *b, unsigned q);

#endif
