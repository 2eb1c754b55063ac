/* PCI config space (CF8/CFC and ECAM), the virtio-pci capability layout,
 * BAR sizing, the common configuration structure and MSI-X. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/virtio_pci.h"
#include "fake_vdev.h"
#include "check_run.h"

#define TP_BAR0 0xc0000000u

struct tp {
	struct fake_vdev *f;
	struct pci_bus bus;
	struct vpci p;
	int slot;
	int msix_changes, bar_changes;
};

static void tp_msix_changed(void *ctx, struct vpci *p)
{
	(void)p;
	((struct tp *)ctx)->msix_changes++;
}

static void tp_bar_changed(void *ctx, struct vpci *p)
{
	(void)p;
	((struct tp *)ctx)->bar_changes++;
}

static const struct vpci_host tp_host = {
	.msix_changed = tp_msix_changed,
	.bar_changed = tp_bar_changed,
};

static struct tp *tp_new(void)
{
	struct tp *t = calloc(1, sizeof(*t));

	t->f = fake_vdev_new(2);
	pci_bus_init(&t->bus);
	ck_assert_int_eq(vpci_init(&t->p, &t->f->dev, TP_BAR0, &tp_host, t), 0);
	t->slot = pci_bus_add(&t->bus, &vpci_func_ops, &t->p);
	ck_assert_int_eq(t->slot, 1);
	return t;
}

static void tp_free(struct tp *t)
{
	vpci_destroy(&t->p);
	fake_vdev_free(t->f);
	free(t);
}

static uint32_t tp_cfg_read(struct tp *t, unsigned dev, uint32_t off, unsigned size)
{
	pci_pio_write(&t->bus, PCI_CONFIG_ADDRESS_PORT, 4, 0x80000000u | dev << 11 | (off & 0xfc));
	return pci_pio_read(&t->bus, PCI_CONFIG_DATA_PORT + (off & 3), size);
}

static void tp_cfg_write(struct tp *t, unsigned dev, uint32_t off, unsigned size, uint32_t val)
{
	pci_pio_write(&t->bus, PCI_CONFIG_ADDRESS_PORT, 4, 0x80000000u | dev << 11 | (off & 0xfc));
	pci_pio_write(&t->bus, PCI_CONFIG_DATA_PORT + (off & 3), size, val);
}

START_TEST(config_space_through_both_mechanisms)
{
	struct tp *t = tp_new();

	ck_assert_uint_eq(tp_cfg_read(t, 0, PCI_VENDOR_ID, 4), 0x00081b36);
	ck_assert_uint_eq(tp_cfg_read(t, 0, 0x0b, 1), 0x06);
	ck_assert_uint_eq(tp_cfg_read(t, 1, PCI_VENDOR_ID, 2), 0x1af4);
	ck_assert_uint_eq(tp_cfg_read(t, 1, PCI_DEVICE_ID, 2), 0x1042);
	ck_assert_uint_eq(tp_cfg_read(t, 1, PCI_REVISION_ID, 1), 1);
	/* No INTx (MSI-X only): Linux asks ACPI for a route only for pin 1-4. */
	ck_assert_uint_eq(tp_cfg_read(t, 1, PCI_INTERRUPT_PIN, 1), 0);
	ck_assert_uint_eq(tp_cfg_read(t, 2, PCI_VENDOR_ID, 4), 0xffffffff);
	ck_assert_uint_eq(tp_cfg_read(t, 2, PCI_VENDOR_ID, 2), 0xffff);
	ck_assert_uint_eq(pci_ecam_read(&t->bus, 1 << 15, 4), 0x10421af4);
	ck_assert_uint_eq(pci_ecam_read(&t->bus, 1 << 20, 4), 0xffffffff); /* bus 1 */
	ck_assert_uint_eq(pci_ecam_read(&t->bus, (1 << 15) | 1 << 12, 4), 0xffffffff); /* function 1 */
	ck_assert_uint_eq(pci_ecam_read(&t->bus, (1 << 15) | 2, 4), 0xffffffff); /* misaligned */
	/* Without the enable bit, the data port reads all ones. */
	pci_pio_write(&t->bus, PCI_CONFIG_ADDRESS_PORT, 4, 1 << 11);
	ck_assert_uint_eq(pci_pio_read(&t->bus, PCI_CONFIG_DATA_PORT, 4), 0xffffffff);
	/* Read-only fields stay. */
	tp_cfg_write(t, 1, PCI_VENDOR_ID, 4, 0);
	ck_assert_uint_eq(tp_cfg_read(t, 1, PCI_VENDOR_ID, 2), 0x1af4);
	tp_free(t);
}
END_TEST

