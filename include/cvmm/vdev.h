/*
 * The virtio device model interface (docs/architecture.md: one model, two
 * hosts) and the queue runtime every model shares.
 *
 * A model (blk, net, vsock, rng, console) sees guest memory, its virtqueues
 * (rings + kick/call eventfds), features and config space, and its own
 * backend fds. It never knows which host carries it:
 *  - in-process, a transport (virtio-pci / virtio-mmio) fills these from the
 *    guest's register writes (kick = ioeventfd, call = irqfd);
 *  - as a vhost-user back-end, the vhost-user server fills them from the
 *    front-end's messages.
 *
 * The model declares its queues, which worker thread serves each, and a
 * handler (ops->handle_queue); the core (vdev.c) owns the workers, watches
 * the kick fds, starts, stops and restarts them, kicks a starting queue once
 * and handles a ring the driver broke (the host is told, and puts the device
 * in DEVICE_NEEDS_RESET or signals the vring's error fd). Extra fds a model
 * serves (tap, inotify, host sockets) go on its workers with vdev_watch.
 *
 * Sequence a host follows: set dev->mem; vdev_set_features; per queue
 * virtq_setup + kick/call fds, then vdev_queue_start; vdev_queue_stop before
 * touching that queue or guest memory again; vdev_reset with every queue
 * stopped. Only the host and the core write dev->features and the rings'
 * event_idx / indirect flags.
 */
#ifndef CVMM_VDEV_H
#define CVMM_VDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/gmem.h"
#include "cvmm/virtq.h"
#include "cvmm/worker.h"

/* The struct embedding member ptr (a device's struct from its struct vdev). */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct vdev;

struct vdev_ops {
	const char *name;
	/* The driver accepted features (a subset of host_features). Optional;
	 * -EINVAL refuses the combination. dev->features is set by the core. */
	int (*set_features)(struct vdev *dev, uint64_t features);
	/* Copies config space bytes [off, off+len) into buf (bounds checked by the host). */
	void (*read_config)(struct vdev *dev, uint32_t off, void *buf, uint32_t len);
	/* Driver writes to config space; optional (read-only config when NULL). */
	int (*write_config)(struct vdev *dev, uint32_t off, const void *buf, uint32_t len);
	/* Serves queue q on its worker: called when the driver kicked it (the
	 * kick is consumed) and once when the queue starts. NULL: the model
	 * runs no worker for its queues and queue_start / queue_stop do all
	 * (a vhost-user front-end device hands the fds to its back-end). */
	void (*handle_queue)(struct vdev *dev, unsigned q);
	/* Optional hook: queue q is about to run (its worker is stopped). 0 or
	 * -errno (the queue then stays stopped). */
	int (*queue_start)(struct vdev *dev, unsigned q);
	/* Optional hook: queue q stopped; no thread of the model touches it
	 * any more (its worker is stopped while this runs). */
	void (*queue_stop)(struct vdev *dev, unsigned q);
	/* Back to the state after init; all queues are stopped. Optional. */
	void (*reset)(struct vdev *dev);
};

/* A worker thread of a device, owned by the core. */
struct vdev_worker {
	struct worker worker;
	unsigned nstarted;   /* started queues it serves */
	bool always_on;      /* runs even with no queue started (host-side fds) */
	bool ready;          /* worker_init succeeded */
};

/* The core's view of one queue. */
struct vdev_queue {
	struct vdev *dev;
	unsigned index;
	unsigned worker;     /* index into dev->workers */
	int watched_fd;      /* the kick fd watched while started */
	bool started;
	struct worker_watch kick_watch;
};

struct vdev {
	const struct vdev_ops *ops;
	uint32_t device_id;        /* virtio device ID (blk 2, net 1, console 3, rng 4, vsock 19) */
	uint64_t host_features;    /* offered, including the core's (VERSION_1, EVENT_IDX, INDIRECT_DESC) */
	uint64_t features;         /* negotiated: written by vdev_set_features / vdev_reset only */
	unsigned num_queues;
	uint16_t queue_size_max;
	struct virtq *vqs;         /* num_queues of them, allocated by the model */
	uint32_t config_size;
	const struct gmem *mem;    /* set by the host before any queue starts */

	/* The queue runtime (vdev_init / vdev_destroy). */
	struct vdev_queue *queues; /* num_queues */
	struct vdev_worker *workers;
	unsigned nworkers;

