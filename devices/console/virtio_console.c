#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/virtio_console.h"

#define VCON_RX 0
#define VCON_TX 1
#define VCON_BUDGET 64

static struct vcon_dev *vcon_from_vdev(struct vdev *dev)
{
	return container_of(dev, struct vcon_dev, vdev);
}

static void vcon_signal(int fd)
{
	(void)!eventfd_write(fd, 1);
}

/* Guest output: every readable byte of the chain goes to out_fd. On a
 * socket a slow or absent reader loses output rather than stalling the
 * guest, as a UART would; a blocking stdout holds the guest's console (and
 * only it) until its reader catches up. */
static uint32_t vcon_tx_chain(void *arg, struct virtq_chain *c)
{
	struct vcon_dev *con = arg;
	int fd;

	pthread_mutex_lock(&con->out_lock);
	fd = con->out_fd;
	if (fd >= 0 && c->nout && writev(fd, c->iov, c->nout) < 0 && errno != EAGAIN)
		log_debug("virtio-console: output: %s", strerror(errno));
	pthread_mutex_unlock(&con->out_lock);
	return 0;
}

/* Copies pending input into one chain's writable buffers; returns bytes copied. */
static uint32_t vcon_fill(struct vcon_dev *con, struct virtq_chain *c)
{
	uint32_t done = 0;

	for (unsigned i = c->nout; i < c->nout + c->nin && con->input_len; i++) {
		uint8_t *dst = c->iov[i].iov_base;
		size_t room = c->iov[i].iov_len;

		while (room && con->input_len) {
			size_t run = VCON_INPUT_BUF - con->input_head;

			if (run > con->input_len)
				run = con->input_len;
			if (run > room)
				run = room;
			memcpy(dst, con->input + con->input_head, run);
			con->input_head = (con->input_head + run) % VCON_INPUT_BUF;
			con->input_len -= run;
			dst += run;
			room -= run;
			done += (uint32_t)run;
		}
	}
	return done;
}

/* Moves pending input into the guest's receive buffers while both exist,
 * VCON_BUDGET chains a pass (chains without room take a turn too). */
static void vcon_rx_flush(struct vcon_dev *con)
{
	struct virtq *vq = &con->vqs[VCON_RX];
	bool was_full, pushed = false;
	unsigned n = 0;
	int r;

	if (!vdev_queue_started(&con->vdev, VCON_RX))
		return;
	pthread_mutex_lock(&con->lock);
	was_full = con->input_len == VCON_INPUT_BUF;
	while (con->input_len) {
		if (n++ == VCON_BUDGET) {
			vdev_queue_requeue(&con->vdev, VCON_RX);
			break;
		}
		/* No buffer now: the driver's next kick brings us back. */
		r = virtq_pop_or_notify(vq, con->chain);
		if (r <= 0)
			break;
		virtq_push(vq, con->chain->head, vcon_fill(con, con->chain));
		pushed = true;
	}
	if (was_full && con->input_len < VCON_INPUT_BUF)
		vcon_signal(con->room_fd);
	pthread_mutex_unlock(&con->lock);
	if (pushed)
		virtq_notify(vq);
}

static void vcon_handle_queue(struct vdev *dev, unsigned q)
{
	struct vcon_dev *con = vcon_from_vdev(dev);

	if (q == VCON_RX)
		vcon_rx_flush(con);
	else
		virtq_serve(&dev->vqs[VCON_TX], con->chain, VCON_BUDGET, vcon_tx_chain, con);
}

static void vcon_input_event(void *arg, uint32_t events)
{
	struct vcon_dev *con = arg;
	eventfd_t n;

	(void)events;
	(void)!eventfd_read(con->input_fd, &n);
	vcon_rx_flush(con);
}

size_t vcon_dev_input(struct vcon_dev *c, const uint8_t *buf, size_t len)
{
	size_t taken = 0;

	pthread_mutex_lock(&c->lock);
	while (taken < len && c->input_len < VCON_INPUT_BUF) {
		c->input[(c->input_head + c->input_len) % VCON_INPUT_BUF] = buf[taken++];
		c->input_len++;
	}
	pthread_mutex_unlock(&c->lock);
	if (taken)
		vcon_signal(c->input_fd);
	return taken;
}

size_t vcon_dev_room(struct vcon_dev *c)
{
	size_t room;

	pthread_mutex_lock(&c->lock);
	room = VCON_INPUT_BUF - c->input_len;
	pthread_mutex_unlock(&c->lock);
	return room;
}

void vcon_dev_set_output(struct vcon_dev *c, int fd)
{
	pthread_mutex_lock(&c->out_lock);
	c->out_fd = fd;
	pthread_mutex_unlock(&c->out_lock);
}

static void vcon_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_console_config cfg = { .max_nr_ports = 1 };

	(void)dev;
	memcpy(buf, (uint8_t *)&cfg + off, len);
}

static void vcon_reset(struct vdev *dev)
{
	struct vcon_dev *con = vcon_from_vdev(dev);

	pthread_mutex_lock(&con->lock);
	con->input_head = con->input_len = 0;
	pthread_mutex_unlock(&con->lock);
	vcon_signal(con->room_fd);
}

static const struct vdev_ops vcon_vdev_ops = {
	.name = "virtio-console",
	.read_config = vcon_read_config,
	.handle_queue = vcon_handle_queue,
	.reset = vcon_reset,
};

int vcon_dev_init(struct vcon_dev *c)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->input_fd = c->room_fd = c->out_fd = -1;
	virtq_init(&c->vqs[VCON_RX]);
	virtq_init(&c->vqs[VCON_TX]);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->out_lock, NULL);
	c->chain = malloc(sizeof(*c->chain));
	c->input_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!c->chain || c->input_fd < 0 || c->room_fd < 0) {
		err = c->chain ? -errno : -ENOMEM;
		goto fail;
	}
	c->vdev = (struct vdev){
		.ops = &vcon_vdev_ops,
		.device_id = VIRTIO_ID_CONSOLE,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
				 VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
		.num_queues = 2,
		.queue_size_max = VCON_QUEUE_SIZE,
		.vqs = c->vqs,
		.config_size = sizeof(struct virtio_console_config),
	};
	/* One worker serves both queues and the input eventfd. */
	err = vdev_init(&c->vdev, 1, "virtio-console");
	if (err)
		goto fail;
	c->input_watch = (struct worker_watch){ .fn = vcon_input_event, .arg = c };
	err = vdev_watch(&c->vdev, 0, c->input_fd, EPOLLIN, &c->input_watch);
	if (err) {
		vdev_destroy(&c->vdev);
		goto fail;
	}
	return 0;
fail:
	if (c->input_fd >= 0)
		close(c->input_fd);
	if (c->room_fd >= 0)
		close(c->room_fd);
	free(c->chain);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->out_lock);
	return err;
}

void vcon_dev_destroy(struct vcon_dev *c)
{
	vdev_destroy(&c->vdev);
	virtq_destroy(&c->vqs[VCON_RX]);
	virtq_destroy(&c->vqs[VCON_TX]);
	close(c->input_fd);
	close(c->room_fd);
	free(c->chain);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->out_lock);
}
