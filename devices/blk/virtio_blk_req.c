/*
 * virtio-blk requests: parsing a popped chain (no framing assumed, virtio
 * 1.2 2.6.4: the header may span several readable buffers, the status byte
 * is the last writable byte) and executing it on the image. Reads and
 * writes go between the image and the chain's own iovecs, through the
 * queue's io_uring (small buffered writes: pwritev, see blk_submit; large
 * ones of a disk with several queues: its writer thread, blk_writer.h) or
 * with preadv/pwritev; everything else is synchronous.
 *
 * Write-through writes (see virtio_blk.h) keep their request slot after
 * their data is written, first waiting for a sync to start, then for it to
 * complete; only then are they pushed. A sync covers all the writes
 * completed before it starts, and up to BLK_SYNCS_MAX run at once (the
 * device serves them in parallel; each new one takes the writes completed
 * since the last). That beats RWF_DSYNC on each write: a buffered DSYNC
 * write cannot complete inline, so io_uring hands every write to a kernel
 * worker thread that writes back and waits for its own page, one device
 * round trip and a context switch each, where a batched fdatasync writes
 * many pages back together and waits once.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cvmm/iov.h"
#include "cvmm/log.h"
#include "virtio_blk_dev.h"
#include "virtio_blk_req.h"

/* Requests a queue has in progress: reads and writes in io_uring, and
 * write-through writes waiting for their sync. Also the ring's size. */
#define BLK_REQ_SLOTS 128
/* Iovecs a request keeps in its slot; longer chains get a heap copy. */
#define BLK_REQ_INLINE_IOV 8
/* Syncs in flight per queue (write-through). */
#define BLK_SYNCS_MAX 4
/* Buffered writes up to this size are done on the queue's thread. */
#define BLK_INLINE_WRITE_MAX (64u << 10)

/* A read or write handed to io_uring, or written and waiting for a sync. */
struct blk_req {
	uint16_t head;
	bool write;
	bool sync;                     /* write-through: durable before completion */
	uint8_t *status;
	uint64_t off;
	size_t len;
	unsigned niov;
	struct iovec *iov;             /* inl or a heap copy */
	struct iovec inl[BLK_REQ_INLINE_IOV];
	struct blk_write_job job;      /* when the disk's writer does it */
};

/* Write-through writes with their data on the image, not yet durable. */
struct blk_wt_batch {
	uint16_t slots[BLK_REQ_SLOTS];
	unsigned n;
	bool in_flight;                /* a sync covering them is in io_uring */
};

struct blk_io {
	struct blk_wt_batch waiting;   /* for a sync to start */
	struct blk_wt_batch syncs[BLK_SYNCS_MAX];
	unsigned nsyncs;               /* in flight */
	/* A multishot poll on the kick fd is in io_uring: while the worker
	 * waits for I/O, the driver's kicks wake it too. Its address is the
	 * poll's user data; kick_removing's, that of a removal of it. */
	bool kick_polled;
	bool kick_removing;
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
	return VIRTIO_BLK_S_OK;
}

/* What a sync that ended with res means for the writes it covers. Linux
 * reports a failed writeback to one sync only, and it need not be the sync
 * of the write whose data was lost: after one failure no later sync proves
 * anything, so from then on every sync fails (as QEMU does). */
static int blk_sync_result(struct blk_dev *b, int res)
{
	if (res < 0 && !__atomic_exchange_n(&b->sync_failed, true, __ATOMIC_SEQ_CST))
		log_err("blk: %s: syncing the image failed (%s); from now on every flush and "
			"write-through write of this disk fails", b->serial, strerror(-res));
	if (res >= 0 && __atomic_load_n(&b->sync_failed, __ATOMIC_SEQ_CST))
		return -EIO;
	return res;
}

/* Makes what was written to the image durable, now: 0 or -errno. */
static int blk_sync_now(struct blk_dev *b)
{
	int res;

	if (b->sync_ops)
		res = b->sync_ops->sync(b, b->sync_arg);
	else
		res = fdatasync(b->fd) < 0 ? -errno : 0;
	return blk_sync_result(b, res);
}

