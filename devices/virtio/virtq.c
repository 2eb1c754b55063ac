/*
 * Split virtqueue core. The guest owns the rings and may change them while
 * we read: each shared field is read exactly once into a local, checked, and
 * only the local is used. Index arithmetic is mod 2^16 as the spec defines.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvmm/evfd.h"
#include "cvmm/virtq.h"

#define VIRTQ_READ(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define VIRTQ_WRITE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

void virtq_init(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
	vq->kick_fd = -1;
	vq->call_fd = -1;
}

static void virtq_clear_resubmit(struct virtq *vq)
{
	free(vq->resubmit);
	vq->resubmit = NULL;
	vq->nresubmit = vq->resubmit_pos = 0;
}

void virtq_destroy(struct virtq *vq)
{
	virtq_clear_resubmit(vq);
}

int virtq_setup(struct virtq *vq, const struct gmem *mem, uint16_t size,
		uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa)
{
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;

	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return -EINVAL;
	/* Ring sizes from virtio 1.2 2.7, each including its event field. */
	desc = gmem_ptr(mem, desc_gpa, 16ULL * size);
	avail = gmem_ptr(mem, avail_gpa, 6 + 2ULL * size);
	used = gmem_ptr(mem, used_gpa, 6 + 8ULL * size);
	if (!desc || !avail || !used)
		return -EINVAL;
	virtq_clear_resubmit(vq);
	vq->mem = mem;
	vq->size = size;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->used_idx = VIRTQ_READ(used->idx);
	/* Nothing pushed yet: nothing to signal until something is. */
	vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = false;
	vq->broken = false;
	return 0;
}

static int virtq_fail(struct virtq *vq)
{
	if (!vq->broken && vq->on_broken)
		vq->on_broken(vq, vq->on_broken_arg);
	vq->broken = true;
	return -EIO;
}

/* Appends [gpa, gpa+len) to the chain's iovecs, split where guest memory
 * regions end, counting them as device-writable or device-readable. */
static int virtq_map_buffer(const struct virtq *vq, struct virtq_chain *c, uint64_t gpa,
			    uint32_t len, bool writable)
{
	while (len) {
		unsigned n = c->nout + c->nin;
		uint64_t contig;
		void *p;

		if (n == VIRTQ_MAX_IOV)
			return -EIO;
		p = gmem_translate(vq->mem, gpa, len, &contig);
		if (!p)
			return -EIO;
		c->iov[n].iov_base = p;
		c->iov[n].iov_len = contig;
		if (writable)
			c->nin++;
		else
			c->nout++;
		gpa += contig;
		len -= contig;
	}
	return 0;
}

static void virtq_read_desc(const struct virtq_desc *table, uint32_t i, struct virtq_desc *d)
{
	const volatile struct virtq_desc *src = &table[i];

	d->addr = src->addr;
	d->len = src->len;
	d->flags = src->flags;
	d->next = src->next;
}

/* Walks the chain starting at head into c, bounded as virtio 1.2 2.7.5 and
 * 2.7.5.3 require of a driver: at most one indirect table, not nested, no
 * more descriptors than the table holds (which also catches loops), every
 * readable buffer before every writable one, all of it in guest memory. */
static int virtq_walk(const struct virtq *vq, uint16_t head, struct virtq_chain *c)
{
	const struct virtq_desc *table = vq->desc;
	uint32_t table_size = vq->size, count = 0, idx = head;
	uint64_t out_len = 0, in_len = 0;
	bool in_indirect = false;
	struct virtq_desc d;

	c->head = head;
	c->nout = c->nin = 0;
	for (;;) {
		if (idx >= table_size || ++count > table_size)
			return -EIO;
		virtq_read_desc(table, idx, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT) ||
			    d.len == 0 || d.len % sizeof(struct virtq_desc) ||
			    d.len / sizeof(struct virtq_desc) > VIRTQ_MAX_SIZE)
				return -EIO;
			table = gmem_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return -EIO;
			table_size = d.len / sizeof(struct virtq_desc);
			in_indirect = true;
			count = 0;
			idx = 0;
			continue;
		}
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			in_len += d.len;
		} else {
			if (c->nin)
				return -EIO;
			out_len += d.len;
		}
		if (out_len > UINT32_MAX || in_len > UINT32_MAX)
			return -EIO;
		if (virtq_map_buffer(vq, c, d.addr, d.len, d.flags & VIRTQ_DESC_F_WRITE))
			return -EIO;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	c->out_len = out_len;
	c->in_len = in_len;
	return 0;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c)
{
	uint16_t avail_idx, head;

	if (vq->broken || !vq->desc)
		return -EIO;
	if (vq->resubmit_pos < vq->nresubmit) {
		head = vq->resubmit[vq->resubmit_pos++];
		if (vq->resubmit_pos == vq->nresubmit)
			virtq_clear_resubmit(vq);
		return virtq_walk(vq, head, c) ? virtq_fail(vq) : 1;
	}
	/* Acquire: the ring entry below is read after the index that covers it. */
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail_idx)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size)
		return virtq_fail(vq);
	head = VIRTQ_READ(vq->avail->ring[vq->last_avail_idx & (vq->size - 1)]);
	if (head >= vq->size)
		return virtq_fail(vq);
	vq->last_avail_idx++;
	if (vq->inflight) {
		vq->inflight->desc[head].counter = vq->inflight_counter++;
		VIRTQ_WRITE(vq->inflight->desc[head].inflight, 1);
	}
	return virtq_walk(vq, head, c) ? virtq_fail(vq) : 1;
}

