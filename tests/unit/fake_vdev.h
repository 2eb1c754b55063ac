/* A device model for transport tests: records what the transport asks of it. */
#ifndef CVMM_TEST_FAKE_VDEV_H
#define CVMM_TEST_FAKE_VDEV_H

#include "cvmm/vdev.h"

#define FAKE_MEM_SIZE 0x100000
#define FAKE_QUEUES 2

struct fake_vdev {
	struct vdev dev;
	struct virtq vqs[FAKE_QUEUES];
	uint8_t config[8];
	int started[FAKE_QUEUES], stopped[FAKE_QUEUES], resets;
	struct gmem mem;
	uint8_t *mem_buf;
};

/* A device with id device_id, 2 queues of at most 64, 8 config bytes
 * 11 22 .. 88, features VERSION_1 | EVENT_IDX | bit 0, and 1 MiB of
 * guest memory at address 0. */
struct fake_vdev *fake_vdev_new(uint32_t device_id);
void fake_vdev_free(struct fake_vdev *f);

#endif
