/* virtio-mmio register semantics and the transport state machine. */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/virtio_vm.h"
#include "cvmm/virtio_mmio.h"
#include "fake_vdev.h"
#include "check_run.h"

#define TM_MEM FAKE_MEM_SIZE
#define TM_BASE 0xd0000000ULL

struct mmio_t {
	struct fake_vdev *f;
	struct vmmio m;
};

static struct mmio_t *tm_new(void)
{
	struct mmio_t *t = calloc(1, sizeof(*t));

	t->f = fake_vdev_new(4);
	ck_assert_int_eq(vmmio_init(&t->m, &t->f->dev, TM_BASE, 5), 0);
	return t;
}

static void tm_free(struct mmio_t *t)
{
	vmmio_destroy(&t->m);
	fake_vdev_free(t->f);
	free(t);
}

static void tm_negotiate(struct mmio_t *t, uint32_t high, uint32_t low)
{
	vmmio_write(&t->m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vmmio_write(&t->m, 0x024, 4, 1);
	vmmio_write(&t->m, 0x020, 4, high);
	vmmio_write(&t->m, 0x024, 4, 0);
	vmmio_write(&t->m, 0x020, 4, low);
	vmmio_write(&t->m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void tm_setup_queue(struct mmio_t *t, uint32_t q, uint32_t num, uint64_t desc)
{
	vmmio_write(&t->m, 0x030, 4, q);
	vmmio_write(&t->m, 0x038, 4, num);
	vmmio_write(&t->m, 0x080, 4, (uint32_t)desc);
	vmmio_write(&t->m, 0x084, 4, desc >> 32);
	vmmio_write(&t->m, 0x090, 4, (uint32_t)desc + 0x1000);
	vmmio_write(&t->m, 0x0a0, 4, (uint32_t)desc + 0x2000);
	vmmio_write(&t->m, 0x044, 4, 1);
}

START_TEST(identity_registers)
{
	struct mmio_t *t = tm_new();
	char arg[128];

	ck_assert_uint_eq(vmmio_read(&t->m, 0x000, 4), 0x74726976);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x004, 4), 2);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x008, 4), 4);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x000, 2), 0); /* registers are 32-bit only */
	vmmio_write(&t->m, 0x014, 4, 1);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x010, 4), 1); /* VERSION_1 is bit 32 */
	vmmio_write(&t->m, 0x014, 4, 0);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x010, 4), (1u << VIRTIO_F_EVENT_IDX) | 1);
	vmmio_write(&t->m, 0x014, 4, 7);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x010, 4), 0);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x100, 2), 0x2211);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x106, 2), 0x8877);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x107, 2), 0); /* crosses the end of config */
	/* No shared memory region, whichever SHMSel picks: length -1. */
	for (uint32_t id = 0; id < 2; id++) {
		vmmio_write(&t->m, 0x0ac, 4, id);
		ck_assert_uint_eq(vmmio_read(&t->m, 0x0b0, 4), 0xffffffff);
		ck_assert_uint_eq(vmmio_read(&t->m, 0x0b4, 4), 0xffffffff);
	}
#if ARCH_VIRTIO_MMIO_ON_CMDLINE
	ck_assert_int_eq(virtio_vm_mmio_cmdline(2, arg, sizeof(arg)), 0);
	ck_assert_str_eq(arg, "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6");
	ck_assert_int_eq(virtio_vm_mmio_cmdline(2, arg, 40), -ENOSPC);
	{
		static char big[4096];

		ck_assert_int_eq(virtio_vm_mmio_cmdline(9, big, sizeof(big)), 0);
		ck_assert_int_eq(virtio_vm_mmio_cmdline(10, big, sizeof(big)), -ENOSPC); /* no free line */
	}
#else
	/* arm64: the device tree names the devices, the command line does not;
	 * the interrupt lines still run out. */
	{
		uint64_t base;
		unsigned spi;

		ck_assert_int_eq(virtio_vm_mmio_cmdline(2, arg, sizeof(arg)), 0);
		ck_assert_str_eq(arg, "");
		ck_assert_int_eq(virtio_vm_mmio_cmdline(11, arg, sizeof(arg)), 0);
		ck_assert_int_eq(virtio_vm_mmio_cmdline(12, arg, sizeof(arg)), -ENOSPC);
		ck_assert_int_eq(virtio_vm_mmio_slot(1, &base, &spi), 0);
		ck_assert_uint_eq(base, ARM64_VIRTIO_MMIO_BASE + 0x1000);
		ck_assert_uint_eq(spi, 6);
		ck_assert_int_eq(virtio_vm_mmio_slot(11, &base, &spi), -ENOSPC);
	}
#endif
	tm_free(t);
}
END_TEST

