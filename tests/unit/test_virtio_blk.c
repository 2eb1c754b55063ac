/*
 * virtio-blk model: requests built by hand on a split ring in a malloc'd
 * "guest memory", served against a temporary image file.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/blk/virtio_blk_dev.h"
#include "check_run.h"
#include "guest_ring.h"

#define T_MEM_SIZE (1u << 20)
#define T_QSIZE 64
#define T_DESC 0x0
#define T_AVAIL 0x1000
#define T_USED 0x2000
#define T_HDR 0x3000    /* request headers / segments */
#define T_STATUS 0x3f00 /* status bytes */
#define T_DATA 0x10000  /* data buffers */
#define T_IMG_SECTORS 2048

struct t_env {
	uint8_t *mem_buf;
	struct gmem mem;
	struct blk_dev blk;
	char path[64];
	struct guest_ring ring;    /* queue 0, as the driver sees it */
	unsigned config_changes;
};

static struct t_env *env;

static void *t_ptr(uint64_t gpa)
{
	return env->mem_buf + gpa;
}

static void t_config_changed(void *host)
{
	((struct t_env *)host)->config_changes++;
}

static void t_open(bool readonly, bool create, bool direct)
{
	struct blk_dev_config cfg = { .path = env->path, .readonly = readonly, .direct = direct,
				      .queue_size = T_QSIZE, .serial = "test-serial" };
	struct virtq *vq;

	if (create) {
		int fd = mkstemp(env->path);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, T_IMG_SECTORS * 512), 0);
		close(fd);
	}
	ck_assert_int_eq(blk_dev_init(&env->blk, &cfg), 0);
	env->blk.vdev.mem = &env->mem;
	vdev_set_host(&env->blk.vdev, t_config_changed, NULL, env);
	ck_assert_int_eq(vdev_set_features(&env->blk.vdev, env->blk.vdev.host_features), 0);
	vq = &env->blk.vqs[0];
	ck_assert_int_eq(virtq_setup(vq, &env->mem, T_QSIZE, T_DESC, T_AVAIL, T_USED), 0);
	vq->event_idx = true;
	vq->indirect = true;
}

static void t_setup(void)
{
	struct gmem_region r = { .gpa = 0, .size = T_MEM_SIZE, .fd = -1 };

	env = calloc(1, sizeof(*env));
	/* Page-aligned, as guest RAM is. */
	env->mem_buf = aligned_alloc(4096, T_MEM_SIZE);
	memset(env->mem_buf, 0, T_MEM_SIZE);
	r.hva = env->mem_buf;
	gmem_init(&env->mem);
	ck_assert_int_eq(gmem_add(&env->mem, &r), 0);
	guest_ring_init(&env->ring, env->mem_buf, T_QSIZE, T_DESC, T_AVAIL, T_USED);
	/* /var/tmp: on disk, where O_DIRECT works (tmpfs /tmp may refuse it). */
	strcpy(env->path, "/var/tmp/cvmm-blk-test-XXXXXX");
	t_open(false, true, false);
}

static void t_teardown(void)
{
	blk_dev_destroy(&env->blk);
	unlink(env->path);
	gmem_destroy(&env->mem);
	free(env->mem_buf);
	free(env);
}

/* Puts a chain of buffers on the ring (descriptors from index 0). */
static void t_submit(const struct guest_buf *bufs, unsigned n)
{
	guest_ring_post_at(&env->ring, 0, bufs, n);
}

/* Serves the ring and returns the used length of the one completed chain. */
static uint32_t t_run(void)
{
	struct virtq_used *used = t_ptr(T_USED);

	ck_assert_uint_eq(blk_dev_process_queue(&env->blk, 0), 1);
	ck_assert_uint_eq(used->idx, (uint16_t)(env->ring.used_seen + 1));
	return used->ring[env->ring.used_seen++ % T_QSIZE].len;
}

