/*
 * An epoll loop on its own thread: what each device (or queue) runs.
 * Handlers are registered per fd; a stop eventfd ends the loop.
 */
#ifndef CVMM_WORKER_H
#define CVMM_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct worker_watch {
	void (*fn)(void *arg, uint32_t events);
	void *arg;
	int fd; /* set by worker_watch */
};

struct worker {
	pthread_t thread;
	int epfd;
	int stop_fd;
	bool running;
	char name[16];
};

int worker_init(struct worker *w, const char *name);
void worker_destroy(struct worker *w);
/* Calls watch->fn(watch->arg, events) from the worker thread when fd has
 * events (EPOLLIN, ...). *watch must stay valid until unwatched. Can be
 * called while the worker runs. 0 or -errno. An fd that reports hang-up or
 * error (EPOLLHUP/EPOLLERR) is unwatched by the worker before fn sees those
 * events for the last time: level-triggered, it would fire for ever. */
int worker_watch(struct worker *w, int fd, uint32_t events, struct worker_watch *watch);
int worker_unwatch(struct worker *w, int fd);
int worker_start(struct worker *w);
/* Ends the loop and joins the thread (a handler in progress finishes first). */
void worker_stop(struct worker *w);

#endif