START_TEST(features_must_be_offered_and_modern)
{
	struct mmio_t *t = tm_new();

	tm_negotiate(t, 1, 1u << 5); /* bit 5 was not offered */
	ck_assert(!(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_FEATURES_OK));
	vmmio_write(&t->m, 0x070, 4, 0);
	tm_negotiate(t, 0, 1); /* no VERSION_1 */
	ck_assert(!(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_FEATURES_OK));
	vmmio_write(&t->m, 0x070, 4, 0);
	tm_negotiate(t, 1, 1u << VIRTIO_F_EVENT_IDX);
	ck_assert(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_FEATURES_OK);
	ck_assert_uint_eq(t->f->dev.features, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	tm_free(t);
}
END_TEST

START_TEST(queue_starts_on_driver_ok_and_stops_on_reset)
{
	struct mmio_t *t = tm_new();
	uint64_t kicks = 0;

	tm_negotiate(t, 1, 1u << VIRTIO_F_EVENT_IDX);
	tm_setup_queue(t, 1, 16, 0x10000);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x044, 4), 1);
	ck_assert_int_eq(t->f->started[1], 0);
	vmmio_write(&t->m, 0x070, 4, 0x0f);
	ck_assert_int_eq(t->f->started[1], 1);
	ck_assert_int_eq(t->f->started[0], 0);
	ck_assert(t->f->vqs[1].event_idx);
	ck_assert_uint_eq(t->f->vqs[1].size, 16);
	ck_assert_ptr_eq(t->f->vqs[1].desc, (void *)(t->f->mem_buf + 0x10000));
	vmmio_write(&t->m, 0x050, 4, 1);
	ck_assert_int_eq(read(t->f->vqs[1].kick_fd, &kicks, sizeof(kicks)), 8);
	ck_assert_uint_eq(kicks, 1);
	vmmio_write(&t->m, 0x050, 4, 9); /* no such queue: ignored */
	vmmio_write(&t->m, 0x070, 4, 0);
	ck_assert_int_eq(t->f->stopped[1], 1);
	ck_assert_int_eq(t->f->resets, 1);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x070, 4), 0);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x044, 4), 0);
	tm_free(t);
}
END_TEST

START_TEST(misprogrammed_queue_needs_reset)
{
	struct mmio_t *t = tm_new();

	/* Enabling a queue before FEATURES_OK. */
	vmmio_write(&t->m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	tm_setup_queue(t, 0, 16, 0x10000);
	ck_assert(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	vmmio_write(&t->m, 0x070, 4, 0);
	/* Rings outside guest memory. */
	tm_negotiate(t, 1, 0);
	tm_setup_queue(t, 0, 16, TM_MEM - 0x1000);
	ck_assert(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x044, 4), 0);
	vmmio_write(&t->m, 0x070, 4, 0);
	/* A size that is not a power of two is not taken; the maximum stays. */
	tm_negotiate(t, 1, 0);
	tm_setup_queue(t, 0, 12, 0x10000);
	ck_assert_uint_eq(t->f->vqs[0].size, 64);
	/* Out-of-range queue select reads as absent. */
	vmmio_write(&t->m, 0x030, 4, 2);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x034, 4), 0);
	vmmio_write(&t->m, 0x044, 4, 1);
	ck_assert(!(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	tm_free(t);
}
END_TEST

START_TEST(config_change_raises_interrupt)
{
	struct mmio_t *t = tm_new();
	uint64_t n = 0;

	ck_assert_uint_eq(vmmio_read(&t->m, 0x0fc, 4), 0);
	vdev_config_changed(&t->f->dev);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x0fc, 4), 1);
	ck_assert(vmmio_read(&t->m, 0x060, 4) & VIRTIO_ISR_CONFIG);
	ck_assert_int_eq(read(t->m.tr.config_fd, &n, sizeof(n)), 8);
	vmmio_write(&t->m, 0x064, 4, VIRTIO_ISR_CONFIG);
	ck_assert(!(vmmio_read(&t->m, 0x060, 4) & VIRTIO_ISR_CONFIG));
	tm_free(t);
}
END_TEST

/* The read-only copy of the window holds, word for word, what a 4-byte read
 * returns now. */
static void tm_assert_render_matches(struct mmio_t *t, const char *when)
{
	static uint32_t win[VMMIO_WINDOW_SIZE / 4];

	memset(win, 0xa5, sizeof(win));
	vmmio_render(&t->m, win);
	for (uint32_t off = 0; off < VMMIO_WINDOW_SIZE; off += 4)
		ck_assert_msg(le32toh(win[off / 4]) == vmmio_read(&t->m, off, 4),
			      "%s: offset %#x holds %#x, a read gives %#x", when, off, le32toh(win[off / 4]),
			      vmmio_read(&t->m, off, 4));
}

