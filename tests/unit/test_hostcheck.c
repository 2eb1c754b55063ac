#include <check.h>
#include <string.h>

#include "vmm/hostcheck.h"
#include "check_run.h"

static const char *hostcheck_test_reason(int user_cs, int entry_cs, const char *stop)
{
	static char buf[320];
	struct hostcheck_report r = { .user_cs = user_cs, .entry_cs = entry_cs };

	strncpy(r.stop, stop, sizeof(r.stop) - 1);
	return hostcheck_reason(&r, buf, sizeof(buf));
}

START_TEST(kernel_entry_from_user_mode_can_run)
{
	ck_assert_ptr_null(hostcheck_test_reason(0x23, 0x08, ""));
}
END_TEST

START_TEST(entry_still_in_user_mode_cannot)
{
	const char *why = hostcheck_test_reason(0x23, 0x23, "");

	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "still in user mode (CPL 3)"));
}
END_TEST

/* A syscall from kernel mode proves nothing: sysret must have dropped to CPL 3. */
START_TEST(no_user_mode_is_not_enough)
{
	const char *why = hostcheck_test_reason(0x08, 0x08, "");

	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "sysret did not enter user mode"));
	why = hostcheck_test_reason(-1, 0x08, "");
	ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(stops_are_reported)
{
	const char *why = hostcheck_test_reason(-1, -1, "the probe guest faulted (triple fault)");

	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "did not reach user mode: the probe guest faulted"));
	why = hostcheck_test_reason(0x23, -1, "the probe did not finish within 5 s");
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "did not reach the kernel entry point: the probe did not finish"));
	why = hostcheck_test_reason(0x23, -1, "");
	ck_assert_ptr_nonnull(strstr(why, "no report"));
}
END_TEST

CHECK_MAIN("hostcheck",
	   kernel_entry_from_user_mode_can_run,
	   entry_still_in_user_mode_cannot,
	   no_user_mode_is_not_enough,
	   stops_are_reported)
