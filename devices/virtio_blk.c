/*
 * virtio-blk device model. Requests are parsed from the popped chain's
 * iovecs without assuming any framing (virtio 1.2 2.6.4): the header may
 * span several readable buffers, the status byte is the last writable byte.
 * Data moves between the image and guest memory with preadv/pwritev on the
 * chain's own iovecs, so there is no bounce buffer.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/virtio_blk.h"

/* Chains served per pass before the worker yields (Linux vhost's weight). */
#define BLK_BUDGET 256
/* Limits advertised for DISCARD / WRITE_ZEROES. */
#define BLK_MAX_DZ_SECTORS (1u << 22)
#define BLK_MAX_DZ_SEG 32
/* 4 KiB: the granularity hole punching works in on common filesystems. */
#define BLK_DISCARD_ALIGN 8
/* Largest data segment the driver may use; the chain bound does the rest. */
#define BLK_SIZE_MAX (1u << 20)
/* Coalesces inotify events (our own writes cause them too). */
#define BLK_RESIZE_SETTLE_US 20000

/* Reads and writes in flight per queue through io_uring. */
#define BLK_URING_DEPTH 128
/* Iovecs a request keeps in its slot; longer chains get a heap copy. */
#define BLK_REQ_INLINE_IOV 8
/* "Not completed yet": the request went to io_uring. */
#define BLK_PENDING UINT32_MAX

/* A read or write handed to io_uring. */
struct blk_req {
	uint16_t head;
	bool write;
	uint8_t *status;
	uint64_t off;
	size_t len;
	unsigned niov;
	struct iovec *iov;             /* inl or a heap copy */
	struct iovec inl[BLK_REQ_INLINE_IOV];
};

#define BLK_ZERO_CHUNK 4096
static const uint8_t blk_zero_page[BLK_ZERO_CHUNK] __attribute__((aligned(4096)));

static struct blk_dev *blk_from_vdev(struct vdev *dev)
{
	return (struct blk_dev *)dev;
}

/* ---- iovec helpers ---- */

/* Copies up to len bytes starting skip bytes into iov into dst. */
static size_t blk_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	return done;
}

static size_t blk_buf_to_iov(const struct iovec *iov, unsigned n, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, (const uint8_t *)src + done, l);
		done += l;
	}
	return done;
}

/* Fills dst with the iovecs covering bytes [skip, skip+len) of iov. Returns
 * the count; dst has room for VIRTQ_MAX_IOV, as many as a chain can have. */
static unsigned blk_iov_slice(const struct iovec *iov, unsigned n, size_t skip, size_t len,
			      struct iovec *dst)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		dst[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
		dst[k].iov_len = l;
		k++;
		len -= l;
		skip = 0;
	}
	return k;
}

/* Drops done bytes from the front of *iov (after a short transfer). */
static void blk_iov_advance(struct iovec **iov, unsigned *n, size_t done)
{
	while (*n && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n && done) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}

