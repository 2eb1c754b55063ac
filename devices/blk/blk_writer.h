/*
 * A disk's writer thread: it submits the large buffered writes of all the
 * disk's queues to one io_uring of its own, which keeps writes to one file
 * in a row, and posts each result to the io_uring of the queue that asked
 * (IORING_OP_MSG_RING), whose worker reaps it like any of its own
 * completions.
 *
 * Why: a queue's io_uring hands a buffered write it cannot do inline to a
 * kernel worker of the submitting thread, and keeps the writes to one file
 * in a row only among its own. With a queue (and a thread) per vCPU,
 * several such kernel workers write the image at once and take turns on
 * its inode lock: 1 MiB sequential writes lost about a tenth of their rate
 * on two queues against one (docs/performance.md). One io_uring per disk
 * for them keeps them in a row, as a single-threaded VMM's one io_uring
 * does. (Doing them with pwritev on this thread instead was slower still.)
 */
#ifndef CVMM_BLK_WRITER_H
#define CVMM_BLK_WRITER_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_write_job {
	struct blk_write_job *next;
	int ring_fd;               /* the asking queue's io_uring */
	uint64_t user_data;        /* of the result's CQE there */
	const struct iovec *iov;   /* the asker's, kept until the result */
	unsigned niov;
	uint64_t off;
};

struct blk_writer {
	int fd;                    /* the image (not owned) */
	struct io_uring ring;      /* the writes, and the results it sends */
	int wake_fd;               /* eventfd: jobs queued, or stop */
	pthread_t thread;
	pthread_mutex_t lock;      /* head, tail, stop */
	struct blk_write_job *head, *tail;
	bool stop;
	/* The writer thread's own: writes and result messages in the ring,
	 * and whether its wait for wake_fd is armed there. */
	unsigned writing, posting;
	bool watching;
};

/* Starts the writer for image fd. 0, -EOPNOTSUPP where io_uring cannot
 * post to another ring (the queues keep their own io_uring path), or
 * -errno. */
int blk_writer_init(struct blk_writer *w, int fd);
/* Does the jobs still queued, then ends the thread. Call it while the rings
 * of the jobs' askers are still open. */
void blk_writer_destroy(struct blk_writer *w);
/* Queues a write; its result (bytes written or -errno) comes back as a CQE
 * on job->ring_fd with job->user_data. The job is the caller's until then. */
void blk_writer_queue(struct blk_writer *w, struct blk_write_job *job);

#endif
