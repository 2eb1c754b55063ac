/*
 * The driver side of a split virtqueue, for unit tests: builds chains in a
 * test's "guest memory" (a host buffer standing for guest address 0),
 * publishes them and reads what the device used.
 */
#ifndef CVMM_TEST_GUEST_RING_H
#define CVMM_TEST_GUEST_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/virtq.h"

struct guest_ring {
	uint8_t *mem;             /* guest address 0 */
	uint16_t size;
	uint64_t desc, avail, used; /* guest addresses of the three parts */
	uint16_t next_desc;       /* where guest_ring_post puts the next chain */
	uint16_t avail_idx;       /* the driver's copy of avail->idx */
	uint16_t used_seen;       /* used entries already taken by guest_ring_next_used */
};

struct guest_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;            /* device-writable */
};

void guest_ring_init(struct guest_ring *r, void *mem, uint16_t size, uint64_t desc, uint64_t avail,
		     uint64_t used);
struct virtq_desc *guest_ring_desc(const struct guest_ring *r);
struct virtq_avail *guest_ring_avail(const struct guest_ring *r);
struct virtq_used *guest_ring_used(const struct guest_ring *r);

/* Writes bufs[0..n) as one chain at descriptors head, head+1, ... (mod
 * size) without publishing it. */
void guest_ring_write_chain(struct guest_ring *r, uint16_t head, const struct guest_buf *bufs,
			    unsigned n);
/* Makes head the next available entry. */
void guest_ring_publish(struct guest_ring *r, uint16_t head);
/* write_chain at head, then publish. */
void guest_ring_post_at(struct guest_ring *r, uint16_t head, const struct guest_buf *bufs, unsigned n);
/* post_at the next free descriptors; returns the head. */
uint16_t guest_ring_post(struct guest_ring *r, const struct guest_buf *bufs, unsigned n);

uint16_t guest_ring_used_idx(const struct guest_ring *r);
/* The next used entry not taken yet (whether or not the device wrote it). */
struct virtq_used_elem guest_ring_next_used(struct guest_ring *r);
/* Waits up to ms for used->idx to reach idx; true when it did. */
bool guest_ring_wait_used(const struct guest_ring *r, uint16_t idx, int ms);
/* Waits up to ms for one more used entry than taken so far; true when one
 * came (take it with guest_ring_next_used). */
bool guest_ring_wait_more(const struct guest_ring *r, int ms);

#endif