static void t_hdr(uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr *h = t_ptr(T_HDR);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
}

static uint8_t t_status(void)
{
	return *(uint8_t *)t_ptr(T_STATUS);
}

/* A plain request: header, one data buffer, status. */
static uint32_t t_request(uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t len, bool data_writable)
{
	struct guest_buf bufs[3] = {
		{ T_HDR, sizeof(struct virtio_blk_outhdr), false },
		{ data_gpa, len, data_writable },
		{ T_STATUS, 1, true },
	};

	t_hdr(type, sector);
	*(uint8_t *)t_ptr(T_STATUS) = 0xff;
	if (len) {
		t_submit(bufs, 3);
	} else {
		bufs[1] = bufs[2];
		t_submit(bufs, 2);
	}
	return t_run();
}

static void t_fill(uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint8_t *p = t_ptr(gpa);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void t_image_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(env->path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

START_TEST(write_then_read)
{
	uint8_t img[8192];

	t_fill(T_DATA, 8192, 3);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, 8, T_DATA, 8192, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	t_image_read(8 * 512, img, sizeof(img));
	ck_assert_mem_eq(img, t_ptr(T_DATA), sizeof(img));

	memset(t_ptr(T_DATA + 0x10000), 0, 8192);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, 8, T_DATA + 0x10000, 8192, true), 8193);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(t_ptr(T_DATA + 0x10000), t_ptr(T_DATA), 8192);
}
END_TEST

/* The header split over two buffers and data spread over three, with the
 * status byte sharing the last data buffer: no framing is assumed. */
START_TEST(any_framing)
{
	struct guest_buf out[] = {
		{ T_HDR, 5, false },
		{ T_HDR + 5, 11, false },
		{ T_DATA, 512, false },
		{ T_DATA + 0x2000, 1024, false },
		{ T_STATUS, 1, true },
	};
	struct guest_buf in[] = {
		{ T_HDR, 16, false },
		{ T_DATA + 0x8000, 1000, true },
		{ T_DATA + 0x9000, 537, true }, /* 536 data bytes + status */
	};
	uint8_t img[1536];

	t_fill(T_DATA, 512, 1);
	t_fill(T_DATA + 0x2000, 1024, 2);
	t_hdr(VIRTIO_BLK_T_OUT, 100);
	t_submit(out, 5);
	ck_assert_uint_eq(t_run(), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	t_image_read(100 * 512, img, sizeof(img));
	ck_assert_mem_eq(img, t_ptr(T_DATA), 512);
	ck_assert_mem_eq(img + 512, t_ptr(T_DATA + 0x2000), 1024);

	t_hdr(VIRTIO_BLK_T_IN, 100);
	t_submit(in, 3);
	ck_assert_uint_eq(t_run(), 1537);
	ck_assert_uint_eq(*(uint8_t *)t_ptr(T_DATA + 0x9000 + 536), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(t_ptr(T_DATA + 0x8000), img, 1000);
	ck_assert_mem_eq(t_ptr(T_DATA + 0x9000), img + 1000, 536);
}
END_TEST

START_TEST(flush_and_get_id)
{
	char id[VIRTIO_BLK_ID_BYTES] = "test-serial";

	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);

	memset(t_ptr(T_DATA), 0xaa, 64);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_GET_ID, 0, T_DATA, VIRTIO_BLK_ID_BYTES, true),
			  VIRTIO_BLK_ID_BYTES + 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(t_ptr(T_DATA), id, sizeof(id));
	ck_assert_uint_eq(*(uint8_t *)t_ptr(T_DATA + VIRTIO_BLK_ID_BYTES), 0xaa);
}
END_TEST

