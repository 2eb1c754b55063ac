/*
 * Split virtqueue core (virtio 1.2, 2.7): the one place that reads rings.
 * Rings live in guest memory and the guest may rewrite them at any moment:
 * every descriptor is read once, validated, and only the copy is used.
 * No I/O here: devices pop chains as iovecs, do their work and push.
 *
 * Locking: a virtq is used by one thread at a time (its device's worker);
 * the host sets it up and tears it down only while that worker is stopped.
 * Guest memory is little-endian; cvmm's hosts (x86_64, aarch64) are too.
 */
#ifndef CVMM_VIRTQ_H
#define CVMM_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvmm/gmem.h"

#define VIRTQ_MAX_SIZE 32768
/* Bound on the iovecs of one chain (Linux's UIO_MAXIOV). */
#define VIRTQ_MAX_IOV 1024

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Feature bits (bit numbers, not masks) the core itself implements. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_BIT(b) (1ULL << (b))

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event */
};

/* vhost-user inflight tracking, split layout (vhost-user.rst "Inflight I/O
 * tracking"): lives in shared memory the front-end keeps across back-end
 * restarts, so requests popped but not completed can be resubmitted. */
struct virtq_inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct virtq_inflight {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct virtq_inflight_desc desc[];
};

/* One popped chain: iov[0, nout) is device-readable, iov[nout, nout+nin)
 * device-writable; out_len/in_len are their byte totals. */
struct virtq_chain {
	uint16_t head;
	uint16_t nout, nin;
	uint32_t out_len, in_len;
	struct iovec iov[VIRTQ_MAX_IOV];
};

struct virtq {
	/* Set by the host with virtq_setup() before the queue starts. */
	const struct gmem *mem;
	uint16_t size;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	bool event_idx;   /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;    /* VIRTIO_F_INDIRECT_DESC negotiated */
	int kick_fd;      /* eventfd the driver's notifications arrive on; -1 if none */
	int call_fd;      /* eventfd that interrupts the driver; -1 if none */
	struct virtq_inflight *inflight; /* optional (vhost-user INFLIGHT_SHMFD) */

	/* Ring state, owned by the worker while the queue runs. */
	uint16_t last_avail_idx;
	uint16_t used_idx;
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool broken;      /* the driver broke the ring: stop using it until reset */
	/* Called once, on the thread using the ring, when the driver breaks
	 * it (the queue runtime sets it when the queue starts). */
	void (*on_broken)(struct virtq *vq, void *arg);
	void *on_broken_arg;
	uint64_t inflight_counter;
	uint16_t *resubmit; /* heads to hand out again before the avail ring, oldest first */
	uint16_t nresubmit, resubmit_pos;
};

/* Puts vq in its initial (reset) state: no rings, fds -1. */
void virtq_init(struct virtq *vq);
/* Frees what virtq_inflight_restore allocated; fds belong to the host. */
void virtq_destroy(struct virtq *vq);

/* Points vq at rings at the given guest addresses, checking size (a power of
 * two, at most VIRTQ_MAX_SIZE), alignment (16/2/4 bytes) and that each ring
 * lies wholly inside one region of mem. Returns 0 or -EINVAL; vq is left
 * unchanged on error. used_idx is read from the used ring; last_avail_idx
 * is the host's to set (0 after virtq_init, SET_VRING_BASE in vhost-user). */
int virtq_setup(struct virtq *vq, const struct gmem *mem, uint16_t size,
		uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa);

/* Takes the next available chain. Returns 1 with *c filled, 0 when the ring
 * is empty, -EIO when the driver put a malformed chain on it (vq->broken is
 * set, on_broken called the first time, and every later call returns -EIO
 * until virtq_setup again). */
int virtq_pop(struct virtq *vq, struct virtq_chain *c);
/* virtq_pop for a device that waits for buffers: when the ring is empty it
 * asks the driver for a kick (rechecking, so none is missed) and returns 0. */
int virtq_pop_or_notify(struct virtq *vq, struct virtq_chain *c);
/* Returns a chain to the driver with len bytes written into its buffers. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* The same for several chains the driver must see together (a frame over
 * several MRG_RXBUF buffers): virtq_push_stage puts the i-th of them in the
 * used ring, unpublished; virtq_push_publish then publishes the first n
 * staged with one used-index update. */
void virtq_push_stage(struct virtq *vq, unsigned i, uint16_t head, uint32_t len);
void virtq_push_publish(struct virtq *vq, unsigned n);
/* True when the driver wants an interrupt for what was pushed since the last
 * notification (EVENT_IDX or the NO_INTERRUPT flag). Updates that state. */
bool virtq_should_notify(struct virtq *vq);
/* Signals call_fd if virtq_should_notify says so. */
void virtq_notify(struct virtq *vq);
/* Asks the driver not to kick (used while draining a busy ring). */
void virtq_disable_notify(struct virtq *vq);
/* Asks for kicks again. Returns true when buffers arrived meanwhile: the
 * caller must keep processing, or a kick may have been missed. */
bool virtq_enable_notify(struct virtq *vq);
/* Consumes the pending notifications on kick_fd (an eventfd), as a kick
 * handler does before it drains the ring. */
void virtq_kick_consume(struct virtq *vq);
/* True when the avail ring holds entries not yet popped. */
bool virtq_has_avail(struct virtq *vq);

/* Handles one chain for virtq_serve; returns how many bytes it wrote into
 * the chain's device-writable buffers. */
typedef uint32_t (*virtq_handler_fn)(void *arg, struct virtq_chain *c);

/* The drain loop every device's kick handler runs: pops up to budget chains,
 * hands each to handle and pushes it, with driver notifications off while
 * draining and back on (rechecked) before returning, then signals the driver
 * once. When the budget runs out with chains waiting, it kicks kick_fd itself
 * so the worker comes back after serving its other fds. c is scratch space.
 * Returns the number of chains served, or -EIO when the ring is broken. */
int virtq_serve(struct virtq *vq, struct virtq_chain *c, unsigned budget,
		virtq_handler_fn handle, void *arg);

/* Attaches the inflight region after setup and resumes from it: finishes the
 * last batch the previous back-end published, sets last_avail_idx past every
 * request still in flight and queues those for virtq_pop to hand out again,
 * oldest first. Returns 0, -EINVAL (region inconsistent with the ring) or
 * -ENOMEM. */
int virtq_inflight_restore(struct virtq *vq, struct virtq_inflight *inflight);
/* Size of one queue's inflight region for a ring of size entries. */
size_t virtq_inflight_size(uint16_t size);

/* Event-index test of virtio 1.2 2.7.7.2: has the driver asked to be told
 * about used index new, given it was last told about old? */
static inline bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