	/* Set by the host with vdev_set_host: the model calls
	 * vdev_config_changed() when its config space changed (capacity,
	 * link status, ...); the core calls host_queue_broken (from the
	 * queue's worker) when the driver broke ring q. Called under
	 * host_lock, so that a host detaching knows none still runs. */
	void (*host_config_changed)(void *host);
	void (*host_queue_broken)(void *host, unsigned q);
	void *host;
	pthread_mutex_t host_lock;
	bool host_lock_ready;
};

static inline bool vdev_has_feature(const struct vdev *dev, unsigned bit)
{
	return dev->features & VIRTIO_BIT(bit);
}

/* ---- for models ----
 * vdev_init / vdev_destroy / vdev_set_queue_worker: before the device is
 * hosted, or after. vdev_watch / vdev_unwatch: any thread (also the worker
 * itself). vdev_worker_pause / resume: not from that worker. */

/* Sets up the queue runtime of a model whose ops, num_queues and vqs are
 * set: nworkers worker threads named "<prefix><i>" (none when handle_queue
 * is NULL), every queue on worker 0 until vdev_set_queue_worker. 0 or -errno. */
int vdev_init(struct vdev *dev, unsigned nworkers, const char *prefix);
/* Stops every queue (calling the stop hooks) and every worker, and frees the
 * runtime. The model's own resources stay the model's. */
void vdev_destroy(struct vdev *dev);
/* Queue q is served by worker w (before it starts). */
void vdev_set_queue_worker(struct vdev *dev, unsigned q, unsigned w);
/* Serves fd on worker w: watch->fn(watch->arg, events) runs there. *watch
 * stays valid until unwatched. 0 or -errno. */
int vdev_watch(struct vdev *dev, unsigned w, int fd, uint32_t events, struct worker_watch *watch);
int vdev_unwatch(struct vdev *dev, unsigned w, int fd);
/* Worker w runs from now on even while none of its queues does (host-side
 * fds such as vsock's sockets or blk's resize watch). 0 or -errno. */
int vdev_worker_keep_running(struct vdev *dev, unsigned w);
/* Stops worker w so that state its handlers read can change, and starts it
 * again if it has work; never from worker w itself. */
void vdev_worker_pause(struct vdev *dev, unsigned w);
void vdev_worker_resume(struct vdev *dev, unsigned w);
/* Worker w adapts its wake-up policy to how deep the driver queues
 * (worker.h); for a model whose requests complete at once, in batches. */
void vdev_worker_adaptive(struct vdev *dev, unsigned w);
/* Asks the core to run handle_queue for q again soon (budget used up). */
void vdev_queue_requeue(struct vdev *dev, unsigned q);
/* The model's config space changed: the host tells the driver. Any thread. */
void vdev_config_changed(struct vdev *dev);
/* The model found queue q broken outside the core's chain walker (a ring it
 * hands to someone else): the host's DEVICE_NEEDS_RESET path. Any thread. */
void vdev_needs_reset(struct vdev *dev, unsigned q);

/* ---- for hosts (transports, vhost-user server) ----
 * Called from the host's own thread (a vCPU under the device's register
 * lock, the vhost-user server's thread), never from the device's workers:
 * stopping a queue joins its worker. */

/* Attaches the host's callbacks (after vdev_init); NULLs detach them, and
 * once that returns none of the old ones runs or will run, so the host may
 * go while the model's threads still do. */
void vdev_set_host(struct vdev *dev, void (*config_changed)(void *host),
		   void (*queue_broken)(void *host, unsigned q), void *host);
/* Negotiates features (already checked against what the host offers):
 * calls ops->set_features and records them in dev->features. 0 or -errno. */
int vdev_set_features(struct vdev *dev, uint64_t features);
/* Queue q is set up (rings, kick/call fds): sets its event_idx / indirect
 * flags from dev->features and starts serving it. 0 or -errno. */
int vdev_queue_start(struct vdev *dev, unsigned q);
/* Stops serving q; returns once no thread of the model touches it. */
void vdev_queue_stop(struct vdev *dev, unsigned q);
bool vdev_queue_started(const struct vdev *dev, unsigned q);
/* Stops every queue, calls ops->reset and clears the negotiated features. */
void vdev_reset(struct vdev *dev);

#endif
