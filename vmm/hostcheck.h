/*
 * `cvmm --check-host`: can this host's KVM run Linux guests? A probe guest
 * executes `syscall` in user mode and must arrive in kernel mode (some nested
 * KVMs deliver it still in user mode; see docs and ../shared/HOST-KVM.md).
 */
#ifndef CVMM_HOSTCHECK_H
#define CVMM_HOSTCHECK_H

#include <stddef.h>

/* Exit status of `cvmm --check-host`, one verdict line each on stdout. */
enum hostcheck_verdict {
	HOSTCHECK_CAN = 0,       /* "cvmm: host KVM can run Linux guests" */
	HOSTCHECK_CANNOT = 1,    /* "cvmm: host KVM cannot run Linux guests: <reason>" */
	HOSTCHECK_NO_CHECK = 2,  /* "cvmm: cannot check host KVM: <reason>" */
};

/* What the probe guest reported before it stopped. */
struct hostcheck_report {
	int user_cs;            /* CS seen after sysret to user mode; -1 if never reported */
	int entry_cs;           /* CS seen at the syscall entry point; -1 if never reported */
	char stop[128];         /* why the run ended without both reports, or "" */
};

/* Linux can run only if the probe reached user mode (CPL 3) and its syscall
 * arrived at the entry point in kernel mode (CPL 0). Returns NULL then;
 * otherwise writes the reason to buf and returns it. */
const char *hostcheck_reason(const struct hostcheck_report *r, char *buf, size_t len);

/* Runs the probe in its own small VM, prints the verdict line and returns
 * the exit status (enum hostcheck_verdict). */
int hostcheck_main(void);

#endif