void virtq_push_stage(struct virtq *vq, unsigned i, uint16_t head, uint32_t len)
{
	struct virtq_used_elem *e = &vq->used->ring[(uint16_t)(vq->used_idx + i) & (vq->size - 1)];
	struct virtq_inflight *inf = vq->inflight;

	VIRTQ_WRITE(e->id, head);
	VIRTQ_WRITE(e->len, len);
	if (inf) {
		/* Recorded as one batch before the used index moves, so a
		 * restarted back-end can tell whether it was published. */
		inf->desc[head].next = inf->last_batch_head;
		inf->last_batch_head = head;
	}
}

void virtq_push_publish(struct virtq *vq, unsigned n)
{
	struct virtq_inflight *inf = vq->inflight;
	uint16_t h;

	vq->used_idx += n;
	/* Release: the elements are visible before the index that publishes them. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	if (!inf)
		return;
	/* The batch, newest first, through the links virtq_push_stage made. */
	h = inf->last_batch_head;
	for (unsigned i = 0; i < n && h < vq->size; i++) {
		__atomic_store_n(&inf->desc[h].inflight, 0, __ATOMIC_RELEASE);
		h = inf->desc[h].next;
	}
	__atomic_store_n(&inf->used_idx, vq->used_idx, __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	virtq_push_stage(vq, 0, head, len);
	virtq_push_publish(vq, 1);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	/* The used index store must be visible before the driver's
	 * suppression state is read, or an interrupt can be lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = now;
	vq->signalled_used_valid = true;
	if (old == now)
		return false;
	if (!vq->event_idx)
		return !(VIRTQ_READ(vq->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return virtq_need_event(VIRTQ_READ(vq->avail->ring[vq->size]), now, old);
}

void virtq_notify(struct virtq *vq)
{
	if (vq->call_fd < 0 || !virtq_should_notify(vq))
		return;
	/* Fails only with the counter saturated: the driver is being
	 * signalled anyway. */
	(void)evfd_signal(vq->call_fd);
}

void virtq_disable_notify(struct virtq *vq)
{
	/* With EVENT_IDX, not moving avail_event is enough: the driver
	 * kicks only when its index crosses it. */
	if (!vq->event_idx)
		VIRTQ_WRITE(vq->used->flags, VIRTQ_USED_F_NO_NOTIFY);
}

void virtq_kick_consume(struct virtq *vq)
{
	/* Epoll said it was set, but a front-end can take it first. */
	(void)evfd_take(vq->kick_fd);
}

bool virtq_has_avail(struct virtq *vq)
{
	if (vq->resubmit_pos < vq->nresubmit)
		return true;
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail_idx;
}

/* avail_event sits right after the used ring's last element. */
static uint16_t *virtq_avail_event(struct virtq *vq)
{
	return (uint16_t *)((uint8_t *)vq->used + offsetof(struct virtq_used, ring) +
			    vq->size * sizeof(struct virtq_used_elem));
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (vq->event_idx)
		VIRTQ_WRITE(*virtq_avail_event(vq), vq->last_avail_idx);
	else
		VIRTQ_WRITE(vq->used->flags, 0);
	/* The driver reads our suppression state after publishing its index;
	 * we read its index after publishing ours: one of us sees the other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_has_avail(vq);
}

int virtq_pop_or_notify(struct virtq *vq, struct virtq_chain *c)
{
	for (;;) {
		int r = virtq_pop(vq, c);

		if (r != 0 || !virtq_enable_notify(vq))
			return r;
	}
}

int virtq_serve(struct virtq *vq, struct virtq_chain *c, unsigned budget,
		virtq_handler_fn handle, void *arg)
{
	unsigned n = 0;
	int r = 0;

	for (;;) {
		virtq_disable_notify(vq);
		while (n < budget && (r = virtq_pop(vq, c)) > 0) {
			virtq_push(vq, c->head, handle(arg, c));
			n++;
		}
		if (r < 0 || !virtq_enable_notify(vq))
			break;
		if (n == budget) {
			/* More is waiting but this pass is spent: come back after
			 * the worker's other fds had their turn. */
			if (vq->kick_fd >= 0)
				(void)evfd_signal(vq->kick_fd);
			break;
		}
	}
	if (n)
		virtq_notify(vq);
	return r < 0 ? r : (int)n;
}

