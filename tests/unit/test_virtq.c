/* The chain walker and ring core against hostile descriptor tables. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm/virtq.h"
#include "check_run.h"

#define TQ_MEM_SIZE (1 << 20)
#define TQ_SIZE 16
#define TQ_DESC 0x1000
#define TQ_AVAIL 0x2000
#define TQ_USED 0x3000
#define TQ_DATA 0x10000

struct tq {
	uint8_t *mem_buf;
	struct gmem mem;
	struct virtq vq;
	struct virtq_chain *chain;
};

static struct tq *tq_new(uint16_t size)
{
	struct tq *t = calloc(1, sizeof(*t));
	struct gmem_region r = { .gpa = 0, .size = TQ_MEM_SIZE, .fd = -1 };

	t->mem_buf = calloc(1, TQ_MEM_SIZE);
	t->chain = malloc(sizeof(*t->chain));
	r.hva = t->mem_buf;
	gmem_init(&t->mem);
	ck_assert_int_eq(gmem_add(&t->mem, &r), 0);
	virtq_init(&t->vq);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, size, TQ_DESC, TQ_AVAIL, TQ_USED), 0);
	t->vq.indirect = true;
	return t;
}

static void tq_free(struct tq *t)
{
	virtq_destroy(&t->vq);
	gmem_destroy(&t->mem);
	free(t->chain);
	free(t->mem_buf);
	free(t);
}

static struct virtq_desc *tq_desc(struct tq *t, uint64_t table_gpa, unsigned i)
{
	return (struct virtq_desc *)(t->mem_buf + table_gpa) + i;
}

static void tq_set(struct tq *t, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		   uint16_t flags, uint16_t next)
{
	*tq_desc(t, table, i) = (struct virtq_desc){ addr, len, flags, next };
}

static struct virtq_avail *tq_avail(struct tq *t)
{
	return (struct virtq_avail *)(t->mem_buf + TQ_AVAIL);
}

static struct virtq_used *tq_used(struct tq *t)
{
	return (struct virtq_used *)(t->mem_buf + TQ_USED);
}

/* Makes head the next available entry. */
static void tq_offer(struct tq *t, uint16_t head)
{
	struct virtq_avail *a = tq_avail(t);

	a->ring[a->idx % t->vq.size] = head;
	a->idx++;
}

START_TEST(pop_simple_chain)
{
	struct tq *t = tq_new(TQ_SIZE);

	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 0);
	tq_set(t, TQ_DESC, 3, TQ_DATA, 16, VIRTQ_DESC_F_NEXT, 5);
	tq_set(t, TQ_DESC, 5, TQ_DATA + 100, 512, VIRTQ_DESC_F_NEXT, 7);
	tq_set(t, TQ_DESC, 7, TQ_DATA + 1000, 1, VIRTQ_DESC_F_WRITE, 0);
	tq_offer(t, 3);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	ck_assert_uint_eq(t->chain->head, 3);
	ck_assert_uint_eq(t->chain->nout, 2);
	ck_assert_uint_eq(t->chain->nin, 1);
	ck_assert_uint_eq(t->chain->out_len, 528);
	ck_assert_uint_eq(t->chain->in_len, 1);
	ck_assert_ptr_eq(t->chain->iov[2].iov_base, t->mem_buf + TQ_DATA + 1000);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 0);
	virtq_push(&t->vq, 3, 1);
	ck_assert_uint_eq(tq_used(t)->idx, 1);
	ck_assert_uint_eq(tq_used(t)->ring[0].id, 3);
	ck_assert_uint_eq(tq_used(t)->ring[0].len, 1);
	tq_free(t);
}
END_TEST

/* Each hostile table must break the queue, not be walked. */
static void tq_expect_broken(struct tq *t, uint16_t head)
{
	tq_offer(t, head);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), -EIO);
	ck_assert(t->vq.broken);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), -EIO);
}

START_TEST(loop_is_refused)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, VIRTQ_DESC_F_NEXT, 1);
	tq_set(t, TQ_DESC, 1, TQ_DATA, 8, VIRTQ_DESC_F_NEXT, 0);
	tq_expect_broken(t, 0);
	tq_free(t);
}
END_TEST