static uint32_t t_dz(uint32_t type, const struct virtio_blk_discard_write_zeroes *segs, unsigned n)
{
	memcpy(t_ptr(T_HDR + 0x100), segs, n * sizeof(*segs));
	struct guest_buf bufs[3] = {
		{ T_HDR, 16, false },
		{ T_HDR + 0x100, (uint32_t)(n * sizeof(*segs)), false },
		{ T_STATUS, 1, true },
	};

	t_hdr(type, 0);
	t_submit(bufs, 3);
	return t_run();
}

START_TEST(discard_and_write_zeroes)
{
	struct virtio_blk_discard_write_zeroes seg[2] = {
		{ .sector = 0, .num_sectors = 8 },
		{ .sector = 16, .num_sectors = 8, .flags = VIRTIO_BLK_WZ_F_UNMAP },
	};
	uint8_t img[32 * 512], zero[4096] = { 0 };

	t_fill(T_DATA, sizeof(img), 9);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, 0, T_DATA, sizeof(img), false), 1);

	/* write zeroes, one segment with unmap and one without */
	ck_assert_uint_eq(t_dz(VIRTIO_BLK_T_WRITE_ZEROES, seg, 2), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	t_image_read(0, img, sizeof(img));
	ck_assert_mem_eq(img, zero, 4096);
	ck_assert_mem_eq(img + 8 * 512, t_ptr(T_DATA + 8 * 512), 4096);
	ck_assert_mem_eq(img + 16 * 512, zero, 4096);

	/* discard with the unmap flag is not allowed; reserved flags neither */
	ck_assert_uint_eq(t_dz(VIRTIO_BLK_T_DISCARD, &seg[1], 1), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_UNSUPP);
	seg[0].flags = 2;
	ck_assert_uint_eq(t_dz(VIRTIO_BLK_T_WRITE_ZEROES, seg, 1), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_UNSUPP);

	/* a plain discard of an aligned range reads back as zeroes here */
	seg[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 8, .num_sectors = 8 };
	ck_assert_uint_eq(t_dz(VIRTIO_BLK_T_DISCARD, seg, 1), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);

	/* out of range, partial segment, and the image untouched by a bad batch */
	seg[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 24, .num_sectors = 8 };
	seg[1] = (struct virtio_blk_discard_write_zeroes){ .sector = T_IMG_SECTORS - 4, .num_sectors = 8 };
	ck_assert_uint_eq(t_dz(VIRTIO_BLK_T_WRITE_ZEROES, seg, 2), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	t_image_read(24 * 512, img, 4096);
	ck_assert_mem_eq(img, t_ptr(T_DATA + 24 * 512), 4096);
	memcpy(t_ptr(T_HDR + 0x100), seg, sizeof(seg));
	{
		struct guest_buf bufs[3] = {
			{ T_HDR, 16, false }, { T_HDR + 0x100, 20, false }, { T_STATUS, 1, true },
		};

		t_hdr(VIRTIO_BLK_T_DISCARD, 0);
		t_submit(bufs, 3);
		ck_assert_uint_eq(t_run(), 1);
		ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	}
}
END_TEST

START_TEST(readonly_rejects_writes)
{
	blk_dev_destroy(&env->blk);
	t_open(true, false, false);
	ck_assert(env->blk.vdev.host_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	ck_assert(!(env->blk.vdev.host_features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)));
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, 0, T_DATA, 512, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, 0, T_DATA, 512, true), 513);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(t_dz(VIRTIO_BLK_T_WRITE_ZEROES,
			       &(struct virtio_blk_discard_write_zeroes){ .num_sectors = 1 }, 1), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

/* O_DIRECT, with aligned buffers and with buffers O_DIRECT refuses (the
 * guest chooses them: those go through the page cache). */
START_TEST(direct_io)
{
	uint8_t img[8192];
	struct guest_buf odd[3] = {
		{ T_HDR, 16, false }, { T_DATA + 0x30001, 4096, true }, { T_STATUS, 1, true },
	};

	blk_dev_destroy(&env->blk);
	t_open(false, false, true);
	t_fill(T_DATA, 8192, 21);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, 16, T_DATA, 8192, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	t_image_read(16 * 512, img, sizeof(img));
	ck_assert_mem_eq(img, t_ptr(T_DATA), sizeof(img));
	memset(t_ptr(T_DATA + 0x10000), 0, 8192);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, 16, T_DATA + 0x10000, 8192, true), 8193);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(t_ptr(T_DATA + 0x10000), t_ptr(T_DATA), 8192);

	t_hdr(VIRTIO_BLK_T_IN, 16);
	t_submit(odd, 3);
	ck_assert_uint_eq(t_run(), 4097);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	ck_assert_mem_eq(t_ptr(T_DATA + 0x30001), t_ptr(T_DATA), 4096);
	odd[1].writable = false;
	t_fill(T_DATA + 0x30001, 4096, 99);
	t_hdr(VIRTIO_BLK_T_OUT, 24);
	t_submit(odd, 3);
	ck_assert_uint_eq(t_run(), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	t_image_read(24 * 512, img, 4096);
	ck_assert_mem_eq(img, t_ptr(T_DATA + 0x30001), 4096);
}
END_TEST

