/*
 * virtio-blk requests: parsing a popped chain (no framing assumed, virtio
 * 1.2 2.6.4: the header may span several readable buffers, the status byte
 * is the last writable byte) and executing it on the image. Reads and
 * writes go between the image and the chain's own iovecs, through the
 * queue's io_uring or with preadv/pwritev; everything else is synchronous.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cvmm/iov.h"
#include "cvmm/log.h"
#include "cvmm/virtio_blk.h"
#include "virtio_blk_req.h"

/* Reads and writes in flight per queue through io_uring. */
#define BLK_URING_DEPTH 128
/* Iovecs a request keeps in its slot; longer chains get a heap copy. */
#define BLK_REQ_INLINE_IOV 8

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

/* ---- iovec helpers ---- */

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

/* True when [sector, sector+count) lies within the disk. */
static bool blk_range_ok(const struct blk_dev *b, uint64_t sector, uint64_t count)
{
	uint64_t cap = blk_capacity(b);

	return sector <= cap && count <= cap - sector;
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

		iov_to_buf(c->iov, c->nout, sizeof(struct virtio_blk_outhdr) + i * sizeof(seg),
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
	unsigned n = write ? iov_slice(c->iov, c->nout, hdr, len, q->data_iov, VIRTQ_MAX_IOV) :
			     iov_slice(in, c->nin, 0, len, q->data_iov, VIRTQ_MAX_IOV);
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
uint32_t blk_req_handle_chain(struct blk_dev *b, struct blk_queue *q, struct virtq_chain *c)
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
	iov_to_buf(c->iov, c->nout, 0, &hdr, sizeof(hdr));
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

		n = iov_slice(in, c->nin, 0, in_data, q->data_iov, VIRTQ_MAX_IOV);
		used += (uint32_t)iov_from_buf(q->data_iov, n, 0, b->serial, len);
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

unsigned blk_req_in_flight(const struct blk_queue *q)
{
	return q->uring ? BLK_URING_DEPTH - q->nfree : 0;
}

/* Waits for one completion of queue q's io_uring and handles it. Waiting
 * inside io_uring_enter also runs the completion work the kernel queues
 * for this thread, which a wait in epoll alone would not reliably do. */
static int blk_wait_one(struct blk_dev *b, struct blk_queue *q)
{
	struct io_uring_cqe *cqe;
	int r;

	do
		r = io_uring_wait_cqe(q->uring, &cqe);
	while (r == -EINTR);
	if (r < 0) {
		log_err("blk: queue %u: waiting for I/O: %s", q->index, strerror(-r));
		return r;
	}
	blk_cqe(b, q, cqe);
	return 0;
}

int blk_req_wait(struct blk_dev *b, struct blk_queue *q)
{
	int err = blk_flush_submissions(q);

	/* Waiting for requests the kernel never took would hang the queue. */
	if (err)
		return err;
	if (blk_reap(b, q))
		return 0;
	err = blk_wait_one(b, q);
	blk_reap(b, q);
	return err;
}

void blk_req_complete_all(struct blk_dev *b, struct blk_queue *q)
{
	if (blk_flush_submissions(q) < 0) {
		blk_reap(b, q);
		return;
	}
	blk_reap(b, q);
	while (blk_req_in_flight(q) && blk_wait_one(b, q) == 0)
		blk_reap(b, q);
}

/* Sets up queue q's io_uring; on failure the queue stays synchronous. */
void blk_req_uring_init(struct blk_queue *q)
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

void blk_req_uring_destroy(struct blk_queue *q)
{
	if (!q->uring)
		return;
	io_uring_queue_exit(q->uring);
	free(q->uring);
	free(q->reqs);
	free(q->free_reqs);
	q->uring = NULL;
}