START_TEST(buffer_outside_memory_is_refused)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_DESC, 0, TQ_MEM_SIZE - 4, 8, 0, 0);
	tq_expect_broken(t, 0);
	tq_free(t);
}
END_TEST

START_TEST(wrapping_buffer_is_refused)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_DESC, 0, UINT64_MAX - 2, 16, 0, 0);
	tq_expect_broken(t, 0);
	tq_free(t);
}
END_TEST

START_TEST(readable_after_writable_is_refused)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	tq_set(t, TQ_DESC, 1, TQ_DATA, 8, 0, 0);
	tq_expect_broken(t, 0);
	tq_free(t);
}
END_TEST

START_TEST(bad_indexes_are_refused)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_expect_broken(t, TQ_SIZE); /* head out of range */
	tq_free(t);
	t = tq_new(TQ_SIZE);
	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, VIRTQ_DESC_F_NEXT, TQ_SIZE);
	tq_expect_broken(t, 0); /* next out of range */
	tq_free(t);
	t = tq_new(TQ_SIZE);
	tq_avail(t)->idx = TQ_SIZE + 1; /* avail index ran ahead of the ring */
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), -EIO);
	tq_free(t);
}
END_TEST

START_TEST(zero_length_descriptor_is_skipped)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_DESC, 0, TQ_DATA, 0, VIRTQ_DESC_F_NEXT, 1);
	tq_set(t, TQ_DESC, 1, TQ_DATA, 4, VIRTQ_DESC_F_WRITE, 0);
	tq_offer(t, 0);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	ck_assert_uint_eq(t->chain->nout, 0);
	ck_assert_uint_eq(t->chain->nin, 1);
	tq_free(t);
}
END_TEST

START_TEST(buffer_across_regions_is_split)
{
	struct tq *t = tq_new(TQ_SIZE);
	static uint8_t second[4096];
	struct gmem_region r = { .gpa = TQ_MEM_SIZE, .size = sizeof(second), .hva = second, .fd = -1 };

	ck_assert_int_eq(gmem_add(&t->mem, &r), 0);
	tq_set(t, TQ_DESC, 0, TQ_MEM_SIZE - 16, 32, 0, 0);
	tq_offer(t, 0);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	ck_assert_uint_eq(t->chain->nout, 2);
	ck_assert_uint_eq(t->chain->iov[0].iov_len, 16);
	ck_assert_ptr_eq(t->chain->iov[1].iov_base, second);
	ck_assert_uint_eq(t->chain->iov[1].iov_len, 16);
	tq_free(t);
}
END_TEST