/* Without O_DIRECT where there is a choice: the range need only be
 * sector-aligned, which O_DIRECT on a 4 KiB-sector device refuses. */
static int blk_write_zero_bytes(struct blk_dev *b, uint64_t off, uint64_t len)
{
	int fd = b->fd_buffered >= 0 ? b->fd_buffered : b->fd;
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
		r = pwritev(fd, iov, (int)n, (off_t)off);
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
	/* EINVAL as well as EOPNOTSUPP: a block device refuses a range that
	 * is not aligned to its logical block (4 KiB sectors), and cvmm's
	 * sectors are 512 bytes. */
	if (discard) {
		/* A discard is a hint: a filesystem without holes may ignore it. */
		if (fallocate(b->fd, punch, off, len) < 0 && errno != EOPNOTSUPP && errno != EINVAL)
			return -errno;
		return 0;
	}
	/* Both modes leave zeroes behind on a raw image; try the preferred first. */
	if (fallocate(b->fd, unmap ? punch : zero, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EINVAL)
		return -errno;
	if (fallocate(b->fd, unmap ? zero : punch, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EINVAL)
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
	bool to_writer;

	/* Small buffered writes are done here, with pwritev: io_uring cannot
	 * complete them inline on ext4 (no nonblocking buffered writes) and
	 * hands each to a kernel worker thread, which serialises the writes
	 * to one file anyway; for 4 KiB the hand-off and its context switches
	 * cost more than the copy into the page cache (perf: ~3.2 against ~2.6
	 * us of back-end CPU per write). Large ones still go to the kernel
	 * worker (or the disk's writer thread): their copy then runs beside
	 * this thread instead of stalling it (1 MiB sequential writes: 2-3x
	 * the rate). */
	if (!q->uring || !q->nfree || (write && !b->direct && len <= BLK_INLINE_WRITE_MAX))
		return false;
	r = &q->reqs[q->free_reqs[q->nfree - 1]];
	r->iov = n <= BLK_REQ_INLINE_IOV ? r->inl : malloc(n * sizeof(*iov));
	if (!r->iov)
		return false;
	/* Large buffered writes of a disk with several queues: its writer. */
	to_writer = write && b->has_writer;
	sqe = to_writer ? NULL : io_uring_get_sqe(q->uring);
	if (!to_writer && !sqe) {
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
	r->sync = write && !blk_writeback(b);
	if (to_writer) {
		r->job = (struct blk_write_job){ .ring_fd = q->uring->ring_fd, .user_data = (uintptr_t)r,
						 .iov = r->iov, .niov = n, .off = off };
		blk_writer_queue(&b->writer, &r->job);
		return true;
	}
	if (write)
		io_uring_prep_writev(sqe, b->fd, r->iov, n, off);
	else
		io_uring_prep_readv(sqe, b->fd, r->iov, n, off);
	io_uring_sqe_set_data(sqe, r);
	q->unsubmitted++;
	return true;
}

/* Takes a slot for a write-through write whose data is on the image: it
 * waits for the next sync. False when no slot is free. */
static bool blk_wt_defer(struct blk_queue *q, uint16_t head, uint8_t *status)
{
	struct blk_req *r;

	if (!q->nfree)
		return false;
	r = &q->reqs[q->free_reqs[--q->nfree]];
	*r = (struct blk_req){ .head = head, .write = true, .sync = true, .status = status };
	q->io->waiting.slots[q->io->waiting.n++] = (uint16_t)(r - q->reqs);
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
		if (st == VIRTIO_BLK_S_OK && write && !blk_writeback(b)) {
			if (blk_wt_defer(q, c->head, status))
				return BLK_PENDING;
			st = blk_sync_now(b) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		}
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
			st = blk_sync_now(b) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
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
		/* Zeroes are written data too: durable first in write-through. */
		if (st == VIRTIO_BLK_S_OK && !blk_writeback(b) && blk_sync_now(b) < 0)
			st = VIRTIO_BLK_S_IOERR;
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	*status = st;
	return used;
}

/* Gives request r back to the driver with status st and frees its slot. */
static void blk_finish(struct blk_dev *b, struct blk_queue *q, struct blk_req *r, uint8_t st)
{
	*r->status = st;
	virtq_push(&b->vqs[q->index], r->head, st == VIRTIO_BLK_S_OK && !r->write ? (uint32_t)r->len + 1 : 1);
	q->free_reqs[q->nfree++] = (uint16_t)(r - q->reqs);
}

/* Completes the writes of batch w, whose sync ended with res. */
static void blk_wt_publish(struct blk_dev *b, struct blk_queue *q, struct blk_wt_batch *w, int res)
{
	uint8_t st;

	res = blk_sync_result(b, res);
	st = res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;

	if (res < 0)
		log_debug("blk: queue %u: sync for %u writes: %s", q->index, w->n, strerror(-res));
	for (unsigned i = 0; i < w->n; i++)
		blk_finish(b, q, &q->reqs[w->slots[i]], st);
	w->n = 0;
}

/* Syncs on this thread for the writes waiting (no io_uring, or it failed). */
static void blk_wt_sync_now(struct blk_dev *b, struct blk_queue *q)
{
	if (q->io->waiting.n)
		blk_wt_publish(b, q, &q->io->waiting, blk_sync_now(b));
}

/* Finishes a request io_uring completed with result res. */
static void blk_complete(struct blk_dev *b, struct blk_queue *q, struct blk_req *r, int res)
{
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
	if (r->iov != r->inl)
		free(r->iov);
	r->iov = NULL;
	if (st == VIRTIO_BLK_S_OK && r->sync)
		q->io->waiting.slots[q->io->waiting.n++] = (uint16_t)(r - q->reqs);
	else
		blk_finish(b, q, r, st);
}

/* A completion: a sync (its user data is its batch), a kick, or a request. */
static void blk_cqe(struct blk_dev *b, struct blk_queue *q, struct io_uring_cqe *cqe)
{
	struct blk_io *io = q->io;
	void *data = io_uring_cqe_get_data(cqe);
	int res = cqe->res;
	bool more = cqe->flags & IORING_CQE_F_MORE;

	io_uring_cqe_seen(q->uring, cqe);
	if (data >= (void *)io->syncs && data < (void *)(io->syncs + BLK_SYNCS_MAX)) {
		struct blk_wt_batch *w = data;

		w->in_flight = false;
		io->nsyncs--;
		blk_wt_publish(b, q, w, res);
	} else if (data == &io->kick_polled) {
		/* The kick itself is the worker's to consume, as always. */
		io->kick_polled = more;
	} else if (data == &io->kick_removing) {
		/* -EALREADY: the poll was busy posting a kick and stays armed. */
		io->kick_removing = false;
	} else if (data) {
		blk_complete(b, q, data, res);
	}
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
	return BLK_REQ_SLOTS - q->nfree;
}

/* Starts a sync for the writes waiting, unless BLK_SYNCS_MAX are in
 * flight: the first of them to complete starts the next. */
static int blk_wt_start_sync(struct blk_dev *b, struct blk_queue *q)
{
	struct blk_io *wt = q->io;
	struct io_uring_sqe *sqe;
	struct blk_wt_batch *w = wt->syncs;

	if (!wt->waiting.n || wt->nsyncs == BLK_SYNCS_MAX)
		return 0;
	sqe = io_uring_get_sqe(q->uring);
	if (!sqe) {
		blk_wt_sync_now(b, q);
		return 0;
	}
	while (w->in_flight)
		w++;
	if (b->sync_ops)
		b->sync_ops->prep(b, b->sync_arg, sqe);
	else
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, w);
	q->unsubmitted++;
	memcpy(w->slots, wt->waiting.slots, wt->waiting.n * sizeof(w->slots[0]));
	w->n = wt->waiting.n;
	w->in_flight = true;
	wt->waiting.n = 0;
	wt->nsyncs++;
	return blk_flush_submissions(q);
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

/* Lets a kick on kick_fd end the wait for I/O. */
static int blk_watch_kicks(struct blk_queue *q, int kick_fd)
{
	struct io_uring_sqe *sqe;

	if (kick_fd < 0 || q->io->kick_polled)
		return 0;
	sqe = io_uring_get_sqe(q->uring);
	if (!sqe)
		return 0;
	io_uring_prep_poll_multishot(sqe, kick_fd, POLLIN);
	io_uring_sqe_set_data(sqe, &q->io->kick_polled);
	q->unsubmitted++;
	q->io->kick_polled = true;
	return blk_flush_submissions(q);
}

void blk_req_unwatch_kicks(struct blk_dev *b, struct blk_queue *q)
{
	struct blk_io *io = q->io;

	if (!q->uring)
		return;
	/* The poll's last completion must be in before the kick fd can
	 * change: remove it (again, if it was busy) until it ends. */
	while (io->kick_polled) {
		if (!io->kick_removing) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(q->uring);

			if (!sqe)
				return;
			io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&io->kick_polled);
			io_uring_sqe_set_data(sqe, &io->kick_removing);
			q->unsubmitted++;
			io->kick_removing = true;
			if (blk_flush_submissions(q) < 0)
				return;
		}
		if (blk_wait_one(b, q) < 0)
			return;
	}
}

int blk_req_wait(struct blk_dev *b, struct blk_queue *q, int kick_fd)
{
	int err;

	/* Synchronous: only write-through writes wait, for one sync. */
	if (!q->uring) {
		blk_wt_sync_now(b, q);
		return 0;
	}
	err = blk_flush_submissions(q);
	/* Waiting for requests the kernel never took would hang the queue. */
	if (err)
		return err;
	if (blk_reap(b, q))
		return blk_wt_start_sync(b, q);
	/* The writes waiting may be all there is: their sync first. */
	err = blk_wt_start_sync(b, q);
	if (!err)
		err = blk_watch_kicks(q, kick_fd);
	if (!err)
		err = blk_wait_one(b, q);
	if (err)
		return err;
	blk_reap(b, q);
	return blk_wt_start_sync(b, q);
}

void blk_req_complete_all(struct blk_dev *b, struct blk_queue *q)
{
	while (blk_req_in_flight(q)) {
		if (blk_req_wait(b, q, -1) < 0) {
			/* io_uring failed: keep what it completed; the writes
			 * waiting for a sync get one here. */
			blk_reap(b, q);
			blk_wt_sync_now(b, q);
			return;
		}
	}
}

int blk_req_queue_init(struct blk_queue *q, bool use_uring)
{
	int err;

	q->reqs = calloc(BLK_REQ_SLOTS, sizeof(*q->reqs));
	q->free_reqs = calloc(BLK_REQ_SLOTS, sizeof(*q->free_reqs));
	q->io = calloc(1, sizeof(*q->io));
	if (!q->reqs || !q->free_reqs || !q->io)
		return -ENOMEM;
	for (unsigned i = 0; i < BLK_REQ_SLOTS; i++)
		q->free_reqs[i] = (uint16_t)(BLK_REQ_SLOTS - 1 - i);
	q->nfree = BLK_REQ_SLOTS;
	if (!use_uring)
		return 0;
	q->uring = calloc(1, sizeof(*q->uring));
	err = q->uring ? io_uring_queue_init(BLK_REQ_SLOTS, q->uring, 0) : -ENOMEM;
	if (err) {
		log_info("blk: queue %u: io_uring unavailable (%s); using preadv/pwritev",
			 q->index, strerror(-err));
		free(q->uring);
		q->uring = NULL;
	}
	return 0;
}

void blk_req_queue_destroy(struct blk_queue *q)
{
	if (q->uring) {
		io_uring_queue_exit(q->uring);
		free(q->uring);
		q->uring = NULL;
	}
	free(q->reqs);
	free(q->free_reqs);
	free(q->io);
	q->reqs = NULL;
	q->free_reqs = NULL;
	q->io = NULL;
}
