/* The queue runtime (devices/virtio/vdev.c): the first kick, broken rings
 * (DEVICE_NEEDS_RESET and the config interrupt on a transport, the device
 * served again after the driver's reset), worker start/stop. */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/virtio_mmio.h"
#include "cvmm/virtio_pci.h"
#include "check_run.h"
#include "guest_ring.h"

#define TV_MEM 0x100000
#define TV_RING 0x10000     /* desc; avail +0x1000, used +0x2000 */
#define TV_BUF 0x40000
#define TV_QSIZE 16
#define TV_WAIT_MS 10000

/* A one-queue device whose handler returns every chain with 0 bytes. */
struct tv_dev {
	struct vdev vdev;
	struct virtq vq;
	struct virtq_chain *chain;
	uint8_t *mem_buf;
	struct gmem mem;
	struct guest_ring ring;   /* the driver's side of the queue */
	int broken_calls;      /* host_queue_broken, when no transport is the host */
	unsigned broken_q;
};

static uint32_t tv_chain(void *arg, struct virtq_chain *c)
{
	(void)arg;
	(void)c;
	return 0;
}

static void tv_handle_queue(struct vdev *dev, unsigned q)
{
	struct tv_dev *t = container_of(dev, struct tv_dev, vdev);

	virtq_serve(&dev->vqs[q], t->chain, 64, tv_chain, t);
}

static void tv_read_config(struct vdev *dev, uint32_t off, void *buf, uint32_t len)
{
	(void)dev;
	(void)off;
	memset(buf, 0, len);
}

static const struct vdev_ops tv_ops = {
	.name = "tv",
	.read_config = tv_read_config,
	.handle_queue = tv_handle_queue,
};

static struct tv_dev *tv_new(void)
{
	struct tv_dev *t = calloc(1, sizeof(*t));
	struct gmem_region r = { .gpa = 0, .size = TV_MEM, .fd = -1 };

	ck_assert_ptr_nonnull(t);
	t->mem_buf = calloc(1, TV_MEM);
	t->chain = malloc(sizeof(*t->chain));
	r.hva = t->mem_buf;
	gmem_init(&t->mem);
	ck_assert_int_eq(gmem_add(&t->mem, &r), 0);
	guest_ring_init(&t->ring, t->mem_buf, TV_QSIZE, TV_RING, TV_RING + 0x1000, TV_RING + 0x2000);
	virtq_init(&t->vq);
	t->vdev = (struct vdev){
		.ops = &tv_ops, .device_id = 4, .num_queues = 1, .queue_size_max = TV_QSIZE,
		.vqs = &t->vq, .mem = &t->mem,
		.host_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
	};
	ck_assert_int_eq(vdev_init(&t->vdev, 1, "tv"), 0);
	return t;
}

static void tv_free(struct tv_dev *t)
{
	vdev_destroy(&t->vdev);
	virtq_destroy(&t->vq);
	gmem_destroy(&t->mem);
	free(t->chain);
	free(t->mem_buf);
	free(t);
}

/* Offers a one-descriptor chain at descriptor 0, or with loop one that
 * points at itself (the ring core refuses it). */
static void tv_offer(struct tv_dev *t, bool loop)
{
	struct guest_buf b = { TV_BUF, 64, true };

	guest_ring_write_chain(&t->ring, 0, &b, 1);
	if (loop) {
		guest_ring_desc(&t->ring)[0].flags |= VIRTQ_DESC_F_NEXT;
		guest_ring_desc(&t->ring)[0].next = 0;
	}
	guest_ring_publish(&t->ring, 0);
}

static void tv_wait_used(struct tv_dev *t, uint16_t idx)
{
	ck_assert(guest_ring_wait_used(&t->ring, idx, TV_WAIT_MS));
}

/* True when fd (an eventfd) becomes readable within the wait; consumes it. */
static bool tv_fired(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t n;

	if (poll(&p, 1, TV_WAIT_MS) != 1)
		return false;
	return read(fd, &n, sizeof(n)) == sizeof(n);
}

static void tv_host_broken(void *host, unsigned q)
{
	struct tv_dev *t = host;

	t->broken_calls++;
	t->broken_q = q;
}

/* Directly hosted (as the vhost-user server does): rings set up by hand. */
static void tv_start_direct(struct tv_dev *t, int kick, int call)
{
	ck_assert_int_eq(vdev_set_features(&t->vdev, VIRTIO_BIT(VIRTIO_F_VERSION_1)), 0);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, TV_QSIZE, TV_RING, TV_RING + 0x1000,
				     TV_RING + 0x2000), 0);
	t->vq.kick_fd = kick;
	t->vq.call_fd = call;
	ck_assert_int_eq(vdev_queue_start(&t->vdev, 0), 0);
}