START_TEST(huge_chains_are_refused)
{
	struct tq *t = tq_new(2048);
	static uint8_t big;
	struct gmem_region fake = { .gpa = 1ULL << 40, .size = 1ULL << 34, .hva = &big, .fd = -1 };

	/* More iovecs than VIRTQ_MAX_IOV. */
	for (unsigned i = 0; i < 2048; i++)
		tq_set(t, TQ_DESC, i, TQ_DATA, 1, i < 2047 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	tq_expect_broken(t, 0);
	tq_free(t);
	/* More than 4 GiB in one chain (never touched: the walk refuses it). */
	t = tq_new(TQ_SIZE);
	ck_assert_int_eq(gmem_add(&t->mem, &fake), 0);
	tq_set(t, TQ_DESC, 0, fake.gpa, 0xc0000000u, VIRTQ_DESC_F_NEXT, 1);
	tq_set(t, TQ_DESC, 1, fake.gpa, 0xc0000000u, 0, 0);
	tq_expect_broken(t, 0);
	tq_free(t);
}
END_TEST

#define TQ_INDIRECT 0x4000

START_TEST(indirect_table_is_walked)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_INDIRECT, 0, TQ_DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	tq_set(t, TQ_INDIRECT, 2, TQ_DATA + 64, 64, VIRTQ_DESC_F_WRITE, 0);
	tq_set(t, TQ_DESC, 4, TQ_INDIRECT, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	tq_offer(t, 4);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	ck_assert_uint_eq(t->chain->head, 4);
	ck_assert_uint_eq(t->chain->out_len, 16);
	ck_assert_uint_eq(t->chain->in_len, 64);
	tq_free(t);
}
END_TEST

START_TEST(bad_indirect_tables_are_refused)
{
	static const struct { uint32_t len; uint16_t flags; uint16_t inner_flags; bool negotiated; } cases[] = {
		{ 32, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_INDIRECT, true },      /* nested */
		{ 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 0, true },      /* INDIRECT with NEXT */
		{ 24, VIRTQ_DESC_F_INDIRECT, 0, true },                          /* not a multiple of 16 */
		{ 0, VIRTQ_DESC_F_INDIRECT, 0, true },                           /* empty */
		{ 32, VIRTQ_DESC_F_INDIRECT, 0, false },                         /* not negotiated */
		{ 32, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, true },          /* loop inside the table */
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tq *t = tq_new(TQ_SIZE);

		t->vq.indirect = cases[i].negotiated;
		tq_set(t, TQ_INDIRECT, 0, TQ_INDIRECT, 32, cases[i].inner_flags, 1);
		tq_set(t, TQ_INDIRECT, 1, TQ_DATA, 8, cases[i].inner_flags & VIRTQ_DESC_F_NEXT, 0);
		tq_set(t, TQ_DESC, 0, TQ_INDIRECT, cases[i].len, cases[i].flags, 1);
		tq_set(t, TQ_DESC, 1, TQ_DATA, 8, 0, 0);
		tq_expect_broken(t, 0);
		tq_free(t);
	}
	{
		struct tq *t = tq_new(TQ_SIZE); /* table outside memory */

		tq_set(t, TQ_DESC, 0, TQ_MEM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
		tq_expect_broken(t, 0);
		tq_free(t);
	}
}
END_TEST

START_TEST(setup_validates_rings)
{
	struct tq *t = tq_new(TQ_SIZE);

	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 12, TQ_DESC, TQ_AVAIL, TQ_USED), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 0, TQ_DESC, TQ_AVAIL, TQ_USED), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 65535, TQ_DESC, TQ_AVAIL, TQ_USED), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 16, TQ_DESC + 8, TQ_AVAIL, TQ_USED), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 16, TQ_DESC, TQ_AVAIL + 1, TQ_USED), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 16, TQ_DESC, TQ_AVAIL, TQ_USED + 2), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 16, TQ_MEM_SIZE - 128, TQ_AVAIL, TQ_USED), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 16, TQ_DESC, TQ_AVAIL, TQ_MEM_SIZE - 64), -EINVAL);
	ck_assert_int_eq(virtq_setup(&t->vq, &t->mem, 4096, TQ_DESC, TQ_AVAIL, TQ_USED), 0);
	tq_free(t);
}
END_TEST

START_TEST(event_idx_arithmetic_wraps)
{
	ck_assert(virtq_need_event(0xffff, 0x0001, 0xfffe));
	ck_assert(virtq_need_event(0x0000, 0x0001, 0xffff));
	ck_assert(!virtq_need_event(0x0001, 0x0001, 0xffff));
	ck_assert(!virtq_need_event(0xfffd, 0x0001, 0xfffe));
	ck_assert(virtq_need_event(5, 6, 5));
	ck_assert(!virtq_need_event(6, 6, 5));
}
END_TEST

