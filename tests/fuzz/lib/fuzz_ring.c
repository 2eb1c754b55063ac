#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fuzz_ring.h"

int fuzz_ring_mem_init(struct fuzz_ring_mem *m)
{
	struct gmem_region r = { .gpa = 0, .size = FUZZ_RING_MEM_SIZE, .fd = -1 };

	/* Page-aligned, as guest RAM is. */
	m->buf = aligned_alloc(4096, FUZZ_RING_MEM_SIZE);
	if (!m->buf)
		return -ENOMEM;
	memset(m->buf, 0, FUZZ_RING_MEM_SIZE);
	r.hva = m->buf;
	gmem_init(&m->mem);
	for (unsigned q = 0; q < FUZZ_RING_MAX_QUEUES; q++) {
		m->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		m->call_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->kick_fd[q] < 0 || m->call_fd[q] < 0)
			return -EMFILE;
	}
	return gmem_add(&m->mem, &r);
}

void fuzz_ring_mem_destroy(struct fuzz_ring_mem *m)
{
	gmem_destroy(&m->mem);
	free(m->buf);
	for (unsigned q = 0; q < FUZZ_RING_MAX_QUEUES; q++) {
		close(m->kick_fd[q]);
		close(m->call_fd[q]);
	}
}

void fuzz_ring_mem_load(struct fuzz_ring_mem *m, const uint8_t *data, size_t len)
{
	if (len > FUZZ_RING_MEM_SIZE)
		len = FUZZ_RING_MEM_SIZE;
	if (len)
		memcpy(m->buf, data, len);
	memset(m->buf + len, 0, FUZZ_RING_MEM_SIZE - len);
}

int fuzz_ring_setup(struct virtq *vq, const struct fuzz_ring_mem *m, unsigned q, uint8_t opts)
{
	uint64_t base = (uint64_t)q * FUZZ_RING_STRIDE;
	int r;

	virtq_destroy(vq);
	virtq_init(vq);
	r = virtq_setup(vq, &m->mem, FUZZ_RING_SIZE, base, base + FUZZ_RING_AVAIL,
			base + FUZZ_RING_USED);
	if (r)
		return r;
	vq->event_idx = opts & FUZZ_RING_EVENT_IDX;
	vq->indirect = opts & FUZZ_RING_INDIRECT;
	return 0;
}

int fuzz_ring_attach(struct vdev *dev, struct fuzz_ring_mem *m, uint64_t features,
		     const uint8_t *data, size_t len)
{
	int r;

	if (dev->num_queues > FUZZ_RING_MAX_QUEUES)
		return -EINVAL;
	vdev_reset(dev);
	dev->mem = &m->mem;
	/* Empty rings while the workers run: their first pass finds nothing. */
	fuzz_ring_mem_load(m, NULL, 0);
	r = vdev_set_features(dev, dev->host_features &
			      (features | VIRTIO_BIT(VIRTIO_F_VERSION_1)));
	for (unsigned q = 0; q < dev->num_queues && !r; q++) {
		r = fuzz_ring_setup(&dev->vqs[q], m, q, 0);
		dev->vqs[q].kick_fd = m->kick_fd[q];
		dev->vqs[q].call_fd = m->call_fd[q];
		if (!r)
			r = vdev_queue_start(dev, q);
	}
	for (unsigned w = 0; w < dev->nworkers; w++)
		vdev_worker_pause(dev, w);
	fuzz_ring_mem_load(m, data, len);
	return r;
}

uint32_t fuzz_ring_touch(const struct virtq_chain *c)
{
	uint8_t sum = 0;

	if (c->nout + c->nin > VIRTQ_MAX_IOV)
		abort();
	for (unsigned i = 0; i < c->nout; i++)
		for (size_t k = 0; k < c->iov[i].iov_len; k++)
			sum += ((volatile uint8_t *)c->iov[i].iov_base)[k];
	for (unsigned i = c->nout; i < c->nout + c->nin; i++)
		memset(c->iov[i].iov_base, sum, c->iov[i].iov_len);
	return c->in_len;
}
