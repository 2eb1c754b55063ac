/*
 * virtio-blk write-through: a write's completion may reach the used ring
 * only once a sync that started after its data reached the image has
 * completed. The device model runs on its own worker thread, the test is
 * the driver; the image sync is instrumented (blk_sync_ops): an
 * asynchronous sync is an io_uring read of an eventfd, so it completes
 * exactly when the test releases it. When a sync is prepared, the test
 * notes which writes' data is on the image (those the sync covers); before
 * releasing any sync it checks that every write in the used ring is covered
 * by a sync already released. Writes are refilled as they complete, at
 * several queue depths, with syncs released at once (small batches) or held
 * until every write in flight is on the image (large batches, released
 * newest first).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/blk/virtio_blk_dev.h"
#include "check_run.h"

#define T_MEM_SIZE (1u << 20)
#define T_QSIZE 128
#define T_DESC 0x0
#define T_AVAIL 0x1000
#define T_USED 0x2000
#define T_STATUS 0x3000
#define T_REQ 0x10000         /* per request: 16-byte header, 4 KiB data */
#define T_REQ_STRIDE 0x1100
#define T_BLOCK 4096
#define T_MAX_DEPTH 64        /* two descriptors per request */
#define T_IMG_BYTES (T_MAX_DEPTH * T_BLOCK)
#define T_MAX_SYNCS 4096
#define T_WAIT_NS (20LL * 1000000000)

enum t_release { T_PROMPT, T_HOLD };

struct t_wt {
	uint8_t *mem_buf;
	struct gmem mem;
	struct blk_dev blk;
	char path[64];
	int img_fd;                    /* the test's own view of the image */
	uint16_t avail_idx, used_seen;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned depth;
	unsigned gen[T_MAX_DEPTH];     /* generation of the write in slot i */
	bool durable[T_MAX_DEPTH];     /* that write is covered by a released sync */
	/* Syncs prepared by the engine, in order. */
	unsigned nsyncs, nreleased;
	bool released[T_MAX_SYNCS];
	int efd[T_MAX_SYNCS];
	uint64_t efd_buf[T_MAX_SYNCS];
	uint64_t covered[T_MAX_SYNCS]; /* bit i: slot i's current write on the image */
	unsigned sync_now_calls;
	unsigned fail_syncs;           /* the next this many syncs fail with EIO */
	bool writeback;                /* completions need no sync */
	unsigned early;                /* writes published before a covering sync */
};

static struct t_wt *t;

static void *t_ptr(uint64_t gpa)
{
	return t->mem_buf + gpa;
}

/* The 4 KiB a write of slot i, generation g carries. */
static void t_pattern(uint8_t *p, unsigned i, unsigned g)
{
	for (unsigned k = 0; k < T_BLOCK; k++)
		p[k] = (uint8_t)(i * 31 + g * 7 + k + (k >> 8));
	memcpy(p, &g, sizeof(g));
	memcpy(p + sizeof(g), &i, sizeof(i));
}

/* Which slots' current writes are on the image; called with the lock held. */
static uint64_t t_on_image(void)
{
	uint8_t want[T_BLOCK], got[T_BLOCK];
	uint64_t mask = 0;

	for (unsigned i = 0; i < t->depth; i++) {
		t_pattern(want, i, t->gen[i]);
		if (pread(t->img_fd, got, T_BLOCK, (off_t)i * T_BLOCK) == T_BLOCK &&
		    !memcmp(want, got, T_BLOCK))
			mask |= 1ull << i;
	}
	return mask;
}

/* Counts writes in the used ring not yet covered by a released sync, and
 * consumes the used ring; called with the lock held. Returns the number of
 * writes completed. */
static unsigned t_check_used(void)
{
	struct virtq_used *used = t_ptr(T_USED);
	uint16_t idx = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
	unsigned n = 0;

	for (; t->used_seen != idx; t->used_seen++, n++) {
		unsigned i = used->ring[t->used_seen % T_QSIZE].id / 2;

		ck_assert_uint_lt(i, t->depth);
		ck_assert_uint_eq(*(uint8_t *)t_ptr(T_STATUS + i), VIRTIO_BLK_S_OK);
		if (!t->writeback && !t->durable[i])
			t->early++;
	}
	return n;
}

/* The synchronous path's sync: the publications so far are checked, then
 * everything on the image becomes durable. */