static uint64_t tq_read_eventfd(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

START_TEST(notify_honours_used_event)
{
	struct tq *t = tq_new(TQ_SIZE);
	uint16_t *used_event = &tq_avail(t)->ring[TQ_SIZE];

	t->vq.event_idx = true;
	t->vq.call_fd = eventfd(0, EFD_NONBLOCK);
	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, 0, 0);
	for (int i = 0; i < 3; i++)
		tq_offer(t, 0);
	*used_event = 1; /* the driver wants to hear once the 2nd entry is used */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	virtq_push(&t->vq, 0, 0);
	virtq_notify(&t->vq); /* the first use is always signalled */
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 1);
	virtq_push(&t->vq, 0, 0);
	virtq_notify(&t->vq); /* used idx 1 -> 2 crosses used_event 1 */
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 1);
	virtq_push(&t->vq, 0, 0);
	virtq_notify(&t->vq); /* 2 -> 3 does not */
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 0);
	virtq_notify(&t->vq); /* nothing new pushed */
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 0);
	close(t->vq.call_fd);
	tq_free(t);
}
END_TEST

/* Staged chains appear together, and inflight tracking sees them as one batch. */
START_TEST(push_batch_publishes_once)
{
	struct tq *t = tq_new(TQ_SIZE);
	struct virtq_inflight *inf = calloc(1, virtq_inflight_size(TQ_SIZE));

	ck_assert_int_eq(virtq_inflight_restore(&t->vq, inf), 0);
	for (uint16_t h = 0; h < 3; h++) {
		tq_set(t, TQ_DESC, h, TQ_DATA, 8, VIRTQ_DESC_F_WRITE, 0);
		tq_offer(t, h);
		ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	}
	virtq_push_stage(&t->vq, 0, 2, 10);
	virtq_push_stage(&t->vq, 1, 0, 20);
	ck_assert_uint_eq(tq_used(t)->idx, 0);
	virtq_push_publish(&t->vq, 2);
	ck_assert_uint_eq(tq_used(t)->idx, 2);
	ck_assert_uint_eq(tq_used(t)->ring[0].id, 2);
	ck_assert_uint_eq(tq_used(t)->ring[1].len, 20);
	ck_assert_uint_eq(inf->desc[2].inflight, 0);
	ck_assert_uint_eq(inf->desc[0].inflight, 0);
	ck_assert_uint_eq(inf->desc[1].inflight, 1);
	ck_assert_uint_eq(inf->used_idx, 2);
	free(inf);
	tq_free(t);
}
END_TEST

/* A pass that used nothing must not interrupt the driver, even first. */
START_TEST(notify_without_use_is_silent)
{
	struct tq *t = tq_new(TQ_SIZE);

	t->vq.call_fd = eventfd(0, EFD_NONBLOCK);
	virtq_notify(&t->vq);
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 0);
	t->vq.event_idx = true;
	virtq_notify(&t->vq);
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 0);
	close(t->vq.call_fd);
	tq_free(t);
}
END_TEST

START_TEST(notify_honours_no_interrupt_flag)
{
	struct tq *t = tq_new(TQ_SIZE);

	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, 0, 0);
	tq_offer(t, 0);
	tq_offer(t, 0);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	tq_avail(t)->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	virtq_push(&t->vq, 0, 0);
	ck_assert(!virtq_should_notify(&t->vq));
	tq_avail(t)->flags = 0;
	virtq_push(&t->vq, 0, 0);
	ck_assert(virtq_should_notify(&t->vq));
	ck_assert(!virtq_should_notify(&t->vq));
	tq_free(t);
}
END_TEST

START_TEST(enable_notify_reports_late_buffers)
{
	struct tq *t = tq_new(TQ_SIZE);
	uint16_t *avail_event = (uint16_t *)&tq_used(t)->ring[TQ_SIZE];

	t->vq.event_idx = true;
	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, 0, 0);
	ck_assert(!virtq_enable_notify(&t->vq));
	tq_offer(t, 0);
	ck_assert(virtq_enable_notify(&t->vq));
	ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	ck_assert(!virtq_enable_notify(&t->vq));
	ck_assert_uint_eq(*avail_event, 1);
	t->vq.event_idx = false;
	virtq_disable_notify(&t->vq);
	ck_assert_uint_eq(tq_used(t)->flags, VIRTQ_USED_F_NO_NOTIFY);
	ck_assert(!virtq_enable_notify(&t->vq));
	ck_assert_uint_eq(tq_used(t)->flags, 0);
	tq_free(t);
}
END_TEST

