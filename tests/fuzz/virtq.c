/*
 * Fuzz target: the ring core alone (devices/virtio/virtq.c): the chain
 * walker (descriptor loops, indexes, lengths, indirect tables, address
 * ranges), used-ring updates, event-index notification, and inflight
 * restore from a region a front-end wrote (resubmission included), over
 * fuzzed guest memory.
 *
 * Input: u8 options (bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 an inflight region,
 * 3 return chains in staged batches), u16 last_avail_idx, the inflight
 * region (virtq_inflight_size(16) bytes, copied to the heap so an overrun
 * shows), then guest memory (the ring at 0, fuzz_ring.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"
#include "lib/fuzz_ring.h"

#define VQ_FUZZ_INFLIGHT 4
#define VQ_FUZZ_BATCH 8
#define VQ_FUZZ_BUDGET 64

static struct fuzz_ring_mem vq_fuzz_mem;
static struct virtq_chain *vq_fuzz_chain;

static void vq_fuzz_cleanup(void)
{
	fuzz_ring_mem_destroy(&vq_fuzz_mem);
	free(vq_fuzz_chain);
}

static unsigned vq_fuzz_broken_calls;

static void vq_fuzz_on_broken(struct virtq *vq, void *arg)
{
	(void)vq;
	(void)arg;
	vq_fuzz_broken_calls++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	vq_fuzz_chain = malloc(sizeof(*vq_fuzz_chain));
	if (!vq_fuzz_chain || fuzz_ring_mem_init(&vq_fuzz_mem))
		abort();
	atexit(vq_fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint8_t opts = fuzz_input_u8(&in);
	uint16_t last_avail = fuzz_input_u16(&in);
	size_t inflight_size = virtq_inflight_size(FUZZ_RING_SIZE);
	struct virtq_inflight *inflight = malloc(inflight_size);
	struct virtq_chain *c = vq_fuzz_chain;
	struct virtq vq;
	unsigned staged = 0;

	if (!inflight)
		abort();
	fuzz_input_bytes(&in, inflight, inflight_size);
	fuzz_ring_mem_load(&vq_fuzz_mem, in.data, in.size);
	virtq_init(&vq);
	vq_fuzz_broken_calls = 0;
	if (fuzz_ring_setup(&vq, &vq_fuzz_mem, 0, opts))
		abort();
	vq.on_broken = vq_fuzz_on_broken;
	vq.last_avail_idx = last_avail;
	if ((opts & VQ_FUZZ_INFLIGHT) && virtq_inflight_restore(&vq, inflight))
		goto out;
	for (unsigned n = 0; n < VQ_FUZZ_BUDGET; n++) {
		int r = n & 1 ? virtq_pop(&vq, c) : virtq_pop_or_notify(&vq, c);

		if (r != 1)
			break;
		if (opts & 8) {
			virtq_push_stage(&vq, staged++, c->head, fuzz_ring_touch(c));
			if (staged == VQ_FUZZ_BATCH) {
				virtq_push_publish(&vq, staged);
				staged = 0;
			}
		} else {
			virtq_push(&vq, c->head, fuzz_ring_touch(c));
		}
		if (n % 4 == 3)
			virtq_notify(&vq);
	}
	if (staged)
		virtq_push_publish(&vq, staged);
	virtq_should_notify(&vq);
	virtq_has_avail(&vq);
	virtq_enable_notify(&vq);
	virtq_disable_notify(&vq);
	/* A broken ring is reported once, and stays broken. */
	if (vq.broken && (vq_fuzz_broken_calls != 1 || virtq_pop(&vq, c) != -EIO))
		abort();
out:
	virtq_destroy(&vq);
	free(inflight);
	return 0;
}
