#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/opts.h"

struct test_opts {
	uint64_t size;
	bool shared;
	char *path;
	uint32_t num;
};

static const struct opt_spec test_spec[] = {
	OPT_SPEC("size", OPT_SIZE, struct test_opts, size),
	OPT_SPEC("shared", OPT_BOOL, struct test_opts, shared),
	OPT_SPEC("path", OPT_STRING, struct test_opts, path),
	OPT_SPEC("num", OPT_U32, struct test_opts, num),
	OPT_SPEC_END,
};

START_TEST(opts_sizes)
{
	uint64_t v;

	ck_assert_int_eq(opts_parse_size("512M", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(opts_parse_size("4k", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(opts_parse_size("2G", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(opts_parse_size("1T", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 40);
	ck_assert_int_eq(opts_parse_size("12345", &v), 0);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(opts_parse_size("", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("M", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("-1M", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size(" 1M", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("1MB", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("1X", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_size("99999999999999999999", &v), -ERANGE);
	ck_assert_int_eq(opts_parse_size("17179869184G", &v), -ERANGE);
}
END_TEST

START_TEST(opts_bools_and_numbers)
{
	bool b = false;
	uint64_t v;

	ck_assert_int_eq(opts_parse_bool("on", &b), 0);
	ck_assert(b);
	ck_assert_int_eq(opts_parse_bool("off", &b), 0);
	ck_assert(!b);
	ck_assert_int_eq(opts_parse_bool("maybe", &b), -EINVAL);
	ck_assert_int_eq(opts_parse_u64("0x10", &v), 0);
	ck_assert_uint_eq(v, 16);
	ck_assert_int_eq(opts_parse_u64("10x", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_u64("+3", &v), -EINVAL);
}
END_TEST

START_TEST(opts_parse_fills_struct)
{
	struct test_opts o = { .size = 1, .num = 7 };
	uint64_t seen = 0;
	char err[128];

	ck_assert_int_eq(opts_parse("size=1G,path=/tmp/x,shared=on", test_spec, &o, &seen, err, sizeof(err)), 0);
	ck_assert_uint_eq(o.size, 1ULL << 30);
	ck_assert(o.shared);
	ck_assert_str_eq(o.path, "/tmp/x");
	ck_assert_uint_eq(o.num, 7);
	ck_assert_uint_eq(seen, 0x7);
	opts_free(test_spec, &o);
	ck_assert_ptr_null(o.path);
	ck_assert_int_eq(opts_parse("", test_spec, &o, &seen, err, sizeof(err)), 0);
	ck_assert_uint_eq(seen, 0);
}
END_TEST

START_TEST(opts_parse_errors)
{
	struct test_opts o = { 0 };
	char err[128];

	ck_assert_int_eq(opts_parse("sise=1G", test_spec, &o, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "unknown key 'sise' (known: size, shared, path, num)");
	ck_assert_int_eq(opts_parse("size", test_spec, &o, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "'size' is not key=value");
	ck_assert_int_eq(opts_parse("path=a,size=1G,size=2G", test_spec, &o, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "key 'size' given twice");
	ck_assert_ptr_null(o.path);
	ck_assert_int_eq(opts_parse("shared=maybe", test_spec, &o, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "shared=maybe: bad value, expected on or off");
	ck_assert_int_eq(opts_parse("num=4294967296", test_spec, &o, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "num=4294967296: out of range, expected a number");
	ck_assert_int_eq(opts_parse("path=", test_spec, &o, NULL, err, sizeof(err)), -EINVAL);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("opts");

	tcase_add_test(tc, opts_sizes);
	tcase_add_test(tc, opts_bools_and_numbers);
	tcase_add_test(tc, opts_parse_fills_struct);
	tcase_add_test(tc, opts_parse_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