static uint8_t *blk_iov_last_byte(const struct iovec *iov, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		if (iov[i].iov_len)
			return (uint8_t *)iov[i].iov_base + iov[i].iov_len - 1;
	return NULL;
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

static uint64_t blk_capacity(const struct blk_dev *b)
{
	return __atomic_load_n(&b->capacity, __ATOMIC_RELAXED);
}

/* True when [sector, sector+count) lies within the disk. */
static bool blk_range_ok(const struct blk_dev *b, uint64_t sector, uint64_t count)
{
	uint64_t cap = blk_capacity(b);

	return sector <= cap && count <= cap - sector;
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

/* ---- requests ---- */

/* Checks a read or write of len bytes at sector against the disk. */
static uint8_t blk_rw_check(const struct blk_dev *b, uint64_t sector, size_t len, bool write)
{
	if (len % VIRTIO_BLK_SECTOR_SIZE || !blk_range_ok(b, sector, len / VIRTIO_BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	if (write && b->readonly)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static bool blk_writeback(const struct blk_dev *b)
{
	return __atomic_load_n(&b->writeback, __ATOMIC_RELAXED);
}

/* Moves len bytes between iov and the image at off, synchronously. */
static uint8_t blk_rw_sync(struct blk_dev *b, struct iovec *iov, unsigned n, uint64_t off,
			   size_t len, bool write)
{
	int fd = b->fd;

	while (len) {
		ssize_t r = write ? pwritev(fd, iov, (int)n, (off_t)off) :
				    preadv(fd, iov, (int)n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		/* O_DIRECT refuses buffers not aligned to the host's block
		 * size; the guest may use any: go through the page cache. */
		if (r < 0 && errno == EINVAL && b->fd_buffered >= 0 && fd != b->fd_buffered) {
			fd = b->fd_buffered;
			continue;
		}
		/* 0: the image shrank under us; the capacity check catches up. */
		if (r <= 0) {
			log_debug("blk: %s at byte %llu: %s", write ? "write" : "read",
				  (unsigned long long)off, r ? strerror(errno) : "end of image");
			return VIRTIO_BLK_S_IOERR;
		}
		len -= (size_t)r;
		off += (uint64_t)r;
		blk_iov_advance(&iov, &n, (size_t)r);
	}
	/* Write-through: the driver turned the cache off (CONFIG_WCE). */
	if (write && !blk_writeback(b) && fdatasync(b->fd) < 0)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static int blk_write_zero_bytes(struct blk_dev *b, uint64_t off, uint64_t len)
{
	struct iovec iov[64];

	for (unsigned i = 0; i < 64; i++) {
		iov[i].iov_base = (void *)blk_zero_page;
		iov[i].iov_len = BLK_ZERO_CHUNK;
	}
	while (len) {
		uint64_t chunk = len < sizeof(iov) / sizeof(iov[0]) * BLK_ZERO_CHUNK ?
				 len : sizeof(iov) / sizeof(iov[0]) * BLK_ZERO_CHUNK;
		unsigned n = (unsigned)((chunk + BLK_ZERO_CHUNK - 1) / BLK_ZERO_CHUNK);
		ssize_t r;

		iov[n - 1].iov_len = chunk - (uint64_t)(n - 1) * BLK_ZERO_CHUNK;
		r = pwritev(b->fd, iov, (int)n, (off_t)off);
		iov[n - 1].iov_len = BLK_ZERO_CHUNK;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? -errno : -EIO;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

/* One validated DISCARD / WRITE_ZEROES segment. */
static int blk_dz_exec(struct blk_dev *b, bool discard, uint64_t sector, uint32_t count, bool unmap)
{
	off_t off = (off_t)(sector * VIRTIO_BLK_SECTOR_SIZE);
	off_t len = (off_t)count * VIRTIO_BLK_SECTOR_SIZE;
	int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int zero = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (!count)
		return 0;
	if (discard) {
		/* A discard is a hint: a filesystem without holes may ignore it. */
		if (fallocate(b->fd, punch, off, len) < 0 && errno != EOPNOTSUPP)
			return -errno;
		return 0;
	}
	/* Both modes leave zeroes behind on a raw image; try the preferred first. */
	if (fallocate(b->fd, unmap ? punch : zero, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	if (fallocate(b->fd, unmap ? zero : punch, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return blk_write_zero_bytes(b, (uint64_t)off, (uint64_t)len);
}

static uint8_t blk_discard_wz(struct blk_dev *b, const struct virtq_chain *c, bool discard)
{
	struct virtio_blk_discard_write_zeroes seg;
	size_t data = c->out_len - sizeof(struct virtio_blk_outhdr);
	size_t nseg = data / sizeof(seg);
	unsigned feature = discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;

	if (!vdev_has_feature(&b->vdev, feature))
		return VIRTIO_BLK_S_UNSUPP;
	if (b->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (data % sizeof(seg) || nseg == 0 || nseg > BLK_MAX_DZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	/* Validate every segment before touching the image. The guest may
	 * change its buffers meanwhile, so each is read once into a copy. */
	struct virtio_blk_discard_write_zeroes segs[BLK_MAX_DZ_SEG];

	for (size_t i = 0; i < nseg; i++) {
		uint32_t flags;

		blk_iov_to_buf(c->iov, c->nout, sizeof(struct virtio_blk_outhdr) + i * sizeof(seg),
			       &seg, sizeof(seg));
		segs[i].sector = le64toh(seg.sector);
		segs[i].num_sectors = le32toh(seg.num_sectors);
		segs[i].flags = flags = le32toh(seg.flags);
		if ((flags & ~VIRTIO_BLK_WZ_F_UNMAP) || (discard && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (segs[i].num_sectors > BLK_MAX_DZ_SECTORS ||
		    !blk_range_ok(b, segs[i].sector, segs[i].num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	for (size_t i = 0; i < nseg; i++) {
		int err = blk_dz_exec(b, discard, segs[i].sector, segs[i].num_sectors,
				      segs[i].flags & VIRTIO_BLK_WZ_F_UNMAP);

		if (err) {
			log_debug("blk: %s at sector %llu: %s", discard ? "discard" : "write zeroes",
				  (unsigned long long)segs[i].sector, strerror(-err));
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

/* Hands a validated read or write to io_uring; false when it cannot take it. */
static bool blk_submit(struct blk_dev *b, struct blk_queue *q, uint16_t head, uint8_t *status,
		       const struct iovec *iov, unsigned n, uint64_t off, size_t len, bool write)
{
	struct io_uring_sqe *sqe;
	struct blk_req *r;

	/* Write-through writes need an fdatasync after each: keep them synchronous. */
	if (!q->uring || !q->nfree || (write && !blk_writeback(b)))
		return false;
	r = &q->reqs[q->free_reqs[q->nfree - 1]];
	r->iov = n <= BLK_REQ_INLINE_IOV ? r->inl : malloc(n * sizeof(*iov));
	if (!r->iov)
		return false;
	sqe = io_uring_get_sqe(q->uring);
	if (!sqe) {
		if (r->iov != r->inl)
			free(r->iov);
		return false;
	}
	q->nfree--;
	memcpy(r->iov, iov, n * sizeof(*iov));
	r->niov = n;
	r->head = head;
	r->status = status;
	r->off = off;
	r->len = len;
	r->write = write;
	if (write)
		io_uring_prep_writev(sqe, b->fd, r->iov, n, off);
	else
		io_uring_prep_readv(sqe, b->fd, r->iov, n, off);
	io_uring_sqe_set_data(sqe, r);
	q->unsubmitted++;
	return true;
}

/* A read or write: to io_uring when possible (BLK_PENDING), else done here. */
static uint32_t blk_handle_rw(struct blk_dev *b, struct blk_queue *q, struct virtq_chain *c,
			      uint8_t *status, uint64_t sector, bool write)
{
	struct iovec *in = c->iov + c->nout;
	size_t hdr = sizeof(struct virtio_blk_outhdr);
	size_t len = write ? c->out_len - hdr : c->in_len - 1;
	unsigned n = write ? blk_iov_slice(c->iov, c->nout, hdr, len, q->data_iov) :
			     blk_iov_slice(in, c->nin, 0, len, q->data_iov);
	uint8_t st = blk_rw_check(b, sector, len, write);

	if (st == VIRTIO_BLK_S_OK) {
		if (blk_submit(b, q, c->head, status, q->data_iov, n,
			       sector * VIRTIO_BLK_SECTOR_SIZE, len, write))
			return BLK_PENDING;
		st = blk_rw_sync(b, q->data_iov, n, sector * VIRTIO_BLK_SECTOR_SIZE, len, write);
	}
	*status = st;
	return st == VIRTIO_BLK_S_OK && !write ? (uint32_t)len + 1 : 1;
}

/* Serves one chain: returns the used length, or BLK_PENDING. */
static uint32_t blk_handle_chain(struct blk_dev *b, struct blk_queue *q, struct virtq_chain *c)
{
	struct iovec *in = c->iov + c->nout;
	struct virtio_blk_outhdr hdr;
	uint8_t *status = blk_iov_last_byte(in, c->nin);
	uint32_t used = 1;
	size_t in_data;
	unsigned n;
	uint8_t st;

	/* Without a writable status byte the request cannot be answered:
	 * return the buffers untouched (virtio 1.2 lets the device drop it). */
	if (!status || c->in_len < 1) {
		log_debug("blk: chain %u has no status byte; dropped", c->head);
		return 0;
	}
	in_data = c->in_len - 1;
	if (c->out_len < sizeof(hdr)) {
		*status = VIRTIO_BLK_S_IOERR;
		return 1;
	}
	blk_iov_to_buf(c->iov, c->nout, 0, &hdr, sizeof(hdr));
	switch (le32toh(hdr.type)) {
	case VIRTIO_BLK_T_IN:
		return blk_handle_rw(b, q, c, status, le64toh(hdr.sector), false);
	case VIRTIO_BLK_T_OUT:
		return blk_handle_rw(b, q, c, status, le64toh(hdr.sector), true);
	case VIRTIO_BLK_T_FLUSH:
		if (!vdev_has_feature(&b->vdev, VIRTIO_BLK_F_FLUSH))
			st = VIRTIO_BLK_S_UNSUPP;
		else
			st = fdatasync(b->fd) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t len = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;

		n = blk_iov_slice(in, c->nin, 0, in_data, q->data_iov);
		used += (uint32_t)blk_buf_to_iov(q->data_iov, n, b->serial, len);
		st = VIRTIO_BLK_S_OK;
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
		st = blk_discard_wz(b, c, true);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = blk_discard_wz(b, c, false);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	*status = st;
	return used;
}

/* Finishes a request io_uring completed with result res. */
static void blk_complete(struct blk_dev *b, struct blk_queue *q, struct blk_req *r, int res)
{
	struct virtq *vq = &b->vqs[q->index];
	uint8_t st = VIRTIO_BLK_S_OK;

	if (res == -EINVAL && b->fd_buffered >= 0) {
		/* An O_DIRECT alignment refusal: blk_rw_sync knows the way round. */
		st = blk_rw_sync(b, r->iov, r->niov, r->off, r->len, r->write);
	} else if (res < 0) {
		log_debug("blk: %s at byte %llu: %s", r->write ? "write" : "read",
			  (unsigned long long)r->off, strerror(-res));
		st = VIRTIO_BLK_S_IOERR;
	} else if ((size_t)res < r->len) {
		/* A short transfer: finish the rest synchronously. */
		struct iovec *iov = r->iov;
		unsigned n = r->niov;

		blk_iov_advance(&iov, &n, (size_t)res);
		st = blk_rw_sync(b, iov, n, r->off + (uint64_t)res, r->len - (size_t)res, r->write);
	}
	*r->status = st;
	virtq_push(vq, r->head, st == VIRTIO_BLK_S_OK && !r->write ? (uint32_t)r->len + 1 : 1);
	if (r->iov != r->inl)
		free(r->iov);
	r->iov = NULL;
	q->free_reqs[q->nfree++] = (uint16_t)(r - q->reqs);
}

static void blk_cqe(struct blk_dev *b, struct blk_queue *q, struct io_uring_cqe *cqe)
{
	struct blk_req *r = io_uring_cqe_get_data(cqe);
	int res = cqe->res;

	io_uring_cqe_seen(q->uring, cqe);
	if (r)
		blk_complete(b, q, r, res);
}

/* Completes what io_uring has finished; returns how many. */
static unsigned blk_reap(struct blk_dev *b, struct blk_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	while (io_uring_peek_cqe(q->uring, &cqe) == 0) {
		blk_cqe(b, q, cqe);
		n++;
	}
	return n;
}

/* Returns 0, or -errno when io_uring refuses the batch for good. */
static int blk_flush_submissions(struct blk_queue *q)
{
	while (q->unsubmitted) {
		int r = io_uring_submit(q->uring);

		if (r == -EINTR || r == -EAGAIN || r == -EBUSY)
			continue;
		if (r <= 0) {
			log_err("blk: queue %u: io_uring_submit: %s", q->index,
				r ? strerror(-r) : "nothing submitted");
			return r ? r : -EIO;
		}
		q->unsubmitted -= (unsigned)r < q->unsubmitted ? (unsigned)r : q->unsubmitted;
	}
	return 0;
}

/* Submits what was prepared and completes every request in flight. Waiting
 * inside io_uring_enter also runs the completion work the kernel queues
 * for this thread, which a wait in epoll alone would not reliably do. */
static void blk_uring_complete_all(struct blk_dev *b, struct blk_queue *q)
{
	struct io_uring_cqe *cqe;

	/* Waiting for requests the kernel never took would hang the queue. */
	if (blk_flush_submissions(q) < 0) {
		blk_reap(b, q);
		return;
	}
	blk_reap(b, q);
	while (q->nfree < BLK_URING_DEPTH) {
		int r = io_uring_wait_cqe(q->uring, &cqe);

		if (r == -EINTR)
			continue;
		if (r < 0) {
			log_err("blk: queue %u: waiting for I/O: %s", q->index, strerror(-r));
			break;
		}
		blk_cqe(b, q, cqe);
		blk_reap(b, q);
	}
}

/* ---- queues ---- */

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
		/* Take chains while request slots last, then run them all at
		 * once: one io_uring_enter for the batch, and reads and writes
		 * the kernel punts to its workers proceed in parallel. */
		while (n < BLK_BUDGET && (!q->uring || q->nfree) && (r = virtq_pop(vq, q->chain)) > 0) {
			uint32_t len = blk_handle_chain(b, q, q->chain);

			if (len != BLK_PENDING)
				virtq_push(vq, q->chain->head, len);
			n++;
		}
		if (q->uring)
			blk_uring_complete_all(b, q);
		if (r < 0) {
			log_warn("blk: queue %u: the driver put a malformed chain on the ring; "
				 "queue stopped until reset", qi);
			break;
		}
		if (n >= BLK_BUDGET) {
			/* Yield to the worker loop (and a pending stop); a kick to
			 * ourselves brings us back for the rest. */
			uint64_t one = 1;

			if (q->watched_fd >= 0 && write(q->watched_fd, &one, sizeof(one)) < 0)
				log_warn("blk: queue %u: cannot requeue: %s", qi, strerror(errno));
			break;
		}
		/* Slots ran out before the ring did: the next batch. */
		if (r > 0 && (!q->uring || q->nfree))
			continue;
		if (!virtq_enable_notify(vq))
			break;
	}
	virtq_notify(vq);
	return n;
}

static void blk_queue_kick(void *arg, uint32_t events)
{
	struct blk_queue *q = arg;
	uint64_t cnt;

	(void)events;
	if (read(q->watched_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("blk: queue %u: kick read: %s", q->index, strerror(errno));
	blk_dev_process_queue(q->blk, q->index);
}

static int blk_queue_start(struct vdev *dev, unsigned qi)
{
	struct blk_dev *b = blk_from_vdev(dev);
	struct blk_queue *q;
	struct virtq *vq;
	uint64_t one = 1;
	int err;

	if (qi >= dev->num_queues)
		return -EINVAL;
	q = &b->queues[qi];
	vq = &b->vqs[qi];
	if (vq->kick_fd < 0 || !vq->desc)
		return -EINVAL;
	if (q->watched_fd >= 0)
		return -EBUSY;
	vq->event_idx = vdev_has_feature(dev, VIRTIO_F_EVENT_IDX);
	vq->indirect = vdev_has_feature(dev, VIRTIO_F_INDIRECT_DESC);
	if (vq->nresubmit > vq->resubmit_pos)
		log_info("blk: queue %u: completing %u requests the previous back-end left in flight",
			 qi, vq->nresubmit - vq->resubmit_pos);
	err = worker_watch(&q->worker, vq->kick_fd, EPOLLIN, &q->kick_watch);
	if (err)
		return err;
	q->watched_fd = vq->kick_fd;
	err = worker_start(&q->worker);
	if (err) {
		worker_unwatch(&q->worker, q->watched_fd);
		q->watched_fd = -1;
		return err;
	}
	/* Buffers may be waiting already (a reconnecting front-end, resubmitted
	 * inflight requests): serve them without waiting for a kick. */
	if (write(q->watched_fd, &one, sizeof(one)) < 0)
		log_warn("blk: queue %u: initial kick: %s", qi, strerror(errno));
	return 0;
}

static void blk_queue_stop(struct vdev *dev, unsigned qi)
{
	struct blk_dev *b = blk_from_vdev(dev);
	struct blk_queue *q;

	if (qi >= dev->num_queues)
		return;
	q = &b->queues[qi];
	/* Every request completes within the pass that took it: joining
	 * the worker leaves none in progress. */
	worker_stop(&q->worker);
	if (q->watched_fd >= 0) {
		worker_unwatch(&q->worker, q->watched_fd);
		q->watched_fd = -1;
	}
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
	dev->features = features;
	/* Without FLUSH the driver cannot ask for durability: write through. */
	__atomic_store_n(&b->writeback, (uint8_t)!!(features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)),
			 __ATOMIC_RELAXED);
	return 0;
}

static void blk_reset(struct vdev *dev)
{
	struct blk_dev *b = blk_from_vdev(dev);

	dev->features = 0;
	__atomic_store_n(&b->writeback, 1, __ATOMIC_RELAXED);
}

static void blk_vdev_destroy(struct vdev *dev)
{
	blk_dev_destroy(blk_from_vdev(dev));
}

static const struct vdev_ops blk_vdev_ops = {
	.name = "virtio-blk",
	.set_features = blk_set_features,
	.read_config = blk_read_config,
	.write_config = blk_write_config,
	.queue_start = blk_queue_start,
	.queue_stop = blk_queue_stop,
	.reset = blk_reset,
	.destroy = blk_vdev_destroy,
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

	err = worker_init(&b->ctl, "blk-ctl");
	if (err)
		return err;
	b->ctl_ready = true;
	b->rescan_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->rescan_fd < 0)
		return -errno;
	b->rescan_watch = (struct worker_watch){ .fn = blk_ctl_rescan, .arg = b };
	err = worker_watch(&b->ctl, b->rescan_fd, EPOLLIN, &b->rescan_watch);
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
		err = worker_watch(&b->ctl, b->inotify_fd, EPOLLIN, &b->inotify_watch);
		if (err)
			return err;
	}
	return worker_start(&b->ctl);
}

/* ---- lifecycle ---- */

/* Sets up queue q's io_uring; on failure the queue stays synchronous. */
static void blk_queue_uring_init(struct blk_queue *q)
{
	int err;

	q->uring = calloc(1, sizeof(*q->uring));
	q->reqs = calloc(BLK_URING_DEPTH, sizeof(*q->reqs));
	q->free_reqs = calloc(BLK_URING_DEPTH, sizeof(*q->free_reqs));
	if (!q->uring || !q->reqs || !q->free_reqs) {
		err = -ENOMEM;
		goto fail;
	}
	err = io_uring_queue_init(BLK_URING_DEPTH, q->uring, 0);
	if (err)
		goto fail;
	for (unsigned i = 0; i < BLK_URING_DEPTH; i++)
		q->free_reqs[i] = (uint16_t)(BLK_URING_DEPTH - 1 - i);
	q->nfree = BLK_URING_DEPTH;
	return;
fail:
	log_info("blk: queue %u: io_uring unavailable (%s); using preadv/pwritev",
		 q->index, strerror(-err));
	free(q->uring);
	free(q->reqs);
	free(q->free_reqs);
	q->uring = NULL;
	q->reqs = NULL;
	q->free_reqs = NULL;
}

static void blk_queue_uring_destroy(struct blk_queue *q)
{
	if (!q->uring)
		return;
	io_uring_queue_exit(q->uring);
	free(q->uring);
	free(q->reqs);
	free(q->free_reqs);
	q->uring = NULL;
}

static int blk_open_image(struct blk_dev *b, const struct blk_dev_config *cfg)
{
	struct flock lk = { .l_type = cfg->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0);

	b->fd = open(cfg->path, flags);
	if (b->fd < 0)
		return -errno;
	if (fstat(b->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		b->is_blockdev = true;
	else if (!S_ISREG(st.st_mode))
		return -EINVAL;
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
		char name[16];

		virtq_init(&b->vqs[i]);
		q->blk = b;
		q->index = i;
		q->watched_fd = -1;
		q->kick_watch = (struct worker_watch){ .fn = blk_queue_kick, .arg = q };
		q->chain = malloc(sizeof(*q->chain));
		q->data_iov = calloc(VIRTQ_MAX_IOV, sizeof(*q->data_iov));
		if (!q->chain || !q->data_iov) {
			err = -ENOMEM;
			goto fail;
		}
		snprintf(name, sizeof(name), "blk-q%u", i);
		err = worker_init(&q->worker, name);
		if (err)
			goto fail;
		q->worker_ready = true;
		blk_queue_uring_init(q);
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
	if (b->queues) {
		for (unsigned i = 0; i < b->vdev.num_queues; i++) {
			struct blk_queue *q = &b->queues[i];

			if (q->worker_ready) {
				blk_queue_stop(&b->vdev, i);
				worker_destroy(&q->worker);
				q->worker_ready = false;
			}
			blk_queue_uring_destroy(q);
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
	if (b->ctl_ready) {
		worker_destroy(&b->ctl);
		b->ctl_ready = false;
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
