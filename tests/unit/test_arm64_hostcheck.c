/* The arm64 `--check-host` verdict from the probe guest's report
 * (arch/arm64/hostcheck_verdict.c): only an svc from EL0 taken at EL1
 * through the lower-EL synchronous vector, followed by PSCI SYSTEM_OFF,
 * says Linux can run. */
#include <check.h>
#include <string.h>

#include "vmm/hostcheck.h"
#include "check_run.h"

/* What a KVM that runs Linux reports: vector 0x400, CurrentEL = EL1,
 * ESR_EL1 EC 0x15 (SVC64, IL set), SPSR_EL1 EL0t with DAIF masked. */
static struct hostcheck_arm64_report good(void)
{
	return (struct hostcheck_arm64_report){
		.reached_el0 = true, .vector = 0x400, .current_el = 1 << 2,
		.esr = 0x15ULL << 26 | 1 << 25, .spsr = 0x3c0, .system_off = true,
	};
}

static const char *reason(const struct hostcheck_arm64_report *r)
{
	static char buf[320];

	return hostcheck_arm64_reason(r, buf, sizeof(buf));
}

static void expect(const struct hostcheck_arm64_report *r, const char *want)
{
	const char *why = reason(r);

	ck_assert_msg(why != NULL, "expected a reason containing '%s'", want);
	ck_assert_msg(strstr(why, want) != NULL, "reason '%s' lacks '%s'", why, want);
}

START_TEST(svc_taken_at_el1_can_run)
{
	struct hostcheck_arm64_report r = good();

	ck_assert_ptr_null(reason(&r));
}
END_TEST

START_TEST(no_el0_cannot)
{
	struct hostcheck_arm64_report r = good();

	r.reached_el0 = false;
	r.vector = -1;
	r.system_off = false;
	strcpy(r.stop, "KVM internal error, suberror 1");
	expect(&r, "did not reach EL0: KVM internal error");
}
END_TEST

START_TEST(svc_not_taken_cannot)
{
	struct hostcheck_arm64_report r = good();

	r.vector = -1;
	r.system_off = false;
	strcpy(r.stop, "the probe did not finish within 5 s");
	expect(&r, "was not taken by EL1: the probe did not finish");
	r.stop[0] = '\0';
	expect(&r, "no report");
}
END_TEST

/* Taken, but not as Linux needs it: the wrong vector, level, class or origin. */
START_TEST(wrong_exception_cannot)
{
	struct hostcheck_arm64_report r = good();

	r.vector = 0x200;
	expect(&r, "vector 0x200, not 0x400");
	r = good();
	r.current_el = 2 << 2;
	expect(&r, "handled at EL2, not EL1");
	r = good();
	r.esr = 0x0ULL << 26;
	expect(&r, "exception class 0x0, not 0x15");
	r = good();
	r.spsr = 0x3c5;
	expect(&r, "came from mode 0x5, not EL0t");
}
END_TEST

START_TEST(no_psci_cannot)
{
	struct hostcheck_arm64_report r = good();

	r.system_off = false;
	strcpy(r.stop, "system event 2, not SYSTEM_OFF");
	expect(&r, "PSCI SYSTEM_OFF did not reach the VMM: system event 2");
}
END_TEST

CHECK_MAIN("arm64_hostcheck",
	   svc_taken_at_el1_can_run,
	   no_el0_cannot,
	   svc_not_taken_cannot,
	   wrong_exception_cannot,
	   no_psci_cannot)
