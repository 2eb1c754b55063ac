#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/virtio_rng.h"

#define RNG_BUDGET 64

static struct rng_dev *rng_from_vdev(struct vdev *dev)
{
	return (struct rng_dev *)dev;
}

/* Fills one buffer; returns bytes written (short only when the source ran dry). */
static size_t rng_fill(struct rng_dev *r, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = r->src_fd >= 0 ? read(r->src_fd, buf + done, len - done)
					   : getrandom(buf + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn_ratelimited("virtio-rng: entropy source: %s", n ? strerror(errno) : "end of file");
			break;
		}
		done += (size_t)n;
	}
	return done;
}

static uint32_t rng_handle(void *arg, struct virtq_chain *c)
{
	struct rng_dev *r = arg;
	size_t total = 0;

	/* Readable buffers have no meaning here and are ignored. */
	for (unsigned i = c->nout; i < c->nout + c->nin && total < RNG_MAX_REQUEST; i++) {
		size_t want = c->iov[i].iov_len;
		size_t got;

		if (want > RNG_MAX_REQUEST - total)
			want = RNG_MAX_REQUEST - total;
		got = rng_fill(r, c->iov[i].iov_base, want);
		total += got;
		if (got < want)
			break;
	}
	return (uint32_t)total;
}

static void rng_kick(void *arg, uint32_t events)
{
	struct rng_dev *r = arg;

	(void)events;
	virtq_kick_consume(&r->vq);
	if (virtq_serve(&r->vq, r->chain, RNG_BUDGET, rng_handle, r) < 0)
		log_warn_ratelimited("virtio-rng: the driver put a malformed chain on the ring; queue stopped until reset");
}

static int rng_queue_start(struct vdev *dev, unsigned q)
{
	struct rng_dev *r = rng_from_vdev(dev);
	uint64_t one = 1;
	int err;

	if (q != 0 || r->started || r->vq.kick_fd < 0)
		return -EINVAL;
	err = worker_watch(&r->worker, r->vq.kick_fd, EPOLLIN, &r->kick_watch);
	if (err)
		return err;
	err = worker_start(&r->worker);
	if (err) {
		worker_unwatch(&r->worker, r->vq.kick_fd);
		return err;
	}
	r->started = true;
	/* Serve what the driver queued before it could kick us. */
	(void)!write(r->vq.kick_fd, &one, sizeof(one));
	return 0;
}

static void rng_queue_stop(struct vdev *dev, unsigned q)
{
	struct rng_dev *r = rng_from_vdev(dev);

	if (q != 0 || !r->started)
		return;
	worker_stop(&r->worker);
	worker_unwatch(&r->worker, r->vq.kick_fd);
	r->started = false;
}

static void rng_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	/* virtio-rng has no configuration space. */
	(void)dev;
	(void)off;
	(void)buf;
	(void)len;
}

static void rng_vdev_destroy(struct vdev *dev)
{
	rng_dev_destroy(rng_from_vdev(dev));
}

static const struct vdev_ops rng_vdev_ops = {
	.name = "virtio-rng",
	.read_config = rng_read_config,
	.queue_start = rng_queue_start,
	.queue_stop = rng_queue_stop,
	.destroy = rng_vdev_destroy,
};

int rng_dev_init(struct rng_dev *r, const char *src)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->src_fd = -1;
	virtq_init(&r->vq);
	if (src) {
		r->src_fd = open(src, O_RDONLY | O_CLOEXEC);
		if (r->src_fd < 0)
			return -errno;
	}
	r->chain = malloc(sizeof(*r->chain));
	if (!r->chain) {
		err = -ENOMEM;
		goto fail_src;
	}
	err = worker_init(&r->worker, "virtio-rng");
	if (err)
		goto fail_chain;
	r->kick_watch = (struct worker_watch){ .fn = rng_kick, .arg = r };
	r->vdev = (struct vdev){
		.ops = &rng_vdev_ops,
		.device_id = VIRTIO_ID_RNG,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
				 VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
		.num_queues = 1,
		.queue_size_max = RNG_QUEUE_SIZE,
		.vqs = &r->vq,
	};
	return 0;
fail_chain:
	free(r->chain);
fail_src:
	if (r->src_fd >= 0)
		close(r->src_fd);
	return err;
}

void rng_dev_destroy(struct rng_dev *r)
{
	rng_queue_stop(&r->vdev, 0);
	worker_destroy(&r->worker);
	virtq_destroy(&r->vq);
	free(r->chain);
	r->chain = NULL;
	if (r->src_fd >= 0)
		close(r->src_fd);
	r->src_fd = -1;
}