START_TEST(inflight_resubmits_after_restart)
{
	struct tq *t = tq_new(TQ_SIZE);
	struct virtq_inflight *inf = calloc(1, virtq_inflight_size(TQ_SIZE));
	struct virtq again;

	ck_assert_int_eq(virtq_inflight_restore(&t->vq, inf), 0);
	for (uint16_t h = 0; h < 4; h++) {
		tq_set(t, TQ_DESC, h, TQ_DATA, 8, 0, 0);
		tq_offer(t, 3 - h); /* heads 3, 2, 1, 0 in that order */
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(virtq_pop(&t->vq, t->chain), 1);
	virtq_push(&t->vq, 2, 0);
	/* Back-end dies with 3, 1, 0 in flight; then, as if it had died between
	 * publishing head 1 and clearing its flag: */
	virtq_push(&t->vq, 1, 0);
	inf->desc[1].inflight = 1;
	inf->used_idx--;
	/* A new back-end: same rings, the front-end sends base = used idx. */
	virtq_init(&again);
	ck_assert_int_eq(virtq_setup(&again, &t->mem, TQ_SIZE, TQ_DESC, TQ_AVAIL, TQ_USED), 0);
	again.last_avail_idx = tq_used(t)->idx;
	ck_assert_int_eq(virtq_inflight_restore(&again, inf), 0);
	ck_assert_uint_eq(again.last_avail_idx, 4);
	ck_assert_int_eq(virtq_pop(&again, t->chain), 1);
	ck_assert_uint_eq(t->chain->head, 3);
	ck_assert_int_eq(virtq_pop(&again, t->chain), 1);
	ck_assert_uint_eq(t->chain->head, 0);
	ck_assert_int_eq(virtq_pop(&again, t->chain), 0);
	virtq_push(&again, 3, 0);
	virtq_push(&again, 0, 0);
	for (int h = 0; h < 4; h++)
		ck_assert_uint_eq(inf->desc[h].inflight, 0);
	/* A region that does not match the ring is refused. */
	inf->desc_num = 8;
	ck_assert_int_eq(virtq_inflight_restore(&again, inf), -EINVAL);
	virtq_destroy(&again);
	free(inf);
	tq_free(t);
}
END_TEST

/* A front-end that rewrites the inflight region while the back-end restores
 * from it. The region straddles two pages; the second is inaccessible until
 * first touched, and that fault is when the "front-end" marks every entry on
 * the first page in flight. */
#define TQ_RACE_SIZE 256
static uint8_t *tq_race_page;
static long tq_race_page_size;

static void tq_race_fault(int sig, siginfo_t *si, void *uc)
{
	struct virtq_inflight *inf = (struct virtq_inflight *)(tq_race_page - 4096);
	uint8_t *addr = si->si_addr;

	(void)sig;
	(void)uc;
	if (addr < tq_race_page || addr >= tq_race_page + tq_race_page_size)
		abort();
	mprotect(tq_race_page, tq_race_page_size, PROT_READ | PROT_WRITE);
	for (unsigned h = 0; h < TQ_RACE_SIZE - 1; h++)
		inf->desc[h].inflight = 1;
}

START_TEST(inflight_restore_uses_one_snapshot)
{
	struct tq *t = tq_new(TQ_RACE_SIZE);
	long page = sysconf(_SC_PAGESIZE);
	struct sigaction sa = { .sa_sigaction = tq_race_fault, .sa_flags = SA_SIGINFO };
	uint8_t *map;
	struct virtq_inflight *inf;
	unsigned flagged = 0;

	/* Header and desc[0..254] fill the first 4096 bytes; desc[255] is on the next page. */
	ck_assert_uint_eq(virtq_inflight_size(TQ_RACE_SIZE), 4096 + 16);
	ck_assert_int_ge(page, 4096);
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	tq_race_page = map + page;
	tq_race_page_size = page;
	inf = (struct virtq_inflight *)(tq_race_page - 4096);
	inf->version = 1;
	inf->desc_num = TQ_RACE_SIZE;
	inf->desc[0].inflight = 1;
	inf->desc[0].counter = 1;
	ck_assert_int_eq(mprotect(tq_race_page, page, PROT_NONE), 0);
	ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);

	ck_assert_int_eq(virtq_inflight_restore(&t->vq, inf), 0);
	/* Whatever the back-end read, it resubmits exactly what the region
	 * records, and nothing past its own list was written (ASan). */
	for (unsigned h = 0; h < TQ_RACE_SIZE; h++)
		flagged += inf->desc[h].inflight;
	ck_assert_uint_eq(t->vq.nresubmit, flagged);
	ck_assert_uint_eq(t->vq.last_avail_idx, (uint16_t)flagged);
	for (unsigned i = 0; i < t->vq.nresubmit; i++)
		ck_assert_uint_eq(inf->desc[t->vq.resubmit[i]].inflight, 1);
	signal(SIGSEGV, SIG_DFL);
	t->vq.inflight = NULL;
	munmap(map, 2 * page);
	tq_free(t);
}
END_TEST

