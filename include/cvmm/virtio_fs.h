/*
 * virtio-fs as virtio 1.2 (5.11) defines it: the device id, the config
 * space (the mount tag and the number of request queues) and the queue
 * layout (queue 0 is the high-priority queue, then the request queues).
 * cvmm has no in-process file system: the FUSE requests go to a vhost-user
 * back-end (virtiofsd) and cvmm builds the config (vhost/frontend/vu_fe_dev.c).
 */
#ifndef CVMM_VIRTIO_FS_H
#define CVMM_VIRTIO_FS_H

#include <stdint.h>

#define VIRTIO_ID_FS 26

/* The tag is up to 36 bytes, NUL-padded, not NUL-terminated when it has 36. */
#define VIRTIO_FS_TAG_LEN 36
/* Queue 0: high priority (FORGET, interrupts); request queues follow. */
#define VIRTIO_FS_HIPRIO_QUEUES 1

struct virtio_fs_config {
	uint8_t tag[VIRTIO_FS_TAG_LEN];
	uint32_t num_request_queues;   /* little-endian */
	/* notify_buf_size follows only with VIRTIO_FS_F_NOTIFICATION, which
	 * cvmm does not offer. */
} __attribute__((packed));

#endif
