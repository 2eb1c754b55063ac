#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "virtio_rng.h"

#define RNG_BUDGET 64

static struct rng_dev *rng_from_vdev(struct vdev *dev)
{
	return container_of(dev, struct rng_dev, vdev);
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

static void rng_handle_queue(struct vdev *dev, unsigned q)
{
	struct rng_dev *r = rng_from_vdev(dev);

	virtq_serve(&dev->vqs[q], r->chain, RNG_BUDGET, rng_handle, r);
}

static void rng_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	/* virtio-rng has no configuration space. */
	(void)dev;
	(void)off;
	(void)buf;
	(void)len;
}

static const struct vdev_ops rng_vdev_ops = {
	.name = "virtio-rng",
	.read_config = rng_read_config,
	.handle_queue = rng_handle_queue,
};

int rng_dev_init(struct rng_dev *r, const char *src)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->src_fd = -1;
	virtq_init(&r->vq);
	if (src) {
		struct stat st;

		/* Opened without blocking, so that a FIFO is refused rather
		 * than waited on for a writer. */
		r->src_fd = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (r->src_fd < 0)
			return -errno;
		if (fstat(r->src_fd, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISREG(st.st_mode))) {
			close(r->src_fd);
			r->src_fd = -1;
			return -EINVAL;
		}
		if (fcntl(r->src_fd, F_SETFL, fcntl(r->src_fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			err = -errno;
			close(r->src_fd);
			r->src_fd = -1;
			return err;
		}
	}
	r->chain = malloc(sizeof(*r->chain));
	if (!r->chain) {
		err = -ENOMEM;
		goto fail_src;
	}
	r->vdev = (struct vdev){
		.ops = &rng_vdev_ops,
		.device_id = VIRTIO_ID_RNG,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
				 VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
		.num_queues = 1,
		.queue_size_max = RNG_QUEUE_SIZE,
		.vqs = &r->vq,
	};
	err = vdev_init(&r->vdev, 1, "virtio-rng");
	if (err)
		goto fail_chain;
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
	vdev_destroy(&r->vdev);
	virtq_destroy(&r->vq);
	free(r->chain);
	r->chain = NULL;
	if (r->src_fd >= 0)
		close(r->src_fd);
	r->src_fd = -1;
}