START_TEST(out_of_range)
{
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, T_IMG_SECTORS - 1, T_DATA, 512, true), 513);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, T_IMG_SECTORS - 1, T_DATA, 1024, true), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, T_IMG_SECTORS, T_DATA, 512, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	/* sector * 512 would wrap */
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, UINT64_MAX / 256, T_DATA, 512, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, UINT64_MAX, T_DATA, 512, true), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
	/* not a whole number of sectors */
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, 0, T_DATA, 100, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(malformed_requests)
{
	struct guest_buf short_hdr[] = { { T_HDR, 8, false }, { T_STATUS, 1, true } };
	struct guest_buf no_status[] = { { T_HDR, 16, false }, { T_DATA, 512, false } };
	struct guest_buf hdr_only[] = { { T_HDR, 16, false } };
	struct guest_buf writable_hdr[] = { { T_HDR, 16, true } };

	t_hdr(VIRTIO_BLK_T_IN, 0);
	*(uint8_t *)t_ptr(T_STATUS) = 0xff;
	t_submit(short_hdr, 2);
	ck_assert_uint_eq(t_run(), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_IOERR);

	/* no writable byte: returned with nothing written, image untouched */
	t_fill(T_DATA, 512, 5);
	t_hdr(VIRTIO_BLK_T_OUT, 0);
	t_submit(no_status, 2);
	ck_assert_uint_eq(t_run(), 0);
	t_submit(hdr_only, 1);
	ck_assert_uint_eq(t_run(), 0);
	{
		uint8_t img[512], zero[512] = { 0 };

		t_image_read(0, img, sizeof(img));
		ck_assert_mem_eq(img, zero, sizeof(img));
	}

	/* the header in a writable buffer is not a header */
	t_hdr(VIRTIO_BLK_T_OUT, 0);
	t_submit(writable_hdr, 1);
	ck_assert_uint_eq(t_run(), 1);
	ck_assert_uint_eq(*(uint8_t *)t_ptr(T_HDR + 15), VIRTIO_BLK_S_IOERR);

	ck_assert_uint_eq(t_request(77, 0, 0, 0, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

/* A buffer outside guest memory breaks the ring: nothing is touched. */
START_TEST(buffer_outside_memory)
{
	struct guest_buf bufs[] = {
		{ T_HDR, 16, false }, { T_MEM_SIZE - 256, 512, true }, { T_STATUS, 1, true },
	};
	struct virtq_used *used = t_ptr(T_USED);

	t_hdr(VIRTIO_BLK_T_IN, 0);
	t_submit(bufs, 3);
	ck_assert_uint_eq(blk_dev_process_queue(&env->blk, 0), 0);
	ck_assert_uint_eq(used->idx, 0);
	ck_assert(env->blk.vqs[0].broken);
}
END_TEST

START_TEST(config_and_resize)
{
	struct virtio_blk_config cfg;
	const struct vdev_ops *ops = env->blk.vdev.ops;
	uint8_t wb = 0;
	int fd;

	ck_assert_uint_eq(env->blk.vdev.config_size, sizeof(cfg));
	ops->read_config(&env->blk.vdev, 0, &cfg, sizeof(cfg));
	ck_assert_uint_eq(cfg.capacity, T_IMG_SECTORS);
	ck_assert_uint_eq(cfg.blk_size, 512);
	ck_assert_uint_eq(cfg.num_queues, 1);
	ck_assert_uint_eq(cfg.writeback, 1);
	ck_assert_uint_gt(cfg.seg_max, 0);
	ck_assert_uint_gt(cfg.max_discard_sectors, 0);

	ck_assert_int_eq(ops->write_config(&env->blk.vdev, offsetof(struct virtio_blk_config, writeback), &wb, 1), 0);
	ck_assert_int_ne(ops->write_config(&env->blk.vdev, 0, &wb, 1), 0);
	ops->read_config(&env->blk.vdev, offsetof(struct virtio_blk_config, writeback), &wb, 1);
	ck_assert_uint_eq(wb, 0);

	/* Write-through now: writes still work. */
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_OUT, 0, T_DATA, 512, false), 1);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);

	ck_assert(!blk_dev_check_size(&env->blk));
	fd = open(env->path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4 * T_IMG_SECTORS * 512), 0);
	close(fd);
	/* The inotify watch reports it by itself; wait for it. */
	for (int i = 0; i < 200 && !__atomic_load_n(&env->config_changes, __ATOMIC_RELAXED); i++)
		usleep(10000);
	ck_assert_uint_eq(env->config_changes, 1);
	ops->read_config(&env->blk.vdev, 0, &cfg, 8);
	ck_assert_uint_eq(cfg.capacity, 4 * T_IMG_SECTORS);
	ck_assert_uint_eq(t_request(VIRTIO_BLK_T_IN, 3 * T_IMG_SECTORS, T_DATA, 512, true), 513);
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(image_locked)
{
	struct blk_dev other;
	struct blk_dev_config cfg = { .path = env->path };

	ck_assert_int_eq(blk_dev_init(&other, &cfg), -EBUSY);
	cfg.readonly = true;
	ck_assert_int_eq(blk_dev_init(&other, &cfg), -EBUSY);
	cfg.path = "/nonexistent/cvmm-h4.img";
	ck_assert_int_eq(blk_dev_init(&other, &cfg), -ENOENT);
}
END_TEST