static int t_sync_now(struct blk_dev *b, void *arg)
{
	uint64_t mask;

	(void)b;
	(void)arg;
	pthread_mutex_lock(&t->lock);
	t->sync_now_calls++;
	if (t->fail_syncs) {
		t->fail_syncs--;
		pthread_mutex_unlock(&t->lock);
		return -EIO;
	}
	mask = t_on_image();
	for (unsigned i = 0; i < t->depth; i++)
		if (mask >> i & 1)
			t->durable[i] = true;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* The asynchronous sync: a read of an eventfd the test writes to release it. */
static void t_sync_prep(struct blk_dev *b, void *arg, struct io_uring_sqe *sqe)
{
	unsigned s;

	(void)b;
	(void)arg;
	pthread_mutex_lock(&t->lock);
	s = t->nsyncs;
	ck_assert_uint_lt(s, T_MAX_SYNCS);
	t->efd[s] = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(t->efd[s], 0);
	t->covered[s] = t_on_image();
	io_uring_prep_read(sqe, t->efd[s], &t->efd_buf[s], sizeof(t->efd_buf[s]), 0);
	t->nsyncs++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static const struct blk_sync_ops t_sync_ops = { .sync = t_sync_now, .prep = t_sync_prep };

/* Releases sync s: what it covers becomes durable; called with the lock held. */
static void t_release(unsigned s)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < t->depth; i++)
		if (t->covered[s] >> i & 1)
			t->durable[i] = true;
	t->released[s] = true;
	t->nreleased++;
	ck_assert_int_eq(write(t->efd[s], &one, sizeof(one)), sizeof(one));
}

/* Puts write generation gen of slot i on the avail ring (no kick). */
static void t_queue_write(unsigned i)
{
	struct virtq_desc *desc = t_ptr(T_DESC);
	struct virtq_avail *avail = t_ptr(T_AVAIL);
	uint64_t req = T_REQ + (uint64_t)i * T_REQ_STRIDE;
	struct virtio_blk_outhdr *h = t_ptr(req);

	h->type = VIRTIO_BLK_T_OUT;
	h->ioprio = 0;
	h->sector = (uint64_t)i * (T_BLOCK / 512);
	t_pattern(t_ptr(req + sizeof(*h)), i, t->gen[i]);
	*(uint8_t *)t_ptr(T_STATUS + i) = 0xff;
	/* Header and data in one buffer: no framing is assumed. */
	desc[2 * i] = (struct virtq_desc){ req, sizeof(*h) + T_BLOCK, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * i + 1) };
	desc[2 * i + 1] = (struct virtq_desc){ T_STATUS + i, 1, VIRTQ_DESC_F_WRITE, 0 };
	avail->ring[t->avail_idx++ % T_QSIZE] = (uint16_t)(2 * i);
}

static void t_kick(void)
{
	struct virtq_avail *avail = t_ptr(T_AVAIL);
	uint64_t one = 1;

	__atomic_store_n(&avail->idx, t->avail_idx, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(t->blk.vqs[0].kick_fd, &one, sizeof(one)), sizeof(one));
}

static void t_deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += T_WAIT_NS / 1000000000;
}

/* Waits (lock held) a little for the engine to move; false past the deadline. */
static bool t_wait(const struct timespec *deadline)
{
	struct timespec now, step;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec > deadline->tv_sec ||
	    (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec))
		return false;
	step = now;
	step.tv_nsec += 1000000;
	if (step.tv_nsec >= 1000000000) {
		step.tv_sec++;
		step.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&t->cond, &t->lock, &step);
	return true;
}

/* Opens a fresh image and model with the instrumented sync, and starts
 * queue 0 on its worker with features f (and writeback wb written to
 * config space when CONFIG_WCE is among them). */
static void t_start(uint64_t f, bool no_uring, bool write_wce_off, bool direct)
{
	struct blk_dev_config cfg = { .path = t->path, .queue_size = T_QSIZE, .no_uring = no_uring,
				      .direct = direct };
	struct virtq *vq = &t->blk.vqs[0];
	int fd;

	strcpy(t->path, "/var/tmp/cvmm-blk-wt-XXXXXX");
	fd = mkstemp(t->path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, T_IMG_BYTES), 0);
	close(fd);
	ck_assert_int_eq(blk_dev_init(&t->blk, &cfg), 0);
	t->img_fd = open(t->path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(t->img_fd, 0);
	t->blk.vdev.mem = &t->mem;
	t->blk.sync_ops = &t_sync_ops;
	ck_assert_int_eq(vdev_set_features(&t->blk.vdev, f & t->blk.vdev.host_features), 0);
	if (write_wce_off) {
		uint8_t wb = 0;

		ck_assert_int_eq(t->blk.vdev.ops->write_config(&t->blk.vdev,
				 offsetof(struct virtio_blk_config, writeback), &wb, 1), 0);
	}
	vq = &t->blk.vqs[0];
	ck_assert_int_eq(virtq_setup(vq, &t->mem, T_QSIZE, T_DESC, T_AVAIL, T_USED), 0);
	vq->kick_fd = eventfd(0, EFD_CLOEXEC);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(vq->kick_fd, 0);
	ck_assert_int_ge(vq->call_fd, 0);
	ck_assert_int_eq(vdev_queue_start(&t->blk.vdev, 0), 0);
}

