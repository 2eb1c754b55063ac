/*
 * virtio-blk device model: the image (open, lock, size watch), config space
 * and features, and the queues (a worker per queue that takes chains off
 * the ring in batches). Requests themselves: virtio_blk_req.c.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "virtio_blk_dev.h"
#include "virtio_blk_req.h"

/* Chains served per pass before the worker yields (Linux vhost's weight). */
#define BLK_BUDGET 256
/* 4 KiB: the granularity hole punching works in on common filesystems. */
#define BLK_DISCARD_ALIGN 8
/* Largest data segment the driver may use; the chain bound does the rest. */
#define BLK_SIZE_MAX (1u << 20)
/* Coalesces inotify events (our own writes cause them too). */
#define BLK_RESIZE_SETTLE_US 20000

static struct blk_dev *blk_from_vdev(struct vdev *dev)
{
	return container_of(dev, struct blk_dev, vdev);
}

/* ---- image ---- */

static int blk_image_bytes(const struct blk_dev *b, uint64_t *bytes)
{
	struct stat st;

	if (b->is_blockdev)
		return ioctl(b->fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

bool blk_dev_check_size(struct blk_dev *b)
{
	uint64_t bytes, sectors;

	if (blk_image_bytes(b, &bytes) < 0)
		return false;
	sectors = bytes / VIRTIO_BLK_SECTOR_SIZE;
	if (sectors == blk_capacity(b))
		return false;
	log_info("blk: %s capacity now %llu sectors", b->serial, (unsigned long long)sectors);
	__atomic_store_n(&b->capacity, sectors, __ATOMIC_RELAXED);
	vdev_config_changed(&b->vdev);
	return true;
}

void blk_dev_rescan(struct blk_dev *b)
{
	uint64_t one = 1;

	if (write(b->rescan_fd, &one, sizeof(one)) < 0) {
		/* Only EAGAIN (counter saturated) is possible: a check is pending. */
	}
}

/* ---- queues ---- */

/* The control worker (size watch) comes after the per-queue workers. */
#define BLK_CTL_WORKER(b) ((b)->vdev.num_queues)

unsigned blk_dev_process_queue(struct blk_dev *b, unsigned qi)
{
	struct virtq *vq = &b->vqs[qi];
	struct blk_queue *q = &b->queues[qi];
	unsigned n = 0;
	int r = 0;

	if (vq->broken)
		return 0;
	for (;;) {
		virtq_disable_notify(vq);
		/* Take chains while request slots last; their reads and writes
		 * go to io_uring together, in one submission. */
		while (n < BLK_BUDGET && q->nfree && (r = virtq_pop(vq, q->chain)) > 0) {
			uint32_t len = blk_req_handle_chain(b, q, q->chain);

			if (len != BLK_PENDING)
				virtq_push(vq, q->chain->head, len);
			n++;
		}
		if (blk_req_in_flight(q)) {
			/* Keep the image busy: as soon as some requests complete,
			 * tell the driver and take what it queued meanwhile; with
			 * slots free, a kick (notifications on while we wait)
			 * wakes us for new requests too. A pass ends only with
			 * nothing in flight. */
			if (r >= 0 && n < BLK_BUDGET) {
				int kick = -1;

				if (q->nfree && vq->kick_fd >= 0) {
					if (virtq_enable_notify(vq))
						continue;
					kick = vq->kick_fd;
				}
				if (blk_req_wait(b, q, kick) == 0) {
					virtq_notify(vq);
					continue;
				}
			}
			blk_req_complete_all(b, q);
		}
		if (r < 0)
			break;
		if (n >= BLK_BUDGET) {
			/* Yield to the worker loop (and a pending stop); the
			 * core brings us back for the rest. */
			vdev_queue_requeue(&b->vdev, qi);
			break;
		}
		if (!virtq_enable_notify(vq))
			break;
	}
	blk_req_unwatch_kicks(b, q);
	virtq_notify(vq);
	return n;
}

static void blk_handle_queue(struct vdev *dev, unsigned qi)
{
	blk_dev_process_queue(blk_from_vdev(dev), qi);
}

static int blk_queue_start(struct vdev *dev, unsigned qi)
{
	struct virtq *vq = &dev->vqs[qi];

	if (vq->nresubmit > vq->resubmit_pos)
		log_info("blk: queue %u: completing %u requests the previous back-end left in flight",
			 qi, vq->nresubmit - vq->resubmit_pos);
	return 0;
}

/* ---- config and features ---- */

static void blk_fill_config(struct blk_dev *b, struct virtio_blk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(blk_capacity(b));
	cfg->size_max = htole32(b->size_max);
	cfg->seg_max = htole32(b->seg_max);
	cfg->blk_size = htole32(VIRTIO_BLK_SECTOR_SIZE);
	cfg->min_io_size = htole16(1);
	cfg->writeback = __atomic_load_n(&b->writeback, __ATOMIC_RELAXED);
	cfg->num_queues = htole16((uint16_t)b->vdev.num_queues);
	cfg->max_discard_sectors = htole32(BLK_MAX_DZ_SECTORS);
	cfg->max_discard_seg = htole32(BLK_MAX_DZ_SEG);
	cfg->discard_sector_alignment = htole32(BLK_DISCARD_ALIGN);
	cfg->max_write_zeroes_sectors = htole32(BLK_MAX_DZ_SECTORS);
	cfg->max_write_zeroes_seg = htole32(BLK_MAX_DZ_SEG);
	cfg->write_zeroes_may_unmap = 1;
}

static void blk_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_blk_config cfg;

	blk_fill_config(blk_from_vdev(dev), &cfg);
	if (off >= sizeof(cfg))
		return;
	memcpy(buf, (uint8_t *)&cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static int blk_write_config(struct vdev *dev, uint32_t off, const void *buf, uint32_t len)
{
	struct blk_dev *b = blk_from_vdev(dev);
	uint8_t wb;

	/* Only the writeback byte is writable, and only with CONFIG_WCE. */
	if (off != offsetof(struct virtio_blk_config, writeback) || len != 1 ||
	    !vdev_has_feature(dev, VIRTIO_BLK_F_CONFIG_WCE))
		return -EINVAL;
	wb = *(const uint8_t *)buf;
	if (wb > 1)
		return -EINVAL;
	__atomic_store_n(&b->writeback, wb, __ATOMIC_RELAXED);
	return 0;
}

static int blk_set_features(struct vdev *dev, uint64_t features)
{
	struct blk_dev *b = blk_from_vdev(dev);

	if (features & ~dev->host_features)
		return -EINVAL;
	/* Without FLUSH the driver cannot ask for durability: write through. */
	__atomic_store_n(&b->writeback, (uint8_t)!!(features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)),
			 __ATOMIC_RELAXED);
	return 0;
}

static void blk_reset(struct vdev *dev)
{
	struct blk_dev *b = blk_from_vdev(dev);

	__atomic_store_n(&b->writeback, 1, __ATOMIC_RELAXED);
}

static const struct vdev_ops blk_vdev_ops = {
	.name = "virtio-blk",
	.set_features = blk_set_features,
	.read_config = blk_read_config,
	.write_config = blk_write_config,
	.handle_queue = blk_handle_queue,
	.queue_start = blk_queue_start,
	.reset = blk_reset,
};

/* ---- size watch ---- */

static void blk_ctl_inotify(void *arg, uint32_t events)
{
	struct blk_dev *b = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)events;
	/* Let a burst of writes settle, then drain their events at once. */
	usleep(BLK_RESIZE_SETTLE_US);
	while (read(b->inotify_fd, buf, sizeof(buf)) > 0)
		;
	blk_dev_check_size(b);
}

static void blk_ctl_rescan(void *arg, uint32_t events)
{
	struct blk_dev *b = arg;
	uint64_t cnt;

	(void)events;
	if (read(b->rescan_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("blk: rescan read: %s", strerror(errno));
	blk_dev_check_size(b);
}

static int blk_ctl_init(struct blk_dev *b, const char *path)
{
	int err;

	b->rescan_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->rescan_fd < 0)
		return -errno;
	b->rescan_watch = (struct worker_watch){ .fn = blk_ctl_rescan, .arg = b };
	err = vdev_watch(&b->vdev, BLK_CTL_WORKER(b), b->rescan_fd, EPOLLIN, &b->rescan_watch);
	if (err)
		return err;
	/* Block devices do not report resizes through inotify; SIGHUP does. */
	if (!b->is_blockdev) {
		b->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (b->inotify_fd < 0)
			return -errno;
		if (inotify_add_watch(b->inotify_fd, path, IN_MODIFY | IN_ATTRIB) < 0)
			return -errno;
		b->inotify_watch = (struct worker_watch){ .fn = blk_ctl_inotify, .arg = b };
		err = vdev_watch(&b->vdev, BLK_CTL_WORKER(b), b->inotify_fd, EPOLLIN, &b->inotify_watch);
		if (err)
			return err;
	}
	return vdev_worker_keep_running(&b->vdev, BLK_CTL_WORKER(b));
}

/* ---- lifecycle ---- */
static int blk_open_image(struct blk_dev *b, const struct blk_dev_config *cfg)
{
	struct flock lk = { .l_type = cfg->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0);

	/* Opened without blocking, so that a FIFO is refused, not waited on;
	 * the image itself is used blocking (io_uring's buffered reads would
	 * otherwise fail whenever the page cache misses). */
	b->fd = open(cfg->path, flags | O_NONBLOCK);
	if (b->fd < 0)
		return -errno;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		b->is_blockdev = true;
	else if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (fcntl(b->fd, F_SETFL, fcntl(b->fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return -errno;
	/* An OFD lock: released when the image closes or the process dies,
	 * and it conflicts with other opens in this process too. */
	if (fcntl(b->fd, F_OFD_SETLK, &lk) < 0)
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	if (cfg->direct) {
		b->fd_buffered = open(cfg->path, flags & ~O_DIRECT);
		if (b->fd_buffered < 0)
			return -errno;
	}
	return 0;
}

int blk_dev_init(struct blk_dev *b, const struct blk_dev_config *cfg)
{
	unsigned nq = cfg->num_queues ? cfg->num_queues : 1;
	unsigned qs = cfg->queue_size ? cfg->queue_size : BLK_DEV_DEFAULT_QUEUE_SIZE;
	uint64_t bytes;
	int err;

	memset(b, 0, sizeof(*b));
	b->fd = b->fd_buffered = b->inotify_fd = b->rescan_fd = -1;
	if (!cfg->path || nq > BLK_DEV_MAX_QUEUES || qs > VIRTQ_MAX_SIZE || (qs & (qs - 1)))
		return -EINVAL;
	b->readonly = cfg->readonly;
	b->direct = cfg->direct;
	if (cfg->serial) {
		memcpy(b->serial, cfg->serial, strnlen(cfg->serial, sizeof(b->serial)));
	} else {
		char *tmp = strdup(cfg->path);
		const char *base;

		if (!tmp)
			return -ENOMEM;
		base = basename(tmp);
		memcpy(b->serial, base, strnlen(base, sizeof(b->serial)));
		free(tmp);
	}
	err = blk_open_image(b, cfg);
	if (err)
		goto fail;
	err = blk_image_bytes(b, &bytes);
	if (err)
		goto fail;
	b->capacity = bytes / VIRTIO_BLK_SECTOR_SIZE;
	b->writeback = 1;
	/* Room for header and status, and slack for buffers that cross
	 * guest memory regions (each such buffer takes two iovecs). */
	b->seg_max = (qs < VIRTQ_MAX_IOV / 2 ? qs : VIRTQ_MAX_IOV / 2) - 2;
	b->size_max = BLK_SIZE_MAX;

	b->vdev.num_queues = nq;
	b->vqs = calloc(nq, sizeof(*b->vqs));
	b->queues = calloc(nq, sizeof(*b->queues));
	if (!b->vqs || !b->queues) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nq; i++) {
		struct blk_queue *q = &b->queues[i];

		virtq_init(&b->vqs[i]);
		q->blk = b;
		q->index = i;
		q->chain = malloc(sizeof(*q->chain));
		q->data_iov = calloc(VIRTQ_MAX_IOV, sizeof(*q->data_iov));
		if (!q->chain || !q->data_iov) {
			err = -ENOMEM;
			goto fail;
		}
		err = blk_req_queue_init(q, !cfg->no_uring);
		if (err)
			goto fail;
	}
	if (nq > 1 && !b->direct && !b->readonly && b->queues[0].uring) {
		err = blk_writer_init(&b->writer, b->fd);
		if (err == -EOPNOTSUPP)
			log_info("blk: %s: io_uring cannot post between rings here: each queue keeps its large writes",
				 b->serial);
		else if (err)
			goto fail;
		b->has_writer = !err;
	}

	b->vdev.ops = &blk_vdev_ops;
	b->vdev.device_id = VIRTIO_ID_BLOCK;
	b->vdev.queue_size_max = (uint16_t)(qs > UINT16_MAX ? UINT16_MAX : qs);
	b->vdev.vqs = b->vqs;
	b->vdev.config_size = sizeof(struct virtio_blk_config);
	b->vdev.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
		VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
		VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
		VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) | VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	if (b->readonly)
		b->vdev.host_features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	else
		b->vdev.host_features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
					 VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);

	/* A worker per queue, and the control worker last. */
	err = vdev_init(&b->vdev, nq + 1, "blk-w");
	if (err)
		goto fail;
	for (unsigned i = 0; i < nq; i++) {
		vdev_set_queue_worker(&b->vdev, i, i);
		/* Page-cache requests complete at once: batching them pays. */
		vdev_worker_adaptive(&b->vdev, i);
	}
	err = blk_ctl_init(b, cfg->path);
	if (err)
		goto fail;
	return 0;
fail:
	blk_dev_destroy(b);
	return err;
}

void blk_dev_destroy(struct blk_dev *b)
{
	vdev_destroy(&b->vdev);
	/* After the workers (no write is left to ask for), before the rings
	 * the results go to. */
	if (b->has_writer) {
		blk_writer_destroy(&b->writer);
		b->has_writer = false;
	}
	if (b->queues) {
		for (unsigned i = 0; i < b->vdev.num_queues; i++) {
			struct blk_queue *q = &b->queues[i];

			blk_req_queue_destroy(q);
			free(q->chain);
			free(q->data_iov);
		}
		free(b->queues);
		b->queues = NULL;
	}
	if (b->vqs) {
		for (unsigned i = 0; i < b->vdev.num_queues; i++)
			virtq_destroy(&b->vqs[i]);
		free(b->vqs);
		b->vqs = NULL;
	}
	if (b->inotify_fd >= 0)
		close(b->inotify_fd);
	if (b->rescan_fd >= 0)
		close(b->rescan_fd);
	if (b->fd >= 0)
		close(b->fd);
	if (b->fd_buffered >= 0)
		close(b->fd_buffered);
	b->fd = b->fd_buffered = b->inotify_fd = b->rescan_fd = -1;
}
