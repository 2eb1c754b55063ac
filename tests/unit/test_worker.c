/* The per-device epoll loop. */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/worker.h"
#include "check_run.h"

static void count_calls(void *arg, uint32_t events)
{
	(void)events;
	atomic_fetch_add((atomic_uint *)arg, 1);
}

/* A socket whose peer closed is readable (EOF) and hung up for ever: a
 * level-triggered loop that keeps watching it spins a core. */
START_TEST(hung_up_fd_is_unwatched)
{
	struct worker w;
	struct worker_watch watch;
	atomic_uint calls = 0;
	unsigned n;
	int sv[2];

	log_set_level(LOG_ERR);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(worker_init(&w, "t-worker"), 0);
	watch = (struct worker_watch){ .fn = count_calls, .arg = &calls };
	ck_assert_int_eq(worker_watch(&w, sv[0], EPOLLIN, &watch), 0);
	ck_assert_int_eq(worker_start(&w), 0);
	close(sv[1]);
	for (int i = 0; i < 500 && !atomic_load(&calls); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	/* Seen once; a loop still watching it would call again at once. */
	nanosleep(&(struct timespec){ .tv_nsec = 300 * 1000000 }, NULL);
	worker_stop(&w);
	/* The handler saw the hang-up once; the fd is no longer in the set. */
	n = atomic_load(&calls);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(worker_unwatch(&w, sv[0]), -ENOENT);
	worker_destroy(&w);
	close(sv[0]);
}
END_TEST

/* Runs one decision window of passes that each found n items, on this
 * thread (standing in for the worker's), and returns its policy after. */
static int adapt_window(struct worker *w, unsigned n)
{
	for (unsigned i = 0; i < WORKER_ADAPT_WINDOW; i++)
		worker_note_pass(w, n);
	return sched_getscheduler(0);
}

START_TEST(adaptive_policy_follows_passes)
{
	struct worker w;

	ck_assert_int_eq(worker_init(&w, "t-adapt"), 0);
	/* Not adaptive: passes change nothing. */
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	worker_set_adaptive(&w);
	/* One item a pass: probe batching; the probe finds no more, so back,
	 * and the next probe waits a window longer each time. */
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_BATCH);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_BATCH);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_BATCH);
	/* Several a pass while batching: it stays, for as long as they come. */
	ck_assert_int_eq(adapt_window(&w, 4), SCHED_BATCH);
	ck_assert_int_eq(adapt_window(&w, 2), SCHED_BATCH);
	/* Back to one: preempting again, and the wait starts over. */
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_BATCH);
	ck_assert_int_eq(adapt_window(&w, 1), SCHED_OTHER);
	/* Passes that batch without it never probe. */
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(adapt_window(&w, 3), SCHED_OTHER);
	worker_destroy(&w);
}
END_TEST

CHECK_MAIN("worker",
	   hung_up_fd_is_unwatched,
	   adaptive_policy_follows_passes)
