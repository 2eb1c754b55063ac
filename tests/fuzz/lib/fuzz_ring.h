/*
 * Fuzzed guest memory for the ring targets: 64 KiB at guest address 0 whose
 * first bytes are the fuzz input (the rest zero), with queue q's split ring
 * of 16 entries at q * 0x400 (descriptors), + 0x100 (avail), + 0x140 (used).
 * The fuzzer writes descriptors, indexes and buffers alike.
 */
#ifndef CVMM_FUZZ_RING_H
#define CVMM_FUZZ_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/gmem.h"
#include "cvmm/vdev.h"
#include "cvmm/virtq.h"

#define FUZZ_RING_MEM_SIZE (64u * 1024)
#define FUZZ_RING_SIZE 16
#define FUZZ_RING_STRIDE 0x400
#define FUZZ_RING_AVAIL 0x100
#define FUZZ_RING_USED 0x140

/* Ring options taken from the input's first byte. */
#define FUZZ_RING_EVENT_IDX 1
#define FUZZ_RING_INDIRECT 2

/* Most queues a device under test has. */
#define FUZZ_RING_MAX_QUEUES 8

struct fuzz_ring_mem {
	uint8_t *buf;
	struct gmem mem;
	int kick_fd[FUZZ_RING_MAX_QUEUES], call_fd[FUZZ_RING_MAX_QUEUES]; /* eventfds */
};

int fuzz_ring_mem_init(struct fuzz_ring_mem *m);
void fuzz_ring_mem_destroy(struct fuzz_ring_mem *m);
/* Guest memory := data (cut at the memory's size), then zeros. */
void fuzz_ring_mem_load(struct fuzz_ring_mem *m, const uint8_t *data, size_t len);
/* Sets up queue q's ring of vq over m as a host does, with the options. 0 or -errno. */
int fuzz_ring_setup(struct virtq *vq, const struct fuzz_ring_mem *m, unsigned q, uint8_t opts);

/* Puts a device model in front of the input as a host would, then hands it
 * to the fuzzer's thread: resets it, negotiates the offered features among
 * `features` (VERSION_1 always), sets its rings up over m (empty) and starts
 * its queues; then stops its workers (the fuzzer calls ops->handle_queue
 * itself, deterministically) and loads data as guest memory. 0 or -errno
 * (the model refused the features or a queue). */
int fuzz_ring_attach(struct vdev *dev, struct fuzz_ring_mem *m, uint64_t features,
		     const uint8_t *data, size_t len);

/* Reads every byte of every device-readable buffer of c and writes every
 * device-writable one, so a translation the walker got wrong faults here;
 * aborts on more buffers than VIRTQ_MAX_IOV. Returns c->in_len. */
uint32_t fuzz_ring_touch(const struct virtq_chain *c);

#endif
