#include <time.h>

#include "guest_ring.h"

void guest_ring_init(struct guest_ring *r, void *mem, uint16_t size, uint64_t desc, uint64_t avail,
		     uint64_t used)
{
	*r = (struct guest_ring){ .mem = mem, .size = size, .desc = desc, .avail = avail, .used = used };
}

struct virtq_desc *guest_ring_desc(const struct guest_ring *r)
{
	return (struct virtq_desc *)(void *)(r->mem + r->desc);
}

struct virtq_avail *guest_ring_avail(const struct guest_ring *r)
{
	return (struct virtq_avail *)(void *)(r->mem + r->avail);
}

struct virtq_used *guest_ring_used(const struct guest_ring *r)
{
	return (struct virtq_used *)(void *)(r->mem + r->used);
}

void guest_ring_write_chain(struct guest_ring *r, uint16_t head, const struct guest_buf *bufs,
			    unsigned n)
{
	struct virtq_desc *desc = guest_ring_desc(r);

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((head + i) % r->size);

		desc[d] = (struct virtq_desc){
			.addr = bufs[i].gpa,
			.len = bufs[i].len,
			.flags = (uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			.next = (uint16_t)((d + 1) % r->size),
		};
	}
}

void guest_ring_publish(struct guest_ring *r, uint16_t head)
{
	struct virtq_avail *avail = guest_ring_avail(r);

	avail->ring[r->avail_idx % r->size] = head;
	__atomic_store_n(&avail->idx, ++r->avail_idx, __ATOMIC_RELEASE);
}

void guest_ring_post_at(struct guest_ring *r, uint16_t head, const struct guest_buf *bufs, unsigned n)
{
	guest_ring_write_chain(r, head, bufs, n);
	guest_ring_publish(r, head);
}

uint16_t guest_ring_post(struct guest_ring *r, const struct guest_buf *bufs, unsigned n)
{
	uint16_t head = r->next_desc;

	r->next_desc = (uint16_t)((head + n) % r->size);
	guest_ring_post_at(r, head, bufs, n);
	return head;
}

uint16_t guest_ring_used_idx(const struct guest_ring *r)
{
	return __atomic_load_n(&guest_ring_used(r)->idx, __ATOMIC_ACQUIRE);
}

struct virtq_used_elem guest_ring_next_used(struct guest_ring *r)
{
	return guest_ring_used(r)->ring[r->used_seen++ % r->size];
}

static void guest_ring_sleep_ms(void)
{
	struct timespec ms = { 0, 1000000 };

	nanosleep(&ms, NULL);
}

bool guest_ring_wait_used(const struct guest_ring *r, uint16_t idx, int ms)
{
	for (int i = 0; i < ms && guest_ring_used_idx(r) != idx; i++)
		guest_ring_sleep_ms();
	return guest_ring_used_idx(r) == idx;
}

bool guest_ring_wait_more(const struct guest_ring *r, int ms)
{
	for (int i = 0; i < ms && guest_ring_used_idx(r) == r->used_seen; i++)
		guest_ring_sleep_ms();
	return guest_ring_used_idx(r) != r->used_seen;
}
