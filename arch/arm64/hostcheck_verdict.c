/* The arm64 `--check-host` verdict from the probe's report (no KVM needed:
 * unit-tested on every build machine, like the device tree code). */
#include <stdio.h>

#include "vmm/hostcheck.h"

#define A64_VECTOR_LOWER_A64_SYNC 0x400  /* from EL0 (AArch64), synchronous */
#define A64_ESR_EC(esr) (((esr) >> 26) & 0x3f)
#define A64_EC_SVC64 0x15
#define A64_SPSR_MODE(spsr) ((spsr) & 0xf)
#define A64_MODE_EL0T 0x0
#define A64_CURRENT_EL(v) (((v) >> 2) & 3)

const char *hostcheck_arm64_reason(const struct hostcheck_arm64_report *r, char *buf, size_t len)
{
	const char *stop = r->stop[0] ? r->stop : "no report";

	if (!r->reached_el0)
		snprintf(buf, len, "the probe did not reach EL0: %s", stop);
	else if (r->vector < 0)
		snprintf(buf, len, "an svc from EL0 was not taken by EL1: %s", stop);
	else if (r->vector != A64_VECTOR_LOWER_A64_SYNC)
		snprintf(buf, len, "an svc from EL0 was taken through vector 0x%llx, not 0x%x (lower EL, synchronous)",
			 (unsigned long long)r->vector, A64_VECTOR_LOWER_A64_SYNC);
	else if (A64_CURRENT_EL(r->current_el) != 1)
		snprintf(buf, len, "an svc from EL0 was handled at EL%u, not EL1",
			 (unsigned)A64_CURRENT_EL(r->current_el));
	else if (A64_ESR_EC(r->esr) != A64_EC_SVC64)
		snprintf(buf, len, "an svc from EL0 arrived with exception class 0x%x, not 0x%x (SVC)",
			 (unsigned)A64_ESR_EC(r->esr), A64_EC_SVC64);
	else if (A64_SPSR_MODE(r->spsr) != A64_MODE_EL0T)
		snprintf(buf, len, "the svc came from mode 0x%x, not EL0t", (unsigned)A64_SPSR_MODE(r->spsr));
	else if (!r->system_off)
		snprintf(buf, len, "PSCI SYSTEM_OFF did not reach the VMM: %s", stop);
	else
		return NULL;
	return buf;
}