static void t_stop(void)
{
	struct virtq *vq = &t->blk.vqs[0];
	int kick = vq->kick_fd, call = vq->call_fd;

	vdev_queue_stop(&t->blk.vdev, 0);
	blk_dev_destroy(&t->blk);
	close(kick);
	close(call);
	close(t->img_fd);
	unlink(t->path);
	for (unsigned s = 0; s < t->nsyncs; s++)
		close(t->efd[s]);
}

static void t_setup(void)
{
	struct gmem_region r = { .gpa = 0, .size = T_MEM_SIZE, .fd = -1 };

	t = calloc(1, sizeof(*t));
	t->mem_buf = aligned_alloc(4096, T_MEM_SIZE);
	memset(t->mem_buf, 0, T_MEM_SIZE);
	r.hva = t->mem_buf;
	gmem_init(&t->mem);
	ck_assert_int_eq(gmem_add(&t->mem, &r), 0);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
}

static void t_teardown(void)
{
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	gmem_destroy(&t->mem);
	free(t->mem_buf);
	free(t);
}

/* True when every write in flight is on the image; lock held. */
static bool t_all_on_image(const bool *in_flight)
{
	uint64_t mask = t_on_image();

	for (unsigned i = 0; i < t->depth; i++)
		if (in_flight[i] && !(mask >> i & 1))
			return false;
	return true;
}

/* Drives total writes through the queue at the given depth, refilling each
 * slot as its write completes, releasing syncs per the policy. Returns the
 * number of asynchronous syncs used. */
static unsigned t_drive(unsigned depth, unsigned total, enum t_release policy)
{
	bool in_flight[T_MAX_DEPTH] = { 0 };
	struct virtq_used *used = t_ptr(T_USED);
	unsigned queued = 0, done = 0;
	struct timespec deadline;

	pthread_mutex_lock(&t->lock);
	t->depth = depth;
	for (unsigned i = 0; i < depth && queued < total; i++, queued++) {
		t->gen[i] = 1;
		in_flight[i] = true;
		t_queue_write(i);
	}
	t_kick();
	t_deadline(&deadline);
	while (done < total) {
		uint16_t first = t->used_seen;
		unsigned n = t_check_used();
		int pick = -1;

		ck_assert_uint_eq(t->early, 0);
		done += n;
		/* Refill: each completed slot gets its next generation. */
		for (unsigned k = 0; k < n; k++) {
			unsigned i = used->ring[(uint16_t)(first + k) % T_QSIZE].id / 2;

			in_flight[i] = false;
			if (queued < total) {
				t->gen[i]++;
				t->durable[i] = false;
				in_flight[i] = true;
				t_queue_write(i);
				queued++;
			}
		}
		if (n)
			t_kick();
		/* Release a sync: the oldest at once, or (holding) the newest
		 * once every write in flight has reached the image. */
		for (unsigned s = 0; s < t->nsyncs; s++)
			if (!t->released[s] && (pick < 0 || policy == T_HOLD))
				pick = (int)s;
		if (pick >= 0 && (policy == T_PROMPT || t_all_on_image(in_flight))) {
			t_release((unsigned)pick);
			t_deadline(&deadline);
			continue;
		}
		if (n) {
			t_deadline(&deadline);
			continue;
		}
		ck_assert_msg(t_wait(&deadline), "depth %u: stalled after %u of %u writes (%u syncs)",
			      depth, done, total, t->nsyncs);
	}
	ck_assert_uint_eq(t->early, 0);
	pthread_mutex_unlock(&t->lock);
	return t->nsyncs;
}

static const unsigned t_depths[] = { 1, 2, 7, 32, T_MAX_DEPTH };

/* The ordering, at every depth, with small and large batches; and the
 * batching itself: with syncs held, writes keep going to the image (they
 * are all there while the first sync is held) and share syncs. */
