#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/confine.h"
#include "cvmm/log.h"
#include "blk_writer.h"

/* Writes in the writer's io_uring at once: they run one at a time anyway
 * (io_uring keeps buffered writes to one file in a row), so a few keep the
 * next one ready without holding many CQEs. */
#define BLK_WRITER_DEPTH 32
/* Room for every write and the result message of each. */
#define BLK_WRITER_RING (2 * BLK_WRITER_DEPTH)

/* User data of the writer's own CQEs that are not writes. */
static char blk_writer_wake_tag, blk_writer_post_tag;

/* An SQE, submitting what is queued first when the ring is full. */
static struct io_uring_sqe *blk_writer_sqe(struct blk_writer *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	while (!sqe) {
		int err = io_uring_submit(&w->ring);

		if (err < 0 && err != -EINTR)
			return NULL;
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* Sends a write's result to the ring of the queue that asked for it. */
static void blk_writer_post(struct blk_writer *w, const struct blk_write_job *job, int res)
{
	struct io_uring_sqe *sqe = blk_writer_sqe(w);

	if (!sqe) {
		log_err("blk: writer: no room to hand a write's result to its queue: that queue stalls");
		return;
	}
	io_uring_prep_msg_ring(sqe, job->ring_fd, (unsigned)res, job->user_data, 0);
	io_uring_sqe_set_data(sqe, &blk_writer_post_tag);
	w->posting++;
}

/* Moves queued jobs into the ring, up to BLK_WRITER_DEPTH writes. */
static void blk_writer_take(struct blk_writer *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->head && w->writing < BLK_WRITER_DEPTH) {
		struct blk_write_job *job = w->head;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

		if (!sqe)
			break;
		w->head = job->next;
		if (!w->head)
			w->tail = NULL;
		io_uring_prep_writev(sqe, w->fd, job->iov, job->niov, job->off);
		io_uring_sqe_set_data(sqe, job);
		w->writing++;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Arms (again) the wait for blk_writer_queue's eventfd signal. */
static void blk_writer_watch(struct blk_writer *w)
{
	struct io_uring_sqe *sqe = blk_writer_sqe(w);

	if (!sqe)
		return;
	io_uring_prep_poll_multishot(sqe, w->wake_fd, POLLIN);
	io_uring_sqe_set_data(sqe, &blk_writer_wake_tag);
	w->watching = true;
}

static void blk_writer_cqe(struct blk_writer *w, struct io_uring_cqe *cqe)
{
	void *data = io_uring_cqe_get_data(cqe);
	uint64_t cnt;

	if (data == &blk_writer_wake_tag) {
		if (read(w->wake_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			log_err("blk: writer: reading its wake-up: %s", strerror(errno));
		w->watching = cqe->flags & IORING_CQE_F_MORE;
	} else if (data == &blk_writer_post_tag) {
		w->posting--;
		if (cqe->res < 0)
			log_err("blk: writer: cannot hand a write's result to its queue (%s): that queue stalls",
				strerror(-cqe->res));
	} else {
		/* A short count is the asker's to finish, as from its own ring. */
		w->writing--;
		blk_writer_post(w, data, cqe->res);
	}
}

static bool blk_writer_done(struct blk_writer *w)
{
	bool done;

	pthread_mutex_lock(&w->lock);
	done = w->stop && !w->head && !w->writing && !w->posting;
	pthread_mutex_unlock(&w->lock);
	return done;
}

static void *blk_writer_main(void *arg)
{
	struct blk_writer *w = arg;

	pthread_setname_np(pthread_self(), "blk-writer");
	/* It writes what the guest asked: never unconfined. */
	if (confine_thread(CONFINE_ROLE_WORKER))
		_exit(1);
	while (!blk_writer_done(w)) {
		struct io_uring_cqe *cqe;
		int err;

		if (!w->watching)
			blk_writer_watch(w);
		blk_writer_take(w);
		err = io_uring_submit_and_wait(&w->ring, 1);
		if (err < 0 && err != -EINTR) {
			log_err("blk: writer: io_uring: %s; large writes stall", strerror(-err));
			return NULL;
		}
		while (io_uring_peek_cqe(&w->ring, &cqe) == 0) {
			blk_writer_cqe(w, cqe);
			io_uring_cqe_seen(&w->ring, cqe);
		}
	}
	return NULL;
}

int blk_writer_init(struct blk_writer *w, int fd)
{
	struct io_uring_probe *probe;
	bool msg_ring;
	int err;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0)
		return -errno;
	err = io_uring_queue_init(BLK_WRITER_RING, &w->ring, 0);
	if (err) {
		close(w->wake_fd);
		return err;
	}
	probe = io_uring_get_probe_ring(&w->ring);
	msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
	if (probe)
		io_uring_free_probe(probe);
	err = msg_ring ? 0 : -EOPNOTSUPP;
	if (!err) {
		pthread_mutex_init(&w->lock, NULL);
		err = -pthread_create(&w->thread, NULL, blk_writer_main, w);
		if (err)
			pthread_mutex_destroy(&w->lock);
	}
	if (err) {
		io_uring_queue_exit(&w->ring);
		close(w->wake_fd);
	}
	return err;
}

/* Wakes the writer thread; a failed signal leaves one already pending. */
static void blk_writer_wake(struct blk_writer *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("blk: writer: cannot wake it: %s", strerror(errno));
}

void blk_writer_destroy(struct blk_writer *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_mutex_unlock(&w->lock);
	blk_writer_wake(w);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	io_uring_queue_exit(&w->ring);
	close(w->wake_fd);
}

void blk_writer_queue(struct blk_writer *w, struct blk_write_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = job;
	else
		w->head = job;
	w->tail = job;
	pthread_mutex_unlock(&w->lock);
	blk_writer_wake(w);
}
