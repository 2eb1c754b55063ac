/* virtio-rng end to end inside the process: a driver programs the device
 * through virtio-mmio registers, kicks, and waits on the call eventfd while
 * the device's worker thread fills its buffers. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvmm/virtio_mmio.h"
#include "devices/rng/virtio_rng.h"
#include "check_run.h"
#include "guest_ring.h"

#define TR_MEM 0x40000
#define TR_DESC 0x1000
#define TR_AVAIL 0x2000
#define TR_USED 0x3000
#define TR_BUF 0x10000

struct tr {
	uint8_t *buf;
	struct gmem mem;
	struct rng_dev rng;
	struct vmmio m;
	struct guest_ring ring;
};

static struct tr *tr_new(const char *src)
{
	struct tr *t = calloc(1, sizeof(*t));
	struct gmem_region r = { .gpa = 0, .size = TR_MEM, .fd = -1 };

	t->buf = calloc(1, TR_MEM);
	r.hva = t->buf;
	gmem_init(&t->mem);
	ck_assert_int_eq(gmem_add(&t->mem, &r), 0);
	guest_ring_init(&t->ring, t->buf, 16, TR_DESC, TR_AVAIL, TR_USED);
	ck_assert_int_eq(rng_dev_init(&t->rng, src), 0);
	t->rng.vdev.mem = &t->mem;
	ck_assert_int_eq(vmmio_init(&t->m, &t->rng.vdev, 0xd0000000, 5), 0);
	/* The driver's side of initialisation (virtio 1.2 3.1.1). */
	vmmio_write(&t->m, 0x070, 4, 3);
	vmmio_write(&t->m, 0x024, 4, 1);
	vmmio_write(&t->m, 0x020, 4, 1);
	vmmio_write(&t->m, 0x070, 4, 0xb);
	ck_assert_uint_eq(vmmio_read(&t->m, 0x070, 4), 0xb);
	vmmio_write(&t->m, 0x030, 4, 0);
	vmmio_write(&t->m, 0x038, 4, 16);
	vmmio_write(&t->m, 0x080, 4, TR_DESC);
	vmmio_write(&t->m, 0x090, 4, TR_AVAIL);
	vmmio_write(&t->m, 0x0a0, 4, TR_USED);
	vmmio_write(&t->m, 0x044, 4, 1);
	vmmio_write(&t->m, 0x070, 4, 0xf);
	return t;
}

static void tr_free(struct tr *t)
{
	vmmio_destroy(&t->m);
	rng_dev_destroy(&t->rng);
	gmem_destroy(&t->mem);
	free(t->buf);
	free(t);
}

/* Offers one chain of two writable buffers (len1, len2), kicks, and waits
 * for the used entry; returns the length the device reported. */
static uint32_t tr_request(struct tr *t, uint32_t len1, uint32_t len2)
{
	struct guest_buf b[2] = { { TR_BUF, len1, true }, { TR_BUF + len1, len2, true } };
	struct pollfd pfd = { .fd = t->rng.vq.call_fd, .events = POLLIN };
	uint16_t before = guest_ring_used_idx(&t->ring);
	uint64_t cnt;

	guest_ring_post_at(&t->ring, 0, b, 2);
	vmmio_write(&t->m, 0x050, 4, 0);
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(read(pfd.fd, &cnt, sizeof(cnt)), 8);
	ck_assert_uint_eq(guest_ring_used_idx(&t->ring), (uint16_t)(before + 1));
	return guest_ring_next_used(&t->ring).len;
}

START_TEST(fills_buffers_with_random_bytes)
{
	struct tr *t = tr_new(NULL);
	unsigned distinct = 0;
	bool seen[256] = { false };

	ck_assert_uint_eq(vmmio_read(&t->m, 0x008, 4), VIRTIO_ID_RNG);
	ck_assert_uint_eq(tr_request(t, 100, 412), 512);
	for (int i = 0; i < 512; i++) {
		if (!seen[t->buf[TR_BUF + i]])
			distinct++;
		seen[t->buf[TR_BUF + i]] = true;
	}
	/* 512 random bytes hit well over 100 of 256 values; zeroes would hit 1. */
	ck_assert_uint_gt(distinct, 100);
	ck_assert_uint_eq(tr_request(t, 8, 8), 16);
	tr_free(t);
}
END_TEST

START_TEST(reads_the_given_source_and_caps_requests)
{
	char path[] = "/tmp/cvmm-rng-src-XXXXXX";
	int fd = mkstemp(path);
	static uint8_t pattern[RNG_MAX_REQUEST + 4096];
	struct tr *t;

	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
	ck_assert_int_eq(write(fd, pattern, sizeof(pattern)), (ssize_t)sizeof(pattern));
	close(fd);
	t = tr_new(path);
	ck_assert_uint_eq(tr_request(t, 32, 32), 64);
	ck_assert_mem_eq(t->buf + TR_BUF, pattern, 64);
	/* A request larger than the cap gets the cap; then the source runs dry. */
	ck_assert_uint_eq(tr_request(t, RNG_MAX_REQUEST, 4096), RNG_MAX_REQUEST);
	ck_assert_uint_eq(tr_request(t, 4096, 4096), sizeof(pattern) - 64 - RNG_MAX_REQUEST);
	tr_free(t);
	unlink(path);
}
END_TEST

START_TEST(missing_source_is_an_error)
{
	struct rng_dev r;

	ck_assert_int_eq(rng_dev_init(&r, "/nonexistent/cvmm-rng"), -ENOENT);
}
END_TEST

CHECK_MAIN("virtio_rng",
	   fills_buffers_with_random_bytes,
	   reads_the_given_source_and_caps_requests,
	   missing_source_is_an_error)