static uint32_t tq_count_handler(void *arg, struct virtq_chain *c)
{
	(*(unsigned *)arg)++;
	return c->in_len;
}

START_TEST(serve_bounds_each_pass_and_requeues)
{
	struct tq *t = tq_new(TQ_SIZE);
	unsigned handled = 0;
	uint64_t cnt = 0;

	t->vq.kick_fd = eventfd(0, EFD_NONBLOCK);
	t->vq.call_fd = eventfd(0, EFD_NONBLOCK);
	tq_set(t, TQ_DESC, 0, TQ_DATA, 8, VIRTQ_DESC_F_WRITE, 0);
	for (int i = 0; i < 5; i++)
		tq_offer(t, 0);
	ck_assert_int_eq(virtq_serve(&t->vq, t->chain, 3, tq_count_handler, &handled), 3);
	ck_assert_uint_eq(handled, 3);
	ck_assert_uint_eq(tq_used(t)->idx, 3);
	ck_assert_uint_eq(tq_used(t)->ring[2].len, 8);
	/* Budget spent with work left: it kicked itself to come back. */
	ck_assert_int_eq(read(t->vq.kick_fd, &cnt, sizeof(cnt)), 8);
	ck_assert_uint_eq(tq_read_eventfd(t->vq.call_fd), 1);
	ck_assert_int_eq(virtq_serve(&t->vq, t->chain, 3, tq_count_handler, &handled), 2);
	ck_assert_int_eq(read(t->vq.kick_fd, &cnt, sizeof(cnt)), -1); /* drained: no self-kick */
	ck_assert_uint_eq(tq_used(t)->flags, 0); /* notifications back on */
	ck_assert_int_eq(virtq_serve(&t->vq, t->chain, 3, tq_count_handler, &handled), 0);
	tq_set(t, TQ_DESC, 1, TQ_DATA, 8, VIRTQ_DESC_F_NEXT, 1);
	tq_offer(t, 1);
	ck_assert_int_eq(virtq_serve(&t->vq, t->chain, 3, tq_count_handler, &handled), -EIO);
	close(t->vq.kick_fd);
	close(t->vq.call_fd);
	tq_free(t);
}
END_TEST

CHECK_MAIN("virtq",
	   pop_simple_chain,
	   loop_is_refused,
	   buffer_outside_memory_is_refused,
	   wrapping_buffer_is_refused,
	   readable_after_writable_is_refused,
	   bad_indexes_are_refused,
	   zero_length_descriptor_is_skipped,
	   buffer_across_regions_is_split,
	   huge_chains_are_refused,
	   indirect_table_is_walked,
	   bad_indirect_tables_are_refused,
	   setup_validates_rings,
	   event_idx_arithmetic_wraps,
	   notify_honours_used_event,
	   notify_without_use_is_silent,
	   push_batch_publishes_once,
	   notify_honours_no_interrupt_flag,
	   enable_notify_reports_late_buffers,
	   inflight_resubmits_after_restart,
	   inflight_restore_uses_one_snapshot,
	   serve_bounds_each_pass_and_requeues)
