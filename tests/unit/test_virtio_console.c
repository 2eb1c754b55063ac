/*
 * virtio-console's device side, hosted directly: guest output that its
 * reader does not take never holds up the VMM's input path, and host input
 * reaches the guest however many buffers without room come first.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/virtio_console.h"
#include "check_run.h"
#include "guest_ring.h"

#define TC_MEM 0x100000
#define TC_RING(q) (0x10000 + (q) * 0x10000)   /* desc; avail +0x1000, used +0x2000 */
#define TC_BUF 0x40000
#define TC_QSIZE VCON_QUEUE_SIZE
#define TC_WAIT_MS 3000
/* Input is taken at once; a stalled one fails well within Check's 4 s. */
#define TC_FEED_MS 2000

struct tc_env {
	struct vcon_dev con;
	uint8_t *mem_buf;
	struct gmem mem;
	struct guest_ring ring[2];     /* RX 0, TX 1: the driver's side */
	int kick[2], call[2];
};

static void tc_setup(struct tc_env *e)
{
	struct gmem_region r = { .gpa = 0, .size = TC_MEM, .fd = -1 };

	memset(e, 0, sizeof(*e));
	ck_assert_int_eq(vcon_dev_init(&e->con), 0);
	e->mem_buf = calloc(1, TC_MEM);
	ck_assert_ptr_nonnull(e->mem_buf);
	r.hva = e->mem_buf;
	gmem_init(&e->mem);
	ck_assert_int_eq(gmem_add(&e->mem, &r), 0);
	e->con.vdev.mem = &e->mem;
	ck_assert_int_eq(vdev_set_features(&e->con.vdev, VIRTIO_BIT(VIRTIO_F_VERSION_1)), 0);
	for (unsigned q = 0; q < 2; q++) {
		uint64_t base = TC_RING(q);

		guest_ring_init(&e->ring[q], e->mem_buf, TC_QSIZE, base, base + 0x1000, base + 0x2000);
		ck_assert_int_eq(virtq_setup(&e->con.vqs[q], &e->mem, TC_QSIZE, base, base + 0x1000,
					     base + 0x2000), 0);
		e->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		e->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		e->con.vqs[q].kick_fd = e->kick[q];
		e->con.vqs[q].call_fd = e->call[q];
		ck_assert_int_eq(vdev_queue_start(&e->con.vdev, q), 0);
	}
}

static void tc_teardown(struct tc_env *e)
{
	vcon_dev_destroy(&e->con);
	for (unsigned q = 0; q < 2; q++) {
		close(e->kick[q]);
		close(e->call[q]);
	}
	gmem_destroy(&e->mem);
	free(e->mem_buf);
}

static void tc_post(struct tc_env *e, unsigned q, uint64_t gpa, uint32_t len, bool writable)
{
	struct guest_buf b = { gpa, len, writable };

	guest_ring_post(&e->ring[q], &b, 1);
}

static void tc_kick(struct tc_env *e, unsigned q)
{
	ck_assert_int_eq(eventfd_write(e->kick[q], 1), 0);
}

struct tc_feeder {
	struct tc_env *e;
	atomic_bool done;
};

static void *tc_feed_thread(void *arg)
{
	struct tc_feeder *f = arg;

	vcon_dev_input(&f->e->con, (const uint8_t *)"x", 1);
	(void)vcon_dev_room(&f->e->con);
	atomic_store(&f->done, true);
	return NULL;
}

/* stdout's reader stops: the console worker waits in its write, and the
 * VMM's main loop (which feeds input and asks for room) goes on. */
START_TEST(stalled_output_does_not_hold_input)
{
	struct tc_env e;
	struct tc_feeder f = { .e = &e };
	static uint8_t junk[65536];
	int p[2], fl;
	pthread_t t;

	tc_setup(&e);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	fl = fcntl(p[1], F_GETFL);
	ck_assert_int_eq(fcntl(p[1], F_SETFL, fl | O_NONBLOCK), 0);
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	ck_assert_int_eq(fcntl(p[1], F_SETFL, fl), 0);
	vcon_dev_set_output(&e.con, p[1]);
	tc_post(&e, 1, TC_BUF, 64, false);
	tc_kick(&e, 1);
	usleep(200000);
	ck_assert_uint_eq(guest_ring_used_idx(&e.ring[1]), 0);

	pthread_create(&t, NULL, tc_feed_thread, &f);
	for (int i = 0; i < TC_FEED_MS / 10 && !atomic_load(&f.done); i++)
		usleep(10000);
	ck_assert_msg(atomic_load(&f.done), "input waited for a stalled console output");
	/* The reader catches up: the output completes. */
	for (int i = 0; i < TC_WAIT_MS / 10 && guest_ring_used_idx(&e.ring[1]) == 0; i++) {
		(void)!read(p[0], junk, sizeof(junk));
		usleep(10000);
	}
	ck_assert_uint_eq(guest_ring_used_idx(&e.ring[1]), 1);
	pthread_join(t, NULL);
	vcon_dev_set_output(&e.con, -1);
	close(p[0]);
	close(p[1]);
	tc_teardown(&e);
}
END_TEST

/* A ring full of buffers with no room for input (more than a pass takes):
 * each comes back empty, and the input waits for the next one with room. */
START_TEST(input_passes_buffers_without_room)
{
	struct tc_env e;
	struct virtq_used_elem u = { 0 };

	tc_setup(&e);
	for (unsigned i = 0; i < TC_QSIZE; i++)
		tc_post(&e, 0, TC_BUF + i * 64, 64, false);
	ck_assert_uint_eq(vcon_dev_input(&e.con, (const uint8_t *)"hi", 2), 2);
	ck_assert(guest_ring_wait_used(&e.ring[0], TC_QSIZE, TC_WAIT_MS));
	for (unsigned i = 0; i < TC_QSIZE; i++)
		ck_assert_uint_eq(guest_ring_next_used(&e.ring[0]).len, 0);
	tc_post(&e, 0, TC_BUF, 64, true);
	tc_kick(&e, 0);
	ck_assert(guest_ring_wait_used(&e.ring[0], TC_QSIZE + 1, TC_WAIT_MS));
	u = guest_ring_next_used(&e.ring[0]);
	ck_assert_uint_eq(u.len, 2);
	ck_assert_int_eq(memcmp(e.mem_buf + TC_BUF, "hi", 2), 0);
	tc_teardown(&e);
}
END_TEST

CHECK_MAIN("virtio_console",
	   stalled_output_does_not_hold_input,
	   input_passes_buffers_without_room)
