#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/confine.h"
#include "cvmm/log.h"
#include "cvmm/worker.h"

#define WORKER_MAX_EVENTS 16

int worker_init(struct worker *w, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		return -errno;
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stop_fd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stop_fd, &ev) < 0) {
		int err = -errno;

		if (w->stop_fd >= 0)
			close(w->stop_fd);
		close(w->epfd);
		return err;
	}
	return 0;
}

void worker_destroy(struct worker *w)
{
	worker_stop(w);
	close(w->stop_fd);
	close(w->epfd);
}

int worker_watch(struct worker *w, int fd, uint32_t events, struct worker_watch *watch)
{
	struct epoll_event ev = { .events = events, .data.ptr = watch };

	watch->fd = fd;
	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int worker_unwatch(struct worker *w, int fd)
{
	return epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[WORKER_MAX_EVENTS];

	pthread_setname_np(pthread_self(), w->name);
	/* A worker serves hostile input: it never runs unconfined. */
	if (confine_thread(CONFINE_ROLE_WORKER))
		_exit(1);
	for (;;) {
		int n = epoll_wait(w->epfd, evs, WORKER_MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: epoll_wait: %s", w->name, strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct worker_watch *watch = evs[i].data.ptr;

			if (!watch)
				return NULL; /* stop_fd */
			if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
				log_warn_ratelimited("%s: fd %d reported hang-up or error; no longer watched",
						     w->name, watch->fd);
				epoll_ctl(w->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
			}
			watch->fn(watch->arg, evs[i].events);
		}
	}
}

/* A fresh decision state: a new thread runs with its creator's policy
 * (normal), and its first probe may come after one window. */
static void worker_adapt_reset(struct worker *w, bool enabled)
{
	w->adapt = (struct worker_adapt){ .enabled = enabled, .backoff = 1 };
}

void worker_set_adaptive(struct worker *w)
{
	worker_adapt_reset(w, true);
}

static void worker_set_batching(struct worker *w, bool on)
{
	struct sched_param none = { 0 };

	if (sched_setscheduler(0, on ? SCHED_BATCH : SCHED_OTHER, &none) < 0) {
		log_warn("%s: cannot change its scheduling policy: %s; it stays as it is",
			 w->name, strerror(errno));
		w->adapt.enabled = false;
		return;
	}
	w->adapt.batching = on;
}

void worker_note_pass(struct worker *w, unsigned n)
{
	struct worker_adapt *a = &w->adapt;
	bool several;

	if (!a->enabled)
		return;
	a->items += n;
	if (++a->passes < WORKER_ADAPT_WINDOW)
		return;
	/* 1.5 items a pass or more: the driver queues while we run. */
	several = 2 * a->items >= 3 * a->passes;
	a->passes = a->items = 0;
	if (a->batching) {
		if (several) {
			a->backoff = 1;
			return;
		}
		worker_set_batching(w, false);
		a->wait = a->backoff;
		if (a->backoff < WORKER_ADAPT_BACKOFF_MAX)
			a->backoff *= 2;
	} else if (!several) {
		/* Passes that find several items batch already: no probe. */
		if (a->wait)
			a->wait--;
		else
			worker_set_batching(w, true);
	}
}

int worker_start(struct worker *w)
{
	uint64_t drain;
	int err;

	if (w->running)
		return 0;
	/* A stop left over from the last run must not end this one at once. */
	if (read(w->stop_fd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
		return -errno;
	worker_adapt_reset(w, w->adapt.enabled);
	err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err)
		return -err;
	w->running = true;
	return 0;
}

void worker_stop(struct worker *w)
{
	uint64_t one = 1;

	if (!w->running)
		return;
	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		log_err("%s: cannot signal stop: %s", w->name, strerror(errno));
	pthread_join(w->thread, NULL);
	w->running = false;
}