START_TEST(bar_sizing_and_moving)
{
	struct tp *t = tp_new();

	ck_assert_uint_eq(vpci_bar0(&t->p), 0); /* memory decoding off */
	tp_cfg_write(t, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	ck_assert_uint_eq(vpci_bar0(&t->p), TP_BAR0);
	ck_assert_int_eq(t->bar_changes, 1);
	tp_cfg_write(t, 1, PCI_BAR0, 4, 0xffffffff);
	ck_assert_uint_eq(tp_cfg_read(t, 1, PCI_BAR0, 4), (uint32_t)~(VPCI_BAR_SIZE - 1));
	tp_cfg_write(t, 1, PCI_BAR0, 4, 0xd0008000);
	ck_assert_uint_eq(vpci_bar0(&t->p), 0xd0008000);
	ck_assert_int_eq(t->bar_changes, 3);
	tp_free(t);
}
END_TEST

/* Walks the capability list and returns the offset of the vendor cap of
 * the given cfg_type (or of the MSI-X cap when type is 0). */
static uint32_t tp_find_cap(struct tp *t, uint8_t type)
{
	uint32_t at = tp_cfg_read(t, 1, PCI_CAPABILITY_LIST, 1);

	ck_assert(tp_cfg_read(t, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (int n = 0; at && n < 16; n++) {
		uint8_t id = tp_cfg_read(t, 1, at, 1);

		if (type == 0 && id == 0x11)
			return at;
		if (type && id == 0x09 && tp_cfg_read(t, 1, at + 3, 1) == type)
			return at;
		at = tp_cfg_read(t, 1, at + 1, 1);
	}
	return 0;
}

START_TEST(capabilities_describe_bar0)
{
	struct tp *t = tp_new();
	static const uint32_t where[] = { 0, VPCI_COMMON_OFF, VPCI_NOTIFY_OFF, VPCI_ISR_OFF, VPCI_DEVICE_OFF };
	uint32_t at;

	for (uint8_t type = 1; type <= 4; type++) {
		at = tp_find_cap(t, type);
		ck_assert_uint_ne(at, 0);
		ck_assert_uint_eq(tp_cfg_read(t, 1, at + 4, 1), 0); /* BAR0 */
		ck_assert_uint_eq(tp_cfg_read(t, 1, at + 8, 4), where[type]);
	}
	ck_assert_uint_eq(tp_cfg_read(t, 1, tp_find_cap(t, 2) + 16, 4), VPCI_NOTIFY_MULTIPLIER);
	ck_assert_uint_eq(tp_cfg_read(t, 1, tp_find_cap(t, 4) + 12, 4), 8);
	at = tp_find_cap(t, 0);
	ck_assert_uint_ne(at, 0);
	ck_assert_uint_eq(tp_cfg_read(t, 1, at + 2, 2) & 0x7ff, FAKE_QUEUES); /* 3 vectors */
	/* The PCI configuration access capability reads BAR0 for the driver. */
	at = tp_find_cap(t, 5);
	ck_assert_uint_ne(at, 0);
	tp_cfg_write(t, 1, at + 8, 4, VPCI_COMMON_OFF + 18);
	tp_cfg_write(t, 1, at + 12, 4, 2);
	ck_assert_uint_eq(tp_cfg_read(t, 1, at + 16, 4), FAKE_QUEUES);
	tp_free(t);
}
END_TEST

/* virtio-rng has no device-specific configuration: Linux's virtio_pci
 * refuses a device-config capability of length 0 ("bad capability len 0"),
 * so there must be none, and the rest of the list must still be walkable. */
START_TEST(no_device_config_capability_without_config)
{
	struct tp *t = calloc(1, sizeof(*t));
	uint32_t at;

	t->f = fake_vdev_new(4);
	t->f->dev.config_size = 0;
	pci_bus_init(&t->bus);
	ck_assert_int_eq(vpci_init(&t->p, &t->f->dev, TP_BAR0, &tp_host, t), 0);
	ck_assert_int_eq(pci_bus_add(&t->bus, &vpci_func_ops, &t->p), 1);
	ck_assert_uint_eq(tp_find_cap(t, 4), 0);
	for (uint8_t type = 1; type <= 3; type++) {
		at = tp_find_cap(t, type);
		ck_assert_uint_ne(at, 0);
		ck_assert_uint_ne(tp_cfg_read(t, 1, at + 12, 4), 0); /* length */
	}
	ck_assert_uint_ne(tp_find_cap(t, 5), 0);
	ck_assert_uint_ne(tp_find_cap(t, 0), 0);
	tp_free(t);
}
END_TEST

START_TEST(common_config_drives_the_device)
{
	struct tp *t = tp_new();
	struct vpci *p = &t->p;
	uint64_t kicks;

	ck_assert_uint_eq(vpci_bar_read(p, 18, 2), FAKE_QUEUES);
	vpci_bar_write(p, 0, 4, 1);
	ck_assert_uint_eq(vpci_bar_read(p, 4, 4), 1); /* VERSION_1 */
	vpci_bar_write(p, 20, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vpci_bar_write(p, 8, 4, 1);
	vpci_bar_write(p, 12, 4, 1);
	vpci_bar_write(p, 20, 1, 0x0b);
	ck_assert_uint_eq(vpci_bar_read(p, 20, 1), 0x0b);
	vpci_bar_write(p, 22, 2, 1);
	ck_assert_uint_eq(vpci_bar_read(p, 24, 2), 64);
	vpci_bar_write(p, 24, 2, 33); /* not a power of two: ignored */
	ck_assert_uint_eq(vpci_bar_read(p, 24, 2), 64);
	vpci_bar_write(p, 24, 2, 32);
	vpci_bar_write(p, 32, 4, 0x10000);
	vpci_bar_write(p, 40, 4, 0x11000);
	vpci_bar_write(p, 48, 4, 0x12000);
	ck_assert_uint_eq(vpci_bar_read(p, 30, 2), 1); /* notify offset = queue index */
	vpci_bar_write(p, 28, 2, 1);
	vpci_bar_write(p, 20, 1, 0x0f);
	ck_assert_int_eq(t->f->started[1], 1);
	ck_assert_uint_eq(t->f->vqs[1].size, 32);
	vpci_bar_write(p, VPCI_NOTIFY_OFF + 1 * VPCI_NOTIFY_MULTIPLIER, 2, 1);
	ck_assert_int_eq(read(t->f->vqs[1].kick_fd, &kicks, sizeof(kicks)), 8);
	ck_assert_uint_eq(vpci_bar_read(p, VPCI_DEVICE_OFF + 4, 4), 0x88776655);
	vpci_bar_write(p, 20, 1, 0);
	ck_assert_int_eq(t->f->stopped[1], 1);
	ck_assert_uint_eq(vpci_bar_read(p, 28, 2), 0);
	tp_free(t);
}
END_TEST

START_TEST(msix_routes_follow_the_driver)
{
	struct tp *t = tp_new();
	struct vpci *p = &t->p;
	uint64_t addr;
	uint32_t data;
	uint32_t msix = tp_find_cap(t, 0);

	vpci_bar_write(p, 22, 2, 0);
	vpci_bar_write(p, 26, 2, 7); /* no such vector */
	ck_assert_uint_eq(vpci_bar_read(p, 26, 2), VPCI_NO_VECTOR);
	vpci_bar_write(p, 26, 2, 1);
	ck_assert_uint_eq(vpci_bar_read(p, 26, 2), 1);
	vpci_bar_write(p, VPCI_MSIX_TABLE_OFF + 16, 4, 0xfee00000);
	vpci_bar_write(p, VPCI_MSIX_TABLE_OFF + 20, 4, 0);
	vpci_bar_write(p, VPCI_MSIX_TABLE_OFF + 24, 4, 0x4041);
	ck_assert(!vpci_msi_message(p, 0, &addr, &data)); /* MSI-X off */
	tp_cfg_write(t, 1, msix + 2, 2, 0x8000);
	ck_assert(vpci_msix_enabled(p));
	ck_assert(!vpci_msi_message(p, 0, &addr, &data)); /* vector masked */
	vpci_bar_write(p, VPCI_MSIX_TABLE_OFF + 28, 4, 0);
	ck_assert(vpci_msi_message(p, 0, &addr, &data));
	ck_assert_uint_eq(addr, 0xfee00000);
	ck_assert_uint_eq(data, 0x4041);
	tp_cfg_write(t, 1, msix + 2, 2, 0xc000); /* function mask */
	ck_assert(!vpci_msi_message(p, 0, &addr, &data));
	ck_assert(!vpci_msi_message(p, FAKE_QUEUES, &addr, &data)); /* config: no vector */
	ck_assert(!vpci_msi_message(p, FAKE_QUEUES + 1, &addr, &data));
	ck_assert_int_ge(t->msix_changes, 6);
	tp_free(t);
}
END_TEST

/* Linux enables the config vector while probing: raising the config
 * interrupt then, with nothing changed, made virtio-blk log "new size" at
 * every probe. Only a change made while the vector had no route is owed. */
START_TEST(config_interrupt_owed_only_for_a_change_without_route)
{
	struct tp *t = tp_new();
	struct vpci *p = &t->p;

	ck_assert(!vpci_config_route(p, true));   /* first activation: nothing happened */
	vdev_config_changed(&t->f->dev);           /* delivered through the route */
	ck_assert(!vpci_config_route(p, false));
	ck_assert(!vpci_config_route(p, true));   /* nothing changed while unrouted */
	ck_assert(!vpci_config_route(p, false));
	vdev_config_changed(&t->f->dev);           /* lost: no route */
	ck_assert(vpci_config_route(p, true));
	tp_free(t);
}
END_TEST

/* Two vCPUs reset the device, one through BAR0 and one through the PCI_CFG
 * capability window: the device model must never see the two at once. */
static atomic_int tp_in_reset, tp_overlaps;

static void tp_reset_exclusive(struct vdev *dev)
{
	(void)dev;
	if (atomic_fetch_add(&tp_in_reset, 1) != 0)
		atomic_fetch_add(&tp_overlaps, 1);
	nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 }, NULL);
	atomic_fetch_sub(&tp_in_reset, 1);
}

static void *tp_reset_through_bar(void *arg)
{
	struct tp *t = arg;

	for (int i = 0; i < 300; i++)
		vpci_bar_write(&t->p, 20, 1, 0);
	return NULL;
}

START_TEST(bar_and_cfg_window_share_one_lock)
{
	struct tp *t = tp_new();
	struct vdev_ops ops = *t->f->dev.ops;
	uint32_t at = tp_find_cap(t, 5);
	pthread_t other;
	int overlaps;

	ops.reset = tp_reset_exclusive;
	t->f->dev.ops = &ops;
	/* The window points at the status byte of the common configuration. */
	tp_cfg_write(t, 1, at + 8, 4, VPCI_COMMON_OFF + 20);
	tp_cfg_write(t, 1, at + 12, 4, 1);
	ck_assert_int_eq(pthread_create(&other, NULL, tp_reset_through_bar, t), 0);
	for (int i = 0; i < 300; i++)
		tp_cfg_write(t, 1, at + 16, 1, 0);
	pthread_join(other, NULL);
	overlaps = atomic_load(&tp_overlaps);
	ck_assert_int_eq(overlaps, 0);
	tp_free(t);
}
END_TEST

/* The device's thread reports config changes while a vCPU reads (and so
 * clears) the ISR: no change may be lost between the two. */
struct tp_changer {
	struct tp *t;
	atomic_bool seen, done;
	int lost;
};

static void *tp_change_config(void *arg)
{
	struct tp_changer *c = arg;

	for (int i = 0; i < 3000 && !c->lost; i++) {
		struct timespec start, now;

		atomic_store(&c->seen, false);
		vdev_config_changed(&c->t->f->dev);
		clock_gettime(CLOCK_MONOTONIC, &start);
		while (!atomic_load(&c->seen)) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - start.tv_sec >= 3) { /* the change was lost */
				c->lost++;
				break;
			}
			nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 }, NULL);
		}
	}
	atomic_store(&c->done, true);
	return NULL;
}

START_TEST(config_change_never_lost_to_isr_read)
{
	struct tp_changer c = { .t = tp_new() };
	pthread_t changer;

	ck_assert_int_eq(pthread_create(&changer, NULL, tp_change_config, &c), 0);
	while (!atomic_load(&c.done))
		if (vpci_bar_read(&c.t->p, VPCI_ISR_OFF, 1) & VIRTIO_ISR_CONFIG)
			atomic_store(&c.seen, true);
	pthread_join(changer, NULL);
	ck_assert_msg(!c.lost, "a config change was lost to a concurrent ISR read");
	ck_assert_uint_eq(vpci_bar_read(&c.t->p, 21, 1), 3000 % 256); /* config generation */
	tp_free(c.t);
}
END_TEST

CHECK_MAIN("virtio_pci",
	   config_space_through_both_mechanisms,
	   bar_sizing_and_moving,
	   capabilities_describe_bar0,
	   no_device_config_capability_without_config,
	   common_config_drives_the_device,
	   msix_routes_follow_the_driver,
	   config_interrupt_owed_only_for_a_change_without_route,
	   bar_and_cfg_window_share_one_lock,
	   config_change_never_lost_to_isr_read)
