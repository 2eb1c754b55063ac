/*
 * The queue runtime every device model shares (the shape of Linux vhost's
 * handle_kick): worker threads, kick watches, start/stop/restart, the first
 * kick and broken rings. A model only declares queues and a handler.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cvmm/evfd.h"
#include "cvmm/log.h"
#include "cvmm/vdev.h"

static void vdev_kick_fd(int fd)
{
	/* Fails only with a saturated counter: a kick is pending anyway. */
	(void)evfd_signal(fd);
}

static void vdev_queue_kick(void *arg, uint32_t events)
{
	struct vdev_queue *rq = arg;
	struct vdev *dev = rq->dev;
	struct virtq *vq = &dev->vqs[rq->index];
	uint16_t before;

	(void)events;
	virtq_kick_consume(vq);
	before = vq->last_avail_idx;
	dev->ops->handle_queue(dev, rq->index);
	worker_note_pass(&dev->workers[rq->worker].worker, (uint16_t)(vq->last_avail_idx - before));
}

/* vq->on_broken, on the queue's worker: the first malformed chain. */
static void vdev_queue_broken(struct virtq *vq, void *arg)
{
	struct vdev_queue *rq = arg;
	struct vdev *dev = rq->dev;

	(void)vq;
	/* Once per break; a guest that breaks and resets in a loop is bounded
	 * by the rate limit. */
	log_warn_ratelimited("%s: queue %u: the driver put a malformed chain on the ring; "
			     "device needs reset", dev->ops->name, rq->index);
	vdev_needs_reset(dev, rq->index);
}

void vdev_needs_reset(struct vdev *dev, unsigned q)
{
	pthread_mutex_lock(&dev->host_lock);
	if (dev->host_queue_broken)
		dev->host_queue_broken(dev->host, q);
	pthread_mutex_unlock(&dev->host_lock);
}

void vdev_config_changed(struct vdev *dev)
{
	pthread_mutex_lock(&dev->host_lock);
	if (dev->host_config_changed)
		dev->host_config_changed(dev->host);
	pthread_mutex_unlock(&dev->host_lock);
}

void vdev_set_host(struct vdev *dev, void (*config_changed)(void *host),
		   void (*queue_broken)(void *host, unsigned q), void *host)
{
	pthread_mutex_lock(&dev->host_lock);
	dev->host_config_changed = config_changed;
	dev->host_queue_broken = queue_broken;
	dev->host = host;
	pthread_mutex_unlock(&dev->host_lock);
}

int vdev_init(struct vdev *dev, unsigned nworkers, const char *prefix)
{
	int err;

	err = pthread_mutex_init(&dev->host_lock, NULL);
	if (err)
		return -err;
	dev->host_lock_ready = true;
	dev->queues = calloc(dev->num_queues ? dev->num_queues : 1, sizeof(*dev->queues));
	if (!dev->queues)
		return -ENOMEM;
	for (unsigned q = 0; q < dev->num_queues; q++) {
		struct vdev_queue *rq = &dev->queues[q];

		rq->dev = dev;
		rq->index = q;
		rq->watched_fd = -1;
		rq->kick_watch = (struct worker_watch){ .fn = vdev_queue_kick, .arg = rq };
	}
	dev->nworkers = 0;
	if (!dev->ops->handle_queue)
		nworkers = 0;
	dev->workers = calloc(nworkers ? nworkers : 1, sizeof(*dev->workers));
	if (!dev->workers) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned w = 0; w < nworkers; w++) {
		char name[32];

		/* Thread names are 15 bytes at most: worker_init cuts them. */
		snprintf(name, sizeof(name), "%.11s%u", prefix, w);
		err = worker_init(&dev->workers[w].worker, name);
		if (err)
			goto fail;
		dev->workers[w].ready = true;
		dev->nworkers = w + 1;
	}
	return 0;
fail:
	vdev_destroy(dev);
	return err;
}

void vdev_destroy(struct vdev *dev)
{
	if (dev->queues)
		for (unsigned q = 0; q < dev->num_queues; q++)
			vdev_queue_stop(dev, q);
	for (unsigned w = 0; dev->workers && w < dev->nworkers; w++)
		if (dev->workers[w].ready)
			worker_destroy(&dev->workers[w].worker);
	free(dev->workers);
	free(dev->queues);
	dev->workers = NULL;
	dev->queues = NULL;
	dev->nworkers = 0;
	if (dev->host_lock_ready)
		pthread_mutex_destroy(&dev->host_lock);
	dev->host_lock_ready = false;
}

void vdev_set_queue_worker(struct vdev *dev, unsigned q, unsigned w)
{
	if (q < dev->num_queues && w < dev->nworkers)
		dev->queues[q].worker = w;
}

void vdev_worker_adaptive(struct vdev *dev, unsigned w)
{
	if (w < dev->nworkers)
		worker_set_adaptive(&dev->workers[w].worker);
}

int vdev_watch(struct vdev *dev, unsigned w, int fd, uint32_t events, struct worker_watch *watch)
{
	if (w >= dev->nworkers)
		return -EINVAL;
	return worker_watch(&dev->workers[w].worker, fd, events, watch);
}

