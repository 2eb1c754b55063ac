#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "cvmm/opts.h"
#include "check_run.h"

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
	/* A leading zero is decimal, as documented, not octal. */
	ck_assert_int_eq(opts_parse_u64("010", &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(opts_parse_u64("09", &v), 0);
	ck_assert_uint_eq(v, 9);
	ck_assert_int_eq(opts_parse_u64("0X1f", &v), 0);
	ck_assert_uint_eq(v, 31);
	ck_assert_int_eq(opts_parse_u64("0x", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_u64("0x -1", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_u64("0x+1", &v), -EINVAL);
	ck_assert_int_eq(opts_parse_u64("0xg", &v), -EINVAL);
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

static int cli_test_parse(struct cli_config *c, char *err, size_t errlen, ...)
{
	char *argv[32] = { "cvmm" };
	int argc = 1;
	va_list ap;

	va_start(ap, errlen);
	for (char *a = va_arg(ap, char *); a && argc < 31; a = va_arg(ap, char *))
		argv[argc++] = a;
	va_end(ap);
	return cli_parse(argc, argv, c, err, errlen);
}

START_TEST(cli_defaults_and_values)
{
	struct cli_config c;
	char err[256];

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", NULL), 0);
	ck_assert_int_eq(c.action, CLI_RUN);
	ck_assert_str_eq(c.kernel, "k");
	ck_assert_ptr_null(c.initramfs);
	ck_assert_str_eq(c.cmdline, CLI_DEFAULT_CMDLINE);
	ck_assert_uint_eq(c.cpus, 1);
	ck_assert_uint_eq(c.mem_size, CLI_DEFAULT_MEMORY);
	ck_assert(!c.mem_prefault);
	ck_assert(!c.reboot_restart);
	ck_assert_int_eq(c.serial, CLI_SERIAL_TTY);

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel=k", "--initramfs", "i", "--cmdline",
					"a b", "--cpus", "boot=4", "--memory", "size=1G,shared=on,hugepages=on,prefault=on",
					"--serial", "socket=/tmp/s", "--log-file", "l", "-v", "-v", NULL), 0);
	ck_assert_str_eq(c.kernel, "k");
	ck_assert_str_eq(c.initramfs, "i");
	ck_assert_str_eq(c.cmdline, "a b");
	ck_assert_uint_eq(c.cpus, 4);
	ck_assert_uint_eq(c.mem_size, 1ULL << 30);
	ck_assert(c.mem_shared && c.mem_hugepages && c.mem_prefault);
	ck_assert_int_eq(c.serial, CLI_SERIAL_SOCKET);
	ck_assert_str_eq(c.serial_path, "/tmp/s");
	ck_assert_str_eq(c.log_file, "l");
	ck_assert_int_eq(c.verbose, 2);

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--serial", "file=/x", NULL), 0);
	ck_assert_int_eq(c.serial, CLI_SERIAL_FILE);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--serial", "off", NULL), 0);
	ck_assert_int_eq(c.serial, CLI_SERIAL_OFF);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--cmdline", "", NULL), -EINVAL);

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--on-reboot", "restart", NULL), 0);
	ck_assert(c.reboot_restart);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--on-reboot=exit", NULL), 0);
	ck_assert(!c.reboot_restart);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--on-reboot", "reset", NULL), -EINVAL);
	ck_assert_str_eq(err, "--on-reboot reset: expected exit or restart");
}
END_TEST

START_TEST(cli_actions)
{
	struct cli_config c;
	char err[256];

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--help", NULL), 0);
	ck_assert_int_eq(c.action, CLI_HELP);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--version", NULL), 0);
	ck_assert_int_eq(c.action, CLI_VERSION);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--check-host", "-v", NULL), 0);
	ck_assert_int_eq(c.action, CLI_CHECK_HOST);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--block-backend", "path=a,socket=b", NULL), 0);
	ck_assert_int_eq(c.action, CLI_BACKEND);
	ck_assert_str_eq(c.backend->backend_option, "--block-backend");
	ck_assert_str_eq(c.backend_opts, "path=a,socket=b");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--check-host", "--memory", "size=1G", NULL), -EINVAL);
	ck_assert_str_eq(err, "--check-host cannot be combined with --memory");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--check-host", "--block-backend", "x=y", NULL),
			 -EINVAL);
	ck_assert_str_eq(err, "--check-host and --block-backend cannot be combined");
}
END_TEST

/* --seccomp goes with every action; main checks its value (the exit
 * status of a bad one depends on the action), an empty one included. */
START_TEST(cli_seccomp)
{
	struct cli_config c;
	char err[256];

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", NULL), 0);
	ck_assert_str_eq(c.seccomp, "true");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--seccomp", "log", "--block-backend", "x=y", NULL), 0);
	ck_assert_int_eq(c.action, CLI_BACKEND);
	ck_assert_str_eq(c.backend->backend_option, "--block-backend");
	ck_assert_str_eq(c.seccomp, "log");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--vsock-backend", "x=y", "--seccomp=", NULL), 0);
	ck_assert_str_eq(c.seccomp, "");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--seccomp", "false", NULL), 0);
	ck_assert_str_eq(c.seccomp, "false");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--seccomp", NULL), -EINVAL);
	ck_assert_str_eq(err, "--seccomp needs a value");
}
END_TEST

START_TEST(cli_errors)
{
	struct cli_config c;
	char err[256];

	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), NULL), -EINVAL);
	ck_assert_str_eq(err, "no kernel given: use --kernel PATH");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--bogus", NULL), -EINVAL);
	ck_assert_str_eq(err, "unknown option '--bogus'");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernelx", "k", NULL), -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "-v=1", "--kernel", "k", NULL), -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", NULL), -EINVAL);
	ck_assert_str_eq(err, "--kernel needs a value");
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--cpus", "boot=255", NULL), -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--cpus", "boot=x", NULL), -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--memory", "size=2T", NULL), -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--memory", "size=5000", NULL),
			 -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--serial", "file=", NULL), -EINVAL);
	ck_assert_int_eq(cli_test_parse(&c, err, sizeof(err), "--kernel", "k", "--serial", "tty,x", NULL), -EINVAL);
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
	tc = tcase_create("cli");
	tcase_add_test(tc, cli_defaults_and_values);
	tcase_add_test(tc, cli_actions);
	tcase_add_test(tc, cli_seccomp);
	tcase_add_test(tc, cli_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(cli_suite());
}
