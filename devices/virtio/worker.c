#include <errno.h>
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

int worker_start(struct worker *w)
{
	uint64_t drain;
	int err;

	if (w->running)
		return 0;
	/* A stop left over from the last run must not end this one at once. */
	if (read(w->stop_fd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
		return -errno;
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