int vdev_unwatch(struct vdev *dev, unsigned w, int fd)
{
	if (w >= dev->nworkers)
		return -EINVAL;
	return worker_unwatch(&dev->workers[w].worker, fd);
}

static int vdev_worker_run_if_needed(struct vdev_worker *vw)
{
	if (!vw->nstarted && !vw->always_on)
		return 0;
	return worker_start(&vw->worker);
}

int vdev_worker_keep_running(struct vdev *dev, unsigned w)
{
	if (w >= dev->nworkers)
		return -EINVAL;
	dev->workers[w].always_on = true;
	return vdev_worker_run_if_needed(&dev->workers[w]);
}

void vdev_worker_pause(struct vdev *dev, unsigned w)
{
	if (w < dev->nworkers)
		worker_stop(&dev->workers[w].worker);
}

void vdev_worker_resume(struct vdev *dev, unsigned w)
{
	int err;

	if (w >= dev->nworkers)
		return;
	err = vdev_worker_run_if_needed(&dev->workers[w]);
	if (err)
		log_err("%s: cannot restart a worker thread: %s", dev->ops->name, strerror(-err));
}

void vdev_queue_requeue(struct vdev *dev, unsigned q)
{
	if (q < dev->num_queues && dev->queues[q].watched_fd >= 0)
		vdev_kick_fd(dev->queues[q].watched_fd);
}

int vdev_set_features(struct vdev *dev, uint64_t features)
{
	int err = dev->ops->set_features ? dev->ops->set_features(dev, features) : 0;

	if (!err)
		dev->features = features;
	return err;
}

bool vdev_queue_started(const struct vdev *dev, unsigned q)
{
	return q < dev->num_queues && dev->queues[q].started;
}

/* Starts q on its worker: hook, kick watch, thread, first kick. */
static int vdev_queue_start_worker(struct vdev *dev, unsigned q)
{
	struct vdev_queue *rq = &dev->queues[q];
	struct vdev_worker *vw = &dev->workers[rq->worker];
	struct virtq *vq = &dev->vqs[q];
	int err = 0, run_err;

	/* The handlers of this worker read the queue's state: change it only
	 * while the worker is stopped. */
	worker_stop(&vw->worker);
	if (dev->ops->queue_start)
		err = dev->ops->queue_start(dev, q);
	if (!err) {
		err = worker_watch(&vw->worker, vq->kick_fd, EPOLLIN, &rq->kick_watch);
		if (err && dev->ops->queue_stop)
			dev->ops->queue_stop(dev, q);
	}
	if (!err) {
		rq->watched_fd = vq->kick_fd;
		rq->started = true;
		vw->nstarted++;
	}
	run_err = vdev_worker_run_if_needed(vw);
	if (run_err && !err) {
		/* Unwind: the queue must not look served when nothing serves it. */
		worker_unwatch(&vw->worker, rq->watched_fd);
		rq->watched_fd = -1;
		rq->started = false;
		vw->nstarted--;
		if (dev->ops->queue_stop)
			dev->ops->queue_stop(dev, q);
		err = run_err;
	}
	if (err)
		return err;
	/* Serve what the driver queued before its kicks were watched (and
	 * what a previous back-end left in flight). */
	vdev_kick_fd(rq->watched_fd);
	return 0;
}

int vdev_queue_start(struct vdev *dev, unsigned q)
{
	struct virtq *vq;
	int err;

	if (q >= dev->num_queues || !dev->queues)
		return -EINVAL;
	if (dev->queues[q].started)
		return -EBUSY;
	vq = &dev->vqs[q];
	if (vq->kick_fd < 0 || !vq->desc)
		return -EINVAL;
	vq->event_idx = vdev_has_feature(dev, VIRTIO_F_EVENT_IDX);
	vq->indirect = vdev_has_feature(dev, VIRTIO_F_INDIRECT_DESC);
	vq->on_broken = vdev_queue_broken;
	vq->on_broken_arg = &dev->queues[q];
	if (dev->ops->handle_queue)
		return vdev_queue_start_worker(dev, q);
	err = dev->ops->queue_start ? dev->ops->queue_start(dev, q) : -EOPNOTSUPP;
	if (!err)
		dev->queues[q].started = true;
	return err;
}

void vdev_queue_stop(struct vdev *dev, unsigned q)
{
	struct vdev_queue *rq;
	struct vdev_worker *vw;

	if (q >= dev->num_queues || !dev->queues || !dev->queues[q].started)
		return;
	rq = &dev->queues[q];
	if (!dev->ops->handle_queue) {
		rq->started = false;
		if (dev->ops->queue_stop)
			dev->ops->queue_stop(dev, q);
		return;
	}
	vw = &dev->workers[rq->worker];
	worker_stop(&vw->worker);
	rq->started = false;
	worker_unwatch(&vw->worker, rq->watched_fd);
	rq->watched_fd = -1;
	vw->nstarted--;
	if (dev->ops->queue_stop)
		dev->ops->queue_stop(dev, q);
	vdev_worker_resume(dev, rq->worker);
}

void vdev_reset(struct vdev *dev)
{
	for (unsigned q = 0; q < dev->num_queues; q++)
		vdev_queue_stop(dev, q);
	if (dev->ops->reset)
		dev->ops->reset(dev);
	dev->features = 0;
}