/* A batch of requests in flight at once (io_uring), completed in any
 * order: each chain gets its own data and status. */
START_TEST(many_in_flight)
{
	struct virtq_desc *desc = t_ptr(T_DESC);
	struct virtq_avail *avail = t_ptr(T_AVAIL);
	struct virtq_used *used = t_ptr(T_USED);
	const unsigned n = 16;

	for (unsigned i = 0; i < n; i++) {
		struct virtio_blk_outhdr *h = t_ptr(T_HDR + 16 * i);

		h->type = VIRTIO_BLK_T_OUT;
		h->sector = 8 * i;
		t_fill(T_DATA + 4096 * i, 4096, (uint8_t)(i * 13));
		desc[3 * i] = (struct virtq_desc){ T_HDR + 16 * i, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * i + 1) };
		desc[3 * i + 1] = (struct virtq_desc){ T_DATA + 4096 * i, 4096, VIRTQ_DESC_F_NEXT,
						       (uint16_t)(3 * i + 2) };
		desc[3 * i + 2] = (struct virtq_desc){ T_STATUS + i, 1, VIRTQ_DESC_F_WRITE, 0 };
		*(uint8_t *)t_ptr(T_STATUS + i) = 0xff;
		avail->ring[env->ring.avail_idx++ % T_QSIZE] = (uint16_t)(3 * i);
	}
	__atomic_store_n(&avail->idx, env->ring.avail_idx, __ATOMIC_RELEASE);
	ck_assert_uint_eq(blk_dev_process_queue(&env->blk, 0), n);
	ck_assert_uint_eq(used->idx, n);
	for (unsigned i = 0; i < n; i++) {
		uint8_t img[4096];

		ck_assert_uint_eq(*(uint8_t *)t_ptr(T_STATUS + i), VIRTIO_BLK_S_OK);
		t_image_read(4096 * i, img, sizeof(img));
		ck_assert_mem_eq(img, t_ptr(T_DATA + 4096 * i), sizeof(img));
	}
	env->ring.used_seen = (uint16_t)n;
	/* and read them all back into fresh buffers */
	for (unsigned i = 0; i < n; i++) {
		((struct virtio_blk_outhdr *)t_ptr(T_HDR + 16 * i))->type = VIRTIO_BLK_T_IN;
		desc[3 * i + 1] = (struct virtq_desc){ T_DATA + 0x20000 + 4096 * i, 4096,
						       VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)(3 * i + 2) };
		avail->ring[env->ring.avail_idx++ % T_QSIZE] = (uint16_t)(3 * i);
	}
	__atomic_store_n(&avail->idx, env->ring.avail_idx, __ATOMIC_RELEASE);
	ck_assert_uint_eq(blk_dev_process_queue(&env->blk, 0), n);
	ck_assert_uint_eq(used->idx, 2 * n);
	for (unsigned i = 0; i < n; i++) {
		struct virtq_used_elem *e = &used->ring[(n + i) % T_QSIZE];

		ck_assert_uint_eq(e->len, 4097);
		ck_assert_mem_eq(t_ptr(T_DATA + 0x20000 + 4096 * (e->id / 3)), t_ptr(T_DATA + 4096 * (e->id / 3)), 4096);
	}
}
END_TEST

