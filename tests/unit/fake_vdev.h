/*
 * The fake device model of the unit tests: records what a host (a
 * transport, the vhost-user server) asks of it, and runs no worker (its
 * queue_start / queue_stop hooks do all, as a vhost-user front-end device's
 * would).
 */
#ifndef CVMM_TEST_FAKE_VDEV_H
#define CVMM_TEST_FAKE_VDEV_H

#include "cvmm/vdev.h"

#define FAKE_MEM_SIZE 0x100000
#define FAKE_QUEUES 2
#define FAKE_CONFIG_MAX 64

struct fake_vdev {
	struct vdev dev;
	struct virtq vqs[FAKE_QUEUES];
	uint8_t config[FAKE_CONFIG_MAX];
	int started[FAKE_QUEUES], stopped[FAKE_QUEUES], resets, writes;
	int start_result;          /* queue_start fails with it when nonzero */
	bool notify_on_write;      /* write_config calls vdev_config_changed */
	uint64_t last_features;    /* the last set_features */
	struct {                   /* the queue as it was when it last started */
		uint16_t size, last_avail;
		bool event_idx, indirect, inflight;
		int kick, call;
	} at_start[FAKE_QUEUES];
	uint32_t woff, wlen;       /* the last config write */
	uint8_t wbuf[FAKE_CONFIG_MAX];
	struct gmem mem;
	uint8_t *mem_buf;
};

/* A device with id device_id, 2 queues of at most 64, 8 config bytes
 * 11 22 .. 88, features VERSION_1 | EVENT_IDX | bit 0, and 1 MiB of
 * guest memory at address 0 (dev.mem). Tests change what they need. */
struct fake_vdev *fake_vdev_new(uint32_t device_id);
void fake_vdev_free(struct fake_vdev *f);

#endif