START_TEST(writethrough_no_flush)
{
	const enum t_release policy = _i % 2 ? T_HOLD : T_PROMPT;
	const unsigned depth = t_depths[_i / 2];
	unsigned total = 4 * depth < 64 ? 64 : 4 * depth, syncs;

	t_start(VIRTIO_BIT(VIRTIO_F_VERSION_1), false, false, false);
	syncs = t_drive(depth, total, policy);
	ck_assert_uint_ge(syncs, 1);
	if (policy == T_HOLD && depth >= 7)
		ck_assert_msg(syncs <= total / 2, "depth %u: %u syncs for %u writes", depth, syncs, total);
	ck_assert_uint_eq(t->sync_now_calls, 0);
	t_stop();
}
END_TEST

/* With O_DIRECT, writes go through io_uring (completed there, or redone
 * when O_DIRECT refuses the buffer): the same ordering. */
START_TEST(writethrough_direct)
{
	const unsigned depth = t_depths[_i];

	t_start(VIRTIO_BIT(VIRTIO_F_VERSION_1), false, false, true);
	ck_assert_uint_ge(t_drive(depth, 4 * depth < 64 ? 64 : 4 * depth, T_HOLD), 1);
	t_stop();
}
END_TEST

/* The driver turns the cache off through CONFIG_WCE (FLUSH negotiated). */
START_TEST(writethrough_wce_off)
{
	t_start(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
		VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE), false, true, false);
	ck_assert_uint_ge(t_drive(32, 128, T_HOLD), 1);
	t_stop();
}
END_TEST

/* Without io_uring (preadv/pwritev): one synchronous sync per batch of
 * writes, never a completion before it. */
START_TEST(writethrough_sync_path)
{
	const unsigned depth = t_depths[_i];
	unsigned total = 4 * depth < 64 ? 64 : 4 * depth;

	t_start(VIRTIO_BIT(VIRTIO_F_VERSION_1), true, false, false);
	ck_assert_uint_eq(t_drive(depth, total, T_PROMPT), 0);
	ck_assert_uint_ge(t->sync_now_calls, 1);
	ck_assert_uint_le(t->sync_now_calls, total);
	t_stop();
}
END_TEST

/* One sync fails: its write fails, and so does every later one, although
 * the later syncs succeed: Linux reports a lost writeback to one sync only,
 * not necessarily the sync of the write whose data it was. */
START_TEST(failed_sync_fails_every_later_write)
{
	struct virtq_used *used = t_ptr(T_USED);
	struct timespec deadline;

	t_start(VIRTIO_BIT(VIRTIO_F_VERSION_1), true, false, false);
	t->depth = 1;
	t->fail_syncs = 1;
	for (uint16_t n = 1; n <= 3; n++) {
		t->gen[0]++;
		t_queue_write(0);
		t_kick();
		t_deadline(&deadline);
		pthread_mutex_lock(&t->lock);
		while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != n)
			ck_assert_msg(t_wait(&deadline), "write %u not completed", n);
		pthread_mutex_unlock(&t->lock);
		ck_assert_uint_eq(*(uint8_t *)t_ptr(T_STATUS), VIRTIO_BLK_S_IOERR);
	}
	ck_assert_uint_eq(t->sync_now_calls, 3);
	t_stop();
}
END_TEST

/* Writeback (FLUSH negotiated, cache on): completions need no sync. */
START_TEST(writeback_needs_no_sync)
{
	t_start(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH), false, false, false);
	t->writeback = true;
	t_drive(32, 128, T_PROMPT);
	ck_assert_uint_eq(t->nsyncs, 0);
	ck_assert_uint_eq(t->sync_now_calls, 0);
	t_stop();
}
END_TEST

static Suite *wt_suite(void)
{
	Suite *s = suite_create("blk_writethrough");
	TCase *tc = tcase_create("ordering");
	unsigned nd = sizeof(t_depths) / sizeof(t_depths[0]);

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_loop_test(tc, writethrough_no_flush, 0, (int)(2 * nd));
	tcase_add_loop_test(tc, writethrough_direct, 0, (int)nd);
	tcase_add_test(tc, writethrough_wce_off);
	tcase_add_loop_test(tc, writethrough_sync_path, 0, (int)nd);
	tcase_add_test(tc, writeback_needs_no_sync);
	tcase_add_test(tc, failed_sync_fails_every_later_write);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(wt_suite());
}
