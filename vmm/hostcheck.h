/*
 * `cvmm --check-host`: can this host's KVM run Linux guests? A probe guest
 * per architecture tests what Linux needs and some KVMs lack: on x86 a
 * user-mode `syscall` must arrive in kernel mode (some nested KVMs deliver
 * it still in user mode; see docs and ../shared/HOST-KVM.md); on arm64 an
 * `svc` from EL0 must be taken at EL1, and PSCI must reach the VMM.
 */
#ifndef CVMM_HOSTCHECK_H
#define CVMM_HOSTCHECK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit status of `cvmm --check-host`, one verdict line each on stdout. */
enum hostcheck_verdict {
	HOSTCHECK_CAN = 0,       /* "cvmm: host KVM can run Linux guests" */
	HOSTCHECK_CANNOT = 1,    /* "cvmm: host KVM cannot run Linux guests: <reason>" */
	HOSTCHECK_NO_CHECK = 2,  /* "cvmm: cannot check host KVM: <reason>" */
};

#define HOSTCHECK_TIMEOUT_S 5

/* What the x86 probe guest reported before it stopped. */
struct hostcheck_report {
	int user_cs;            /* CS seen after sysret to user mode; -1 if never reported */
	int entry_cs;           /* CS seen at the syscall entry point; -1 if never reported */
	char stop[128];         /* why the run ended without both reports, or "" */
};

/* Linux can run only if the probe reached user mode (CPL 3) and its syscall
 * arrived at the entry point in kernel mode (CPL 0). Returns NULL then;
 * otherwise writes the reason to buf and returns it. */
const char *hostcheck_reason(const struct hostcheck_report *r, char *buf, size_t len);

/* What the arm64 probe guest (arch/arm64/hostcheck_probe.S) reported: it
 * drops from EL1 to EL0, reports from there, executes `svc`; its exception
 * vector reports what it was taken with and calls PSCI SYSTEM_OFF. */
struct hostcheck_arm64_report {
	bool reached_el0;       /* the EL0 code ran (its report arrived) */
	int64_t vector;         /* offset into VBAR_EL1 the svc was taken at; -1 if never */
	uint64_t current_el;    /* CurrentEL in the handler (EL in bits 3:2) */
	uint64_t esr;           /* ESR_EL1 there */
	uint64_t spsr;          /* SPSR_EL1 there: the mode the svc came from */
	bool system_off;        /* PSCI SYSTEM_OFF reached the VMM (KVM_EXIT_SYSTEM_EVENT) */
	char stop[128];         /* why the run ended before SYSTEM_OFF, or "" */
};

/* The arm64 counterpart of hostcheck_reason: NULL when the svc from EL0
 * was taken at EL1 through the lower-EL synchronous vector with an SVC
 * syndrome and SYSTEM_OFF arrived; otherwise the reason, in buf. */
const char *hostcheck_arm64_reason(const struct hostcheck_arm64_report *r, char *buf, size_t len);

/* Runs the probe in its own small VM, prints the verdict line and returns
 * the exit status (enum hostcheck_verdict). */
int hostcheck_main(void);

/* The probe's VM: one memory slot, one vCPU (vmm/hostcheck_vm.c). */
struct hostcheck_vm {
	int kvm, vm, vcpu;
	uint8_t *mem;
	size_t mem_size;
	struct kvm_run *run;
	size_t run_size;
};

/* Opens /dev/kvm, creates the VM with mem_size bytes of RAM at gpa, and its
 * vCPU. On failure writes the reason to why and returns -1; the caller
 * destroys v either way. */
int hostcheck_vm_init(struct hostcheck_vm *v, uint64_t gpa, size_t mem_size, char *why, size_t whylen);
void hostcheck_vm_destroy(struct hostcheck_vm *v);
/* Ends KVM_RUN with EINTR after HOSTCHECK_TIMEOUT_S; disarm restores the
 * signal mask saved here. */
int hostcheck_arm_timeout(struct hostcheck_vm *v, sigset_t *saved, char *why, size_t whylen);
void hostcheck_disarm_timeout(const sigset_t *saved);
/* What a probe's exit handler returns: run on, the run is over, or an exit
 * the probe does not expect (hostcheck_vm_run then says which). */
enum hostcheck_exit {
	HOSTCHECK_EXIT_RUN_ON = 0,
	HOSTCHECK_EXIT_DONE = 1,
	HOSTCHECK_EXIT_OTHER = -1,
};

/* Runs the probe until on_exit says it is done, KVM_RUN fails or the time
 * limit hits, or an exit on_exit does not handle; stop gets why the run
 * ended, unless on_exit ended it without saying. */
void hostcheck_vm_run(struct hostcheck_vm *v, char *stop, size_t stoplen,
		      enum hostcheck_exit (*on_exit)(struct hostcheck_vm *v, void *report),
		      void *report);

/* Destroy v, print the verdict line and return the exit status: can (cannot
 * NULL) or cannot run Linux guests; or could not check, for why. */
int hostcheck_verdict(struct hostcheck_vm *v, const char *cannot);
int hostcheck_no_check(struct hostcheck_vm *v, const char *why);

#endif