/* The worker path: a kick on the eventfd is served and the call fd fires. */
START_TEST(worker_serves_kicks)
{
	struct virtq *vq = &env->blk.vqs[0];
	struct virtq_used *used = t_ptr(T_USED);
	struct guest_buf bufs[3] = {
		{ T_HDR, 16, false }, { T_DATA, 4096, false }, { T_STATUS, 1, true },
	};
	struct pollfd pfd;
	uint64_t one = 1, cnt;

	vq->kick_fd = eventfd(0, EFD_CLOEXEC);
	vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(vdev_queue_start(&env->blk.vdev, 0), 0);
	t_fill(T_DATA, 4096, 11);
	t_hdr(VIRTIO_BLK_T_OUT, 40);
	t_submit(bufs, 3);
	ck_assert_int_eq(write(vq->kick_fd, &one, sizeof(one)), sizeof(one));
	pfd = (struct pollfd){ .fd = vq->call_fd, .events = POLLIN };
	for (int i = 0; i < 50 && __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != 1; i++)
		poll(&pfd, 1, 100);
	ck_assert_uint_eq(used->idx, 1);
	ck_assert_int_eq(read(vq->call_fd, &cnt, sizeof(cnt)), sizeof(cnt));
	ck_assert_uint_eq(t_status(), VIRTIO_BLK_S_OK);
	vdev_queue_stop(&env->blk.vdev, 0);
	close(vq->kick_fd);
	close(vq->call_fd);
	vq->kick_fd = vq->call_fd = -1;
}
END_TEST

/* A disk with two queues: large buffered writes go to its writer thread,
 * from both queues' workers at once, and come back as each queue's own
 * completions (blk_writer.h). */
