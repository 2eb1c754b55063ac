/*
 * `cvmm --check-host`: can this host's KVM run Linux guests? A probe guest
 * executes `syscall` in user mode and must arrive in kernel mode (some nested
 * KVMs deliver it still in user mode; see docs and ../shared/HOST-KVM.md).
 */
#ifndef CVMM_HOSTCHECK_H
#define CVMM_HOSTCHECK_H

/* Exit status of `cvmm --check-host`, one verdict line each on stdout. */
enum hostcheck_verdict {
	HOSTCHECK_CAN = 0,       /* "cvmm: host KVM can run Linux guests" */
	HOSTCHECK_CANNOT = 1,    /* "cvmm: host KVM cannot run Linux guests: <reason>" */
	HOSTCHECK_NO_CHECK = 2,  /* "cvmm: cannot check host KVM: <reason>" */
};

/* Runs the probe in its own small VM, prints the verdict line and returns
 * the exit status (enum hostcheck_verdict). */
int hostcheck_main(void);

#endif
