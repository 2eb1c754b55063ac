#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "cvmm/gmem.h"
#include "check_run.h"

static uint8_t gmem_test_buf_a[4096], gmem_test_buf_b[8192];

static void gmem_test_two_regions(struct gmem *m)
{
	struct gmem_region a = { .gpa = 0x1000, .size = sizeof(gmem_test_buf_a), .uaddr = 0x7000000,
				 .hva = gmem_test_buf_a, .fd = -1 };
	struct gmem_region b = { .gpa = 0x2000, .size = sizeof(gmem_test_buf_b), .uaddr = 0x9000000,
				 .hva = gmem_test_buf_b, .fd = -1 };

	gmem_init(m);
	ck_assert_int_eq(gmem_add(m, &a), 0);
	ck_assert_int_eq(gmem_add(m, &b), 0);
}

START_TEST(translate_cuts_at_region_end)
{
	struct gmem m;
	uint64_t contig;

	gmem_test_two_regions(&m);
	ck_assert_ptr_eq(gmem_translate(&m, 0x1ff0, 0x100, &contig), gmem_test_buf_a + 0xff0);
	ck_assert_uint_eq(contig, 0x10);
	ck_assert_ptr_eq(gmem_translate(&m, 0x2000, 0xf0, &contig), gmem_test_buf_b);
	ck_assert_uint_eq(contig, 0xf0);
	ck_assert_ptr_null(gmem_translate(&m, 0x0fff, 1, &contig));
	ck_assert_ptr_null(gmem_translate(&m, 0x4000, 1, &contig));
	ck_assert_ptr_null(gmem_translate(&m, 0x1000, 0, &contig));
	gmem_destroy(&m);
}
END_TEST

START_TEST(ptr_requires_one_region)
{
	struct gmem m;

	gmem_test_two_regions(&m);
	ck_assert_ptr_nonnull(gmem_ptr(&m, 0x1000, 4096));
	ck_assert_ptr_null(gmem_ptr(&m, 0x1ff0, 0x20));
	ck_assert_ptr_null(gmem_ptr(&m, UINT64_MAX - 4, 16));
	ck_assert_ptr_eq(gmem_uaddr_ptr(&m, 0x9000010, 16), gmem_test_buf_b + 0x10);
	ck_assert_ptr_null(gmem_uaddr_ptr(&m, 0x9000000 + 8190, 4));
	gmem_destroy(&m);
}
END_TEST

START_TEST(add_rejects_overlap_and_wrap)
{
	struct gmem m;
	struct gmem_region overlap = { .gpa = 0x2fff, .size = 2, .hva = gmem_test_buf_a, .fd = -1 };
	struct gmem_region uoverlap = { .gpa = 0x10000, .size = 16, .uaddr = 0x7000ff0,
					.hva = gmem_test_buf_a, .fd = -1 };
	struct gmem_region wrap = { .gpa = UINT64_MAX - 10, .size = 20, .hva = gmem_test_buf_a, .fd = -1 };
	struct gmem_region empty = { .gpa = 0x100000, .size = 0, .hva = gmem_test_buf_a, .fd = -1 };

	gmem_test_two_regions(&m);
	ck_assert_int_eq(gmem_add(&m, &overlap), -EINVAL);
	ck_assert_int_eq(gmem_add(&m, &uoverlap), -EINVAL);
	ck_assert_int_eq(gmem_add(&m, &wrap), -EINVAL);
	ck_assert_int_eq(gmem_add(&m, &empty), -EINVAL);
	ck_assert_int_eq(gmem_remove(&m, 0x1000, 4096, 0x7000000), 0);
	ck_assert_int_eq(gmem_remove(&m, 0x1000, 4096, 0x7000000), -ENOENT);
	ck_assert_uint_eq(m.nregions, 1);
	gmem_destroy(&m);
}
END_TEST

CHECK_MAIN("gmem",
	   translate_cuts_at_region_end,
	   ptr_requires_one_region,
	   add_rejects_overlap_and_wrap)
