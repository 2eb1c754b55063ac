/* The in-process devices cvmm builds from its command line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check_run.h"
#include "devices/blk/virtio_blk_dev.h"
#include "vmm/cli.h"
#include "vmm/machine_virtio.h"

/* Opens the devices of "cvmm --kernel K ARGS..." on a fresh image and
 * returns the first disk's queue count. */
static unsigned disk_queues(const char *cpus, const char *transport, const char *disk_extra)
{
	char img[] = "/tmp/cvmm-test-mv.XXXXXX", disk[128], err[256];
	struct machine_virtio mv;
	struct cli_config cfg;
	unsigned nq;
	int fd = mkstemp(img);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	snprintf(disk, sizeof(disk), "path=%s%s", img, disk_extra);
	char *argv[] = { "cvmm", "--kernel", "k", "--cpus", (char *)cpus, "--transport",
			 (char *)transport, "--disk", disk, NULL };
	ck_assert_msg(cli_parse(9, argv, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(machine_virtio_open(&mv, &cfg), 0);
	ck_assert_uint_eq(mv.ndevs, 1);
	nq = mv.devs[0].vdev->num_queues;
	machine_virtio_destroy(&mv);
	unlink(img);
	return nq;
}

/* virtio-pci: a queue per vCPU unless the user says, so a request
 * completes on the vCPU that issued it (its own queue's MSI-X vector). */
START_TEST(pci_disk_gets_a_queue_per_vcpu)
{
	ck_assert_uint_eq(disk_queues("boot=1", "pci", ""), 1);
	ck_assert_uint_eq(disk_queues("boot=2", "pci", ""), 2);
	ck_assert_uint_eq(disk_queues("boot=4", "pci", ""), 4);
	ck_assert_uint_eq(disk_queues("boot=4", "pci", ",num_queues=1"), 1);
	ck_assert_uint_eq(disk_queues("boot=2", "pci", ",num_queues=3"), 3);
	/* More vCPUs than a disk may have queues: the most it may have. */
	ck_assert_uint_eq(disk_queues("boot=65", "pci", ""), BLK_DEV_MAX_QUEUES);
}
END_TEST

/* virtio-mmio has one interrupt line per device: more queues gain nothing. */
START_TEST(mmio_disk_keeps_one_queue)
{
	ck_assert_uint_eq(disk_queues("boot=4", "mmio", ""), 1);
	ck_assert_uint_eq(disk_queues("boot=4", "mmio", ",num_queues=2"), 2);
}
END_TEST

CHECK_MAIN("machine_virtio", pci_disk_gets_a_queue_per_vcpu, mmio_disk_keeps_one_queue)
