/*
 * virtio-console (virtio 1.2 5.3), port 0 only (no MULTIPORT): receiveq 0
 * carries host input to the guest, transmitq 1 guest output to the host.
 * The host side is the same struct console the 8250 uses (--console
 * tty|file=|socket=), reached through vcon_dev_input/room/set_output.
 * One worker thread (the core's) serves both queues and the input.
 */
#ifndef CVMM_VIRTIO_CONSOLE_H
#define CVMM_VIRTIO_CONSOLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/vdev.h"

#define VIRTIO_ID_CONSOLE 3
#define VCON_QUEUE_SIZE 64
#define VCON_INPUT_BUF 4096

struct virtio_console_config {
	uint16_t cols, rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
};

struct vcon_dev {
	struct vdev vdev;
	struct virtq vqs[2];
	struct worker_watch input_watch;
	struct virtq_chain *chain;

	pthread_mutex_t lock;         /* guards the input FIFO */
	/* Guards out_fd, apart from lock: a write to a blocking stdout may
	 * wait, and the VMM's main loop takes lock to feed input. */
	pthread_mutex_t out_lock;
	uint8_t input[VCON_INPUT_BUF]; /* host input not yet in guest buffers */
	size_t input_head, input_len;
	int input_fd;                 /* eventfd: input arrived */
	int room_fd;                  /* eventfd: the FIFO has room again */
	int out_fd;                   /* where guest output goes, -1 drops it */
};

int vcon_dev_init(struct vcon_dev *c);
void vcon_dev_destroy(struct vcon_dev *c);
/* The console_sink functions (any thread). */
size_t vcon_dev_input(struct vcon_dev *c, const uint8_t *buf, size_t len);
size_t vcon_dev_room(struct vcon_dev *c);
void vcon_dev_set_output(struct vcon_dev *c, int fd);

#endif