START_TEST(render_matches_every_read)
{
	struct mmio_t *t = tm_new();

	tm_assert_render_matches(t, "fresh");
	tm_negotiate(t, 1, 0);
	vmmio_write(&t->m, 0x014, 4, 1);
	tm_assert_render_matches(t, "features negotiated, high half selected");
	tm_setup_queue(t, 1, 16, 0x20000);
	vmmio_write(&t->m, 0x070, 4, 0x0f);
	tm_assert_render_matches(t, "queue 1 selected and ready, driver OK");
	ck_assert_uint_eq(vmmio_read(&t->m, 0x044, 4), 1);
	t->f->config[3] = 0x5a;
	vdev_config_changed(&t->f->dev);
	tm_assert_render_matches(t, "config changed");
	vmmio_write(&t->m, 0x064, 4, VIRTIO_ISR_CONFIG | VIRTIO_ISR_QUEUE);
	tm_assert_render_matches(t, "config change acknowledged");
	vmmio_write(&t->m, 0x070, 4, 0);
	tm_assert_render_matches(t, "reset");
	tm_free(t);
}
END_TEST

struct tm_watch {
	struct mmio_t *t;
	uint32_t win[VMMIO_WINDOW_SIZE / 4];
	int calls;
	bool interrupt_before;
};

static void tm_watch_fn(void *opaque)
{
	struct tm_watch *w = opaque;
	uint64_t n;

	w->calls++;
	w->interrupt_before |= read(w->t->m.tr.config_fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
	vmmio_render_device_side(&w->t->m, w->win);
}

/* What the device changes on its own reaches the copy from the watch, before
 * the interrupt that sends the driver to read it. */
START_TEST(watch_renders_device_side_changes_before_the_interrupt)
{
	struct tm_watch *w = calloc(1, sizeof(*w));
	struct mmio_t *t = tm_new();
	uint64_t n = 0;

	w->t = t;
	vtr_set_watch(&t->m.tr, tm_watch_fn, w);
	tm_negotiate(t, 1, 0);
	tm_setup_queue(t, 0, 16, 0x10000);
	vmmio_write(&t->m, 0x070, 4, 0x0f);
	vmmio_render(&t->m, w->win);
	ck_assert_uint_eq(le32toh(w->win[0x060 / 4]), VIRTIO_ISR_QUEUE);

	t->f->config[0] = 0x99;
	vdev_config_changed(&t->f->dev);
	ck_assert_int_eq(w->calls, 1);
	ck_assert(!w->interrupt_before);
	ck_assert_int_eq(read(t->m.tr.config_fd, &n, sizeof(n)), 8);
	ck_assert_uint_eq(le32toh(w->win[0x0fc / 4]), 1);
	ck_assert_uint_eq(le32toh(w->win[0x060 / 4]), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	ck_assert_uint_eq(((uint8_t *)w->win)[0x100], 0x99);

	vdev_needs_reset(&t->f->dev, 0);
	ck_assert_int_eq(w->calls, 2);
	ck_assert(!w->interrupt_before);
	ck_assert(le32toh(w->win[0x070 / 4]) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	tm_free(t);
	free(w);
}
END_TEST

/* A guest that breaks the device and resets it in a loop must not flood
 * the VMM's log with "device needs reset". */
START_TEST(guest_cannot_flood_the_log)
{
	struct mmio_t *t = tm_new();
	char path[] = "/tmp/cvmm-test-mmio-log-XXXXXX", line[1100];
	int fd = mkstemp(path), lines = 0;
	struct timespec a, b;
	long windows;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(log_set_file(path), 0);
	log_set_level(LOG_WARN);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 1000; i++) {
		vmmio_write(&t->m, 0x070, 4, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		tm_setup_queue(t, 0, 16, 0x10000); /* before FEATURES_OK */
		ck_assert(vmmio_read(&t->m, 0x070, 4) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
		vmmio_write(&t->m, 0x070, 4, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	log_close();
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		lines += strstr(line, "device needs reset") != NULL;
	fclose(f);
	unlink(path);
	ck_assert_int_ge(lines, 1);
	/* A burst per rate-limit window the loop spanned (one, unless the
	 * machine stalled it for seconds). */
	windows = (long)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec)) /
		  (long)LOG_RATELIMIT_WINDOW_NS + 1;
	ck_assert_int_le(lines, LOG_RATELIMIT_BURST * windows);
	tm_free(t);
}
END_TEST

CHECK_MAIN("virtio_mmio",
	   identity_registers,
	   features_must_be_offered_and_modern,
	   queue_starts_on_driver_ok_and_stops_on_reset,
	   misprogrammed_queue_needs_reset,
	   config_change_raises_interrupt,
	   render_matches_every_read,
	   watch_renders_device_side_changes_before_the_interrupt,
	   guest_cannot_flood_the_log)
