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

/*
 * Wake-up policy, for a worker that shares a CPU with the vCPUs kicking it
 * (docs/performance.md, "Why depth 32 lags on PCI"). A woken thread that
 * preempts the vCPU serves one request per kick and interrupts the guest
 * for each; one that does not preempt (SCHED_BATCH) lets the vCPU queue
 * more first, which wins at depth but costs a single request a halt. An
 * adaptive worker chooses by what its passes find: it probes the batching
 * policy when passes find one request each, keeps it while they find
 * several, and probes less often each time a probe finds no more.
 */
/* Passes per decision, and the most windows between probes. */
#define WORKER_ADAPT_WINDOW 32
#define WORKER_ADAPT_BACKOFF_MAX 64

struct worker_adapt {
	bool enabled;
	bool batching;       /* running as SCHED_BATCH */
	unsigned passes;     /* in the current window */
	unsigned items;
	unsigned backoff;    /* windows between probes, after a failed one */
	unsigned wait;       /* windows until the next probe */
};

struct worker {
	pthread_t thread;
	int epfd;
	int stop_fd;
	bool running;
	char name[16];
	struct worker_adapt adapt;
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
/* Before worker_start: the worker adapts its wake-up policy (above). */
void worker_set_adaptive(struct worker *w);
/* On the worker's thread: a pass over kicked work found n items. */
void worker_note_pass(struct worker *w, unsigned n);

#endif