size_t virtq_inflight_size(uint16_t size)
{
	return sizeof(struct virtq_inflight) + (size_t)size * sizeof(struct virtq_inflight_desc);
}

static int virtq_inflight_cmp(const void *a, const void *b, void *arg)
{
	const struct virtq_inflight *inf = arg;
	uint64_t ca = inf->desc[*(const uint16_t *)a].counter;
	uint64_t cb = inf->desc[*(const uint16_t *)b].counter;

	return ca < cb ? -1 : ca > cb;
}

/* Works on a private copy: the region is shared with the front-end, which may
 * rewrite it at any moment, so counting flags in it and then reading them
 * again could disagree (and overrun the resubmit list). */
static int virtq_inflight_resume(struct virtq *vq, struct virtq_inflight *copy)
{
	uint16_t n = 0, pending;
	uint64_t max_counter = 0;

	if (copy->version != 1 || copy->desc_num != vq->size)
		return -EINVAL;
	/* The last batch reached the used ring but its inflight flags were not
	 * cleared before the previous back-end died: clear them now. */
	pending = vq->used_idx - copy->used_idx;
	if (pending > vq->size)
		return -EINVAL;
	for (uint16_t i = 0, h = copy->last_batch_head; i < pending; i++) {
		if (h >= vq->size)
			return -EINVAL;
		copy->desc[h].inflight = 0;
		h = copy->desc[h].next;
	}
	copy->used_idx = vq->used_idx;
	for (uint16_t h = 0; h < vq->size; h++) {
		if (copy->desc[h].inflight > 1)
			return -EINVAL;
		n += copy->desc[h].inflight;
	}
	if (n) {
		vq->resubmit = malloc(n * sizeof(*vq->resubmit));
		if (!vq->resubmit)
			return -ENOMEM;
		for (uint16_t h = 0, k = 0; h < vq->size; h++) {
			if (!copy->desc[h].inflight)
				continue;
			vq->resubmit[k++] = h;
			if (copy->desc[h].counter > max_counter)
				max_counter = copy->desc[h].counter;
		}
		qsort_r(vq->resubmit, n, sizeof(*vq->resubmit), virtq_inflight_cmp, copy);
	}
	vq->nresubmit = n;
	vq->resubmit_pos = 0;
	/* Every request popped is either in the used ring or still in flight. */
	vq->last_avail_idx = vq->used_idx + n;
	vq->inflight_counter = max_counter + 1;
	return 0;
}

int virtq_inflight_restore(struct virtq *vq, struct virtq_inflight *inf)
{
	size_t size;
	struct virtq_inflight *copy;
	int r;

	if (!vq->desc)
		return -EINVAL;
	virtq_clear_resubmit(vq);
	vq->inflight = NULL;
	size = virtq_inflight_size(vq->size);
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, inf, size);
	if (copy->version == 0) {
		/* A fresh region: nothing was in flight. */
		memset(copy, 0, size);
		copy->version = 1;
		copy->desc_num = vq->size;
		copy->used_idx = vq->used_idx;
		vq->inflight_counter = 1;
		r = 0;
	} else {
		r = virtq_inflight_resume(vq, copy);
	}
	if (r == 0) {
		/* The region now says exactly what this back-end resubmits. */
		memcpy(inf, copy, size);
		vq->inflight = inf;
	}
	free(copy);
	return r;
}
