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
	return (struct vcon_dev *)dev;
}

static void vcon_signal(int fd)
{
	(void)!eventfd_write(fd, 1);
}

/* Guest output: every readable byte of the chain goes to out_fd. A slow or
 * absent reader loses output rather than stalling the guest, as a UART would. */
static uint32_t vcon_tx_chain(void *arg, struct virtq_chain *c)
{
	struct vcon_dev *con = arg;
	int fd;

	pthread_mutex_lock(&con->lock);
	fd = con->out_fd;
	if (fd >= 0 && c->nout && writev(fd, c->iov, c->nout) < 0 && errno != EAGAIN)
		log_debug("virtio-console: output: %s", strerror(errno));
	pthread_mutex_unlock(&con->lock);
	return 0;
}

static void vcon_tx_kick(void *arg, uint32_t events)
{
	struct vcon_dev *con = arg;

	(void)events;
	virtq_kick_consume(&con->vqs[VCON_TX]);
	if (virtq_serve(&con->vqs[VCON_TX], con->chain, VCON_BUDGET, vcon_tx_chain, con) < 0)
		log_warn_ratelimited("virtio-console: malformed chain on the transmit queue; stopped until reset");
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

/* Moves pending input into the guest's receive buffers while both exist. */
static void vcon_rx_flush(struct vcon_dev *con)
{
	struct virtq *vq = &con->vqs[VCON_RX];
	bool was_full, pushed = false;
	int r;

	if (!con->started[VCON_RX])
		return;
	pthread_mutex_lock(&con->lock);
	was_full = con->input_len == VCON_INPUT_BUF;
	while (con->input_len) {
		r = virtq_pop(vq, con->chain);
		if (r < 0) {
			log_warn_ratelimited("virtio-console: malformed chain on the receive queue; stopped until reset");
			break;
		}
		/* No buffer now: the driver's next kick brings us back. */
		if (r == 0 && !virtq_enable_notify(vq))
			break;
		if (r == 0)
			continue;
		virtq_push(vq, con->chain->head, vcon_fill(con, con->chain));
		pushed = true;
	}
	if (was_full && con->input_len < VCON_INPUT_BUF)
		vcon_signal(con->room_fd);
	pthread_mutex_unlock(&con->lock);
	if (pushed)
		virtq_notify(vq);
}

static void vcon_rx_kick(void *arg, uint32_t events)
{
	struct vcon_dev *con = arg;

	(void)events;
	virtq_kick_consume(&con->vqs[VCON_RX]);
	vcon_rx_flush(con);
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
	pthread_mutex_lock(&c->lock);
	c->out_fd = fd;
	pthread_mutex_unlock(&c->lock);
}

static int vcon_queue_start(struct vdev *dev, unsigned q)
{
	struct vcon_dev *con = vcon_from_vdev(dev);
	struct worker_watch *w = q == VCON_RX ? &con->rx_watch : &con->tx_watch;
	int err;

	if (q > VCON_TX || con->started[q] || con->vqs[q].kick_fd < 0)
		return -EINVAL;
	/* The worker's watch set changes only while it is stopped. */
	worker_stop(&con->worker);
	err = worker_watch(&con->worker, con->vqs[q].kick_fd, EPOLLIN, w);
	if (!err)
		con->started[q] = true;
	if (worker_start(&con->worker) && !err)
		err = -EAGAIN;
	/* Serve what the driver queued before we watched its kicks. */
	vcon_signal(con->vqs[q].kick_fd);
	return err;
}

static void vcon_queue_stop(struct vdev *dev, unsigned q)
{
	struct vcon_dev *con = vcon_from_vdev(dev);

	if (q > VCON_TX || !con->started[q])
		return;
	worker_stop(&con->worker);
	worker_unwatch(&con->worker, con->vqs[q].kick_fd);
	con->started[q] = false;
	if (con->started[!q] && worker_start(&con->worker))
		log_err("virtio-console: cannot restart the worker");
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

static void vcon_vdev_destroy(struct vdev *dev)
{
	vcon_dev_destroy(vcon_from_vdev(dev));
}

static const struct vdev_ops vcon_vdev_ops = {
	.name = "virtio-console",
	.read_config = vcon_read_config,
	.queue_start = vcon_queue_start,
	.queue_stop = vcon_queue_stop,
	.reset = vcon_reset,
	.destroy = vcon_vdev_destroy,
};

int vcon_dev_init(struct vcon_dev *c)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->input_fd = c->room_fd = c->out_fd = -1;
	virtq_init(&c->vqs[VCON_RX]);
	virtq_init(&c->vqs[VCON_TX]);
	pthread_mutex_init(&c->lock, NULL);
	c->chain = malloc(sizeof(*c->chain));
	c->input_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!c->chain || c->input_fd < 0 || c->room_fd < 0) {
		err = c->chain ? -errno : -ENOMEM;
		goto fail;
	}
	err = worker_init(&c->worker, "virtio-console");
	if (err)
		goto fail;
	c->rx_watch = (struct worker_watch){ .fn = vcon_rx_kick, .arg = c };
	c->tx_watch = (struct worker_watch){ .fn = vcon_tx_kick, .arg = c };
	c->input_watch = (struct worker_watch){ .fn = vcon_input_event, .arg = c };
	err = worker_watch(&c->worker, c->input_fd, EPOLLIN, &c->input_watch);
	if (err) {
		worker_destroy(&c->worker);
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
	return 0;
fail:
	if (c->input_fd >= 0)
		close(c->input_fd);
	if (c->room_fd >= 0)
		close(c->room_fd);
	free(c->chain);
	pthread_mutex_destroy(&c->lock);
	return err;
}

void vcon_dev_destroy(struct vcon_dev *c)
{
	worker_destroy(&c->worker);
	virtq_destroy(&c->vqs[VCON_RX]);
	virtq_destroy(&c->vqs[VCON_TX]);
	close(c->input_fd);
	close(c->room_fd);
	free(c->chain);
	pthread_mutex_destroy(&c->lock);
}