START_TEST(large_writes_from_two_queues)
{
	struct blk_dev_config cfg = { .path = env->path, .num_queues = 2, .queue_size = T_QSIZE };
	const uint32_t len = 256 << 10;
	struct guest_ring q1_ring;
	struct guest_ring *rings[2] = { &env->ring, &q1_ring };
	const uint64_t hdr[2] = { T_HDR, 0x7000 }, status[2] = { T_STATUS, 0x7f00 };
	const uint64_t data[2] = { T_DATA, 0x80000 }, sector[2] = { 0, len / 512 };
	uint64_t one = 1;

	blk_dev_destroy(&env->blk);
	ck_assert_int_eq(blk_dev_init(&env->blk, &cfg), 0);
	env->blk.vdev.mem = &env->mem;
	vdev_set_host(&env->blk.vdev, t_config_changed, NULL, env);
	ck_assert_int_eq(vdev_set_features(&env->blk.vdev, env->blk.vdev.host_features), 0);
	/* Without io_uring (qemu-user) there is nothing to hand over. */
	ck_assert_int_eq(env->blk.has_writer, env->blk.queues[0].uring != NULL);
	guest_ring_init(&q1_ring, env->mem_buf, T_QSIZE, 0x4000, 0x5000, 0x6000);
	ck_assert_int_eq(virtq_setup(&env->blk.vqs[0], &env->mem, T_QSIZE, T_DESC, T_AVAIL, T_USED), 0);
	ck_assert_int_eq(virtq_setup(&env->blk.vqs[1], &env->mem, T_QSIZE, 0x4000, 0x5000, 0x6000), 0);
	for (unsigned i = 0; i < 2; i++) {
		struct virtq *vq = &env->blk.vqs[i];
		struct virtio_blk_outhdr *h = t_ptr(hdr[i]);
		struct guest_buf bufs[3] = {
			{ hdr[i], sizeof(*h), false }, { data[i], len, false }, { status[i], 1, true },
		};

		vq->kick_fd = eventfd(0, EFD_CLOEXEC);
		vq->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ck_assert_int_eq(vdev_queue_start(&env->blk.vdev, i), 0);
		*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_OUT, .sector = sector[i] };
		*(uint8_t *)t_ptr(status[i]) = 0xff;
		t_fill(data[i], len, (uint8_t)(17 + i));
		guest_ring_post_at(rings[i], 0, bufs, 3);
	}
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(write(env->blk.vqs[i].kick_fd, &one, sizeof(one)), sizeof(one));
	for (unsigned i = 0; i < 2; i++) {
		struct virtq *vq = &env->blk.vqs[i];
		uint8_t *img = malloc(len);

		ck_assert(guest_ring_wait_used(rings[i], 1, 5000));
		ck_assert_uint_eq(guest_ring_next_used(rings[i]).len, 1);
		ck_assert_uint_eq(*(uint8_t *)t_ptr(status[i]), VIRTIO_BLK_S_OK);
		t_image_read(sector[i] * 512, img, len);
		ck_assert_mem_eq(img, t_ptr(data[i]), len);
		free(img);
		vdev_queue_stop(&env->blk.vdev, i);
		close(vq->kick_fd);
		close(vq->call_fd);
		vq->kick_fd = vq->call_fd = -1;
	}
}
END_TEST

static Suite *blk_suite(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *tc = tcase_create("requests");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_add_test(tc, write_then_read);
	tcase_add_test(tc, any_framing);
	tcase_add_test(tc, flush_and_get_id);
	tcase_add_test(tc, discard_and_write_zeroes);
	tcase_add_test(tc, readonly_rejects_writes);
	tcase_add_test(tc, direct_io);
	tcase_add_test(tc, out_of_range);
	tcase_add_test(tc, malformed_requests);
	tcase_add_test(tc, buffer_outside_memory);
	tcase_add_test(tc, config_and_resize);
	tcase_add_test(tc, image_locked);
	tcase_add_test(tc, many_in_flight);
	tcase_add_test(tc, worker_serves_kicks);
	tcase_add_test(tc, large_writes_from_two_queues);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(blk_suite());
}
