/*
 * Fuzz target: virtio-blk request handling (header, data, status framing;
 * IN/OUT/FLUSH/GET_ID/DISCARD/WRITE_ZEROES; sector ranges) through the ring
 * walker, over fuzzed guest memory, against a 64 KiB image in a temporary
 * directory (zeroed for every input). Two devices, made once: read-write
 * and read-only.
 *
 * Input: u8 options (bit 7: the read-only device), u64
 * feature mask, then guest memory (queue 0's ring at 0).
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/blk/virtio_blk_dev.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"
#include "lib/fuzz_ring.h"

#define BLK_FUZZ_IMAGE (64u * 1024)
#define BLK_FUZZ_READONLY 0x80

static char blk_fuzz_dir[64];
static char blk_fuzz_image[2][96]; /* each device locks its own */
static struct fuzz_ring_mem blk_fuzz_mem;
static struct blk_dev blk_fuzz_dev[2]; /* read-write, read-only */

static void blk_fuzz_cleanup(void)
{
	blk_dev_destroy(&blk_fuzz_dev[0]);
	blk_dev_destroy(&blk_fuzz_dev[1]);
	fuzz_ring_mem_destroy(&blk_fuzz_mem);
	unlink(blk_fuzz_image[0]);
	unlink(blk_fuzz_image[1]);
	rmdir(blk_fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct blk_dev_config cfg = { .queue_size = FUZZ_RING_SIZE, .serial = "fuzz" };

	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	if (fuzz_temp_dir(blk_fuzz_dir, sizeof(blk_fuzz_dir), "blk") || fuzz_ring_mem_init(&blk_fuzz_mem))
		abort();
	for (unsigned i = 0; i < 2; i++) {
		int fd;

		snprintf(blk_fuzz_image[i], sizeof(blk_fuzz_image[i]), "%s/image%u", blk_fuzz_dir, i);
		fd = open(blk_fuzz_image[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, BLK_FUZZ_IMAGE) < 0)
			abort();
		close(fd);
		cfg.path = blk_fuzz_image[i];
		cfg.readonly = i == 1;
		if (blk_dev_init(&blk_fuzz_dev[i], &cfg))
			abort();
	}
	atexit(blk_fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint8_t opts = fuzz_input_u8(&in);
	uint64_t features = fuzz_input_u64(&in);
	struct blk_dev *blk = &blk_fuzz_dev[!!(opts & BLK_FUZZ_READONLY)];

	/* A zeroed image each time: what one input wrote never steers the next. */
	if (!blk->readonly && fallocate(blk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      BLK_FUZZ_IMAGE) < 0)
		abort();
	if (!fuzz_ring_attach(&blk->vdev, &blk_fuzz_mem, features, in.data, in.size)) {
		blk_dev_process_queue(blk, 0);
		/* Again, as after a kick: a broken ring stays broken, a used
		 * index stays where it was. */
		blk_dev_process_queue(blk, 0);
	}
	return 0;
}
