/* `cvmm --check-host` on arm64: the probe guest (arch/x86/hostcheck_probe.S)
 * exists for x86 only, so this says so rather than guess. */
#include <stdio.h>

#include "vmm/hostcheck.h"

int hostcheck_main(void)
{
	printf("cvmm: cannot check host KVM: --check-host has a probe for x86 hosts only\n");
	return HOSTCHECK_NO_CHECK;
}