/* Chains the driver queued before the queue started are served without a
 * kick: the core kicks a starting queue once. */
START_TEST(first_kick_serves_queued_chains)
{
	struct tv_dev *t = tv_new();
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	tv_offer(t, false);
	tv_offer(t, false);
	tv_start_direct(t, kick, call);
	tv_wait_used(t, 2);
	ck_assert(tv_fired(call));
	ck_assert(vdev_queue_started(&t->vdev, 0));
	vdev_queue_stop(&t->vdev, 0);
	ck_assert(!vdev_queue_started(&t->vdev, 0));
	/* Stopped: a kick is not served. */
	tv_offer(t, false);
	ck_assert_int_eq(eventfd_write(kick, 1), 0);
	usleep(100000);
	ck_assert_uint_eq(guest_ring_used_idx(&t->ring), 2);
	tv_free(t);
	close(kick);
	close(call);
}
END_TEST

/* A malformed chain tells the host once, with the queue's index; the ring
 * then serves nothing more. */
START_TEST(broken_ring_tells_the_host_once)
{
	struct tv_dev *t = tv_new();
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	vdev_set_host(&t->vdev, NULL, tv_host_broken, t);
	tv_start_direct(t, kick, call);
	tv_offer(t, true);
	ck_assert_int_eq(eventfd_write(kick, 1), 0);
	for (int i = 0; i < TV_WAIT_MS / 10 && !__atomic_load_n(&t->vq.broken, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	vdev_queue_stop(&t->vdev, 0);
	ck_assert(t->vq.broken);
	ck_assert_int_eq(t->broken_calls, 1);
	ck_assert_uint_eq(t->broken_q, 0);
	/* Kicked again after a restart: still broken, not reported twice. */
	ck_assert_int_eq(vdev_queue_start(&t->vdev, 0), 0);
	ck_assert_int_eq(eventfd_write(kick, 1), 0);
	usleep(100000);
	vdev_queue_stop(&t->vdev, 0);
	ck_assert_int_eq(t->broken_calls, 1);
	ck_assert_uint_eq(guest_ring_used_idx(&t->ring), 0);
	tv_free(t);
	close(kick);
	close(call);
}
END_TEST

/* A host that goes away while a model thread reports a config change: once
 * vdev_set_host detaches it, its callback has finished and none follows. */
struct tv_slow_host {
	struct tv_dev *t;
	int calls;
	bool in_callback;
	bool detached;
	bool called_after_detach;
};

static void tv_slow_config_changed(void *host)
{
	struct tv_slow_host *h = host;

	__atomic_store_n(&h->in_callback, true, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&h->detached, __ATOMIC_SEQ_CST))
		h->called_after_detach = true;
	usleep(200000);
	h->calls++;
	__atomic_store_n(&h->in_callback, false, __ATOMIC_SEQ_CST);
}

static void *tv_report_thread(void *arg)
{
	struct tv_slow_host *h = arg;

	for (int i = 0; i < 3; i++)
		vdev_config_changed(&h->t->vdev);
	return NULL;
}

START_TEST(detached_host_is_not_called)
{
	struct tv_slow_host h = { .t = tv_new() };
	pthread_t thr;

	vdev_set_host(&h.t->vdev, tv_slow_config_changed, NULL, &h);
	pthread_create(&thr, NULL, tv_report_thread, &h);
	while (!__atomic_load_n(&h.in_callback, __ATOMIC_SEQ_CST))
		usleep(1000);
	vdev_set_host(&h.t->vdev, NULL, NULL, NULL);
	ck_assert_msg(!__atomic_load_n(&h.in_callback, __ATOMIC_SEQ_CST),
		      "the host was detached while its callback still ran");
	__atomic_store_n(&h.detached, true, __ATOMIC_SEQ_CST);
	pthread_join(thr, NULL);
	ck_assert(!h.called_after_detach);
	ck_assert_int_ge(h.calls, 1);
	tv_free(h.t);
}
END_TEST

/* ---- behind virtio-mmio ---- */

static void tv_mmio_bring_up(struct vmmio *m)
{
	vmmio_write(m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vmmio_write(m, 0x024, 4, 1);
	vmmio_write(m, 0x020, 4, 1); /* VERSION_1 */
	vmmio_write(m, 0x024, 4, 0);
	vmmio_write(m, 0x020, 4, 0);
	vmmio_write(m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK);
	vmmio_write(m, 0x030, 4, 0);
	vmmio_write(m, 0x038, 4, TV_QSIZE);
	vmmio_write(m, 0x080, 4, TV_RING);
	vmmio_write(m, 0x084, 4, 0);
	vmmio_write(m, 0x090, 4, TV_RING + 0x1000);
	vmmio_write(m, 0x0a0, 4, TV_RING + 0x2000);
	vmmio_write(m, 0x044, 4, 1);
	vmmio_write(m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* virtio 1.2 2.1.2: a device that hits an error it cannot recover from sets
 * DEVICE_NEEDS_RESET and sends a configuration change notification; after
 * the driver's reset it works again. */
START_TEST(broken_ring_needs_reset_over_mmio)
{
	struct tv_dev *t = tv_new();
	struct vmmio m;

	ck_assert_int_eq(vmmio_init(&m, &t->vdev, 0xd0000000ULL, 5), 0);
	tv_mmio_bring_up(&m);
	ck_assert(vdev_queue_started(&t->vdev, 0));
	ck_assert(!(vmmio_read(&m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	tv_offer(t, true);
	vmmio_write(&m, 0x050, 4, 0);
	ck_assert_msg(tv_fired(m.tr.config_fd), "no configuration change interrupt");
	ck_assert(vmmio_read(&m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	ck_assert(vmmio_read(&m, 0x060, 4) & VIRTIO_ISR_CONFIG);

	/* The driver resets and starts over on a clean ring. */
	vmmio_write(&m, 0x070, 4, 0);
	ck_assert_uint_eq(vmmio_read(&m, 0x070, 4), 0);
	memset(t->mem_buf + TV_RING, 0, 0x3000);
	guest_ring_init(&t->ring, t->mem_buf, TV_QSIZE, TV_RING, TV_RING + 0x1000, TV_RING + 0x2000);
	tv_offer(t, false);
	tv_mmio_bring_up(&m);
	tv_wait_used(t, 1);
	ck_assert(!(vmmio_read(&m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	vmmio_destroy(&m);
	tv_free(t);
}
END_TEST

/* ---- behind virtio-pci (the common configuration structure in BAR0) ---- */

static void tv_pci_bring_up(struct vpci *p)
{
	vpci_bar_write(p, 20, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vpci_bar_write(p, 8, 4, 1);
	vpci_bar_write(p, 12, 4, 1); /* VERSION_1 */
	vpci_bar_write(p, 20, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK);
	vpci_bar_write(p, 22, 2, 0);
	vpci_bar_write(p, 24, 2, TV_QSIZE);
	vpci_bar_write(p, 32, 4, TV_RING);
	vpci_bar_write(p, 40, 4, TV_RING + 0x1000);
	vpci_bar_write(p, 48, 4, TV_RING + 0x2000);
	vpci_bar_write(p, 28, 2, 1);
	vpci_bar_write(p, 20, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void tv_msix_changed(void *ctx, struct vpci *p)
{
	(void)ctx;
	(void)p;
}

static void tv_bar_changed(void *ctx, struct vpci *p)
{
	(void)ctx;
	(void)p;
}

static const struct vpci_host tv_pci_host = {
	.msix_changed = tv_msix_changed,
	.bar_changed = tv_bar_changed,
};

START_TEST(broken_ring_needs_reset_over_pci)
{
	struct tv_dev *t = tv_new();
	struct vpci p;

	ck_assert_int_eq(vpci_init(&p, &t->vdev, 0xc0000000u, &tv_pci_host, t), 0);
	tv_pci_bring_up(&p);
	ck_assert(vdev_queue_started(&t->vdev, 0));
	tv_offer(t, true);
	vpci_bar_write(&p, VPCI_NOTIFY_OFF, 2, 0);
	ck_assert_msg(tv_fired(p.tr.config_fd), "no configuration change interrupt");
	ck_assert(vpci_bar_read(&p, 20, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	ck_assert(vpci_bar_read(&p, VPCI_ISR_OFF, 1) & VIRTIO_ISR_CONFIG);

	vpci_bar_write(&p, 20, 1, 0);
	ck_assert_uint_eq(vpci_bar_read(&p, 20, 1), 0);
	memset(t->mem_buf + TV_RING, 0, 0x3000);
	guest_ring_init(&t->ring, t->mem_buf, TV_QSIZE, TV_RING, TV_RING + 0x1000, TV_RING + 0x2000);
	tv_offer(t, false);
	tv_pci_bring_up(&p);
	tv_wait_used(t, 1);
	ck_assert(!(vpci_bar_read(&p, 20, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	vpci_destroy(&p);
	tv_free(t);
}
END_TEST

CHECK_MAIN("vdev",
	   first_kick_serves_queued_chains,
	   broken_ring_tells_the_host_once,
	   detached_host_is_not_called,
	   broken_ring_needs_reset_over_mmio,
	   broken_ring_needs_reset_over_pci)
