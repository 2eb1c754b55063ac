/* The small VM `cvmm --check-host` runs its probe guest in (one memory slot,
 * one vCPU), and the probe's time limit: shared by the architectures'
 * probes (arch/x86/hostcheck.c, arch/arm64/hostcheck.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm/arch.h"
#include "vmm/hostcheck.h"

void hostcheck_vm_destroy(struct hostcheck_vm *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->mem)
		munmap(v->mem, v->mem_size);
	if (v->vcpu >= 0)
		close(v->vcpu);
	if (v->vm >= 0)
		close(v->vm);
	if (v->kvm >= 0)
		close(v->kvm);
	v->run = NULL;
	v->mem = NULL;
	v->kvm = v->vm = v->vcpu = -1;
}

int hostcheck_vm_init(struct hostcheck_vm *v, uint64_t gpa, size_t mem_size, char *why, size_t whylen)
{
	struct kvm_userspace_memory_region slot;
	long sz;

	*v = (struct hostcheck_vm){ .kvm = -1, .vm = -1, .vcpu = -1, .mem_size = mem_size };
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0) {
		snprintf(why, whylen, "/dev/kvm: %s (%s)", strerror(errno),
			 errno == EACCES || errno == EPERM ? "run as root or in group kvm" : ARCH_KVM_MISSING_HINT);
		return -1;
	}
	if (ioctl(v->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(why, whylen, "/dev/kvm: unsupported KVM API version");
		return -1;
	}
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0) {
		snprintf(why, whylen, "KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	v->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->mem == MAP_FAILED) {
		v->mem = NULL;
		snprintf(why, whylen, "guest memory: %s", strerror(errno));
		return -1;
	}
	slot = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = gpa, .memory_size = mem_size,
		.userspace_addr = (uintptr_t)v->mem,
	};
	if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		snprintf(why, whylen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return -1;
	}
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0) {
		snprintf(why, whylen, "KVM_CREATE_VCPU: %s", strerror(errno));
		return -1;
	}
	sz = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (long)sizeof(struct kvm_run)) {
		snprintf(why, whylen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -1;
	}
	v->run_size = sz;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		snprintf(why, whylen, "mapping kvm_run: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void hostcheck_alarm(int sig)
{
	(void)sig;
}

/* SIGALRM stays blocked except inside KVM_RUN (KVM_SET_SIGNAL_MASK), so a
 * timeout that fires between two runs still ends the next one at once. */
int hostcheck_arm_timeout(struct hostcheck_vm *v, sigset_t *saved, char *why, size_t whylen)
{
	struct {
		struct kvm_signal_mask h;
		uint8_t sigs[8];
	} km;
	struct sigaction sa = { .sa_handler = hostcheck_alarm };
	sigset_t block, inrun;

	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	if (sigprocmask(SIG_BLOCK, &block, saved) < 0 || sigaction(SIGALRM, &sa, NULL) < 0) {
		snprintf(why, whylen, "signals: %s", strerror(errno));
		return -1;
	}
	inrun = *saved;
	sigdelset(&inrun, SIGALRM);
	km.h.len = sizeof(km.sigs);
	memcpy(km.sigs, &inrun, sizeof(km.sigs));
	if (ioctl(v->vcpu, KVM_SET_SIGNAL_MASK, &km) < 0) {
		snprintf(why, whylen, "KVM_SET_SIGNAL_MASK: %s", strerror(errno));
		return -1;
	}
	alarm(HOSTCHECK_TIMEOUT_S);
	return 0;
}

void hostcheck_disarm_timeout(const sigset_t *saved)
{
	sigset_t pending;
	int sig;

	alarm(0);
	sigpending(&pending);
	if (sigismember(&pending, SIGALRM)) {
		sigset_t only;

		sigemptyset(&only);
		sigaddset(&only, SIGALRM);
		sigwait(&only, &sig);
	}
	sigprocmask(SIG_SETMASK, saved, NULL);
	signal(SIGALRM, SIG_DFL);
}

/* One KVM_RUN of the probe: 0 when it exited to us (v->run says why);
 * -1 with the reason in why when it failed or hit the time limit. */
static int hostcheck_vm_enter(struct hostcheck_vm *v, char *why, size_t whylen)
{
	if (ioctl(v->vcpu, KVM_RUN, 0) == 0)
		return 0;
	if (errno == EINTR)
		snprintf(why, whylen, "the probe did not finish within %d s", HOSTCHECK_TIMEOUT_S);
	else
		snprintf(why, whylen, "KVM_RUN: %s", strerror(errno));
	return -1;
}

/* Why the probe stopped on an exit its architecture's handler does not take. */
static void hostcheck_vm_other_exit(const struct kvm_run *run, char *stop, size_t stoplen)
{
	switch (run->exit_reason) {
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(stop, stoplen, "KVM internal error, suberror %u%s", run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (instruction emulation failed)" : "");
		return;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(stop, stoplen, "KVM could not enter the probe guest (reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return;
	default:
		snprintf(stop, stoplen, "unexpected KVM exit %u", run->exit_reason);
		return;
	}
}

void hostcheck_vm_run(struct hostcheck_vm *v, char *stop, size_t stoplen,
		      enum hostcheck_exit (*on_exit)(struct hostcheck_vm *v, void *report),
		      void *report)
{
	for (;;) {
		enum hostcheck_exit e;

		if (hostcheck_vm_enter(v, stop, stoplen))
			return;
		e = on_exit(v, report);
		if (e == HOSTCHECK_EXIT_OTHER)
			hostcheck_vm_other_exit(v->run, stop, stoplen);
		if (e != HOSTCHECK_EXIT_RUN_ON)
			return;
	}
}

int hostcheck_verdict(struct hostcheck_vm *v, const char *cannot)
{
	hostcheck_vm_destroy(v);
	if (!cannot) {
		printf("cvmm: host KVM can run Linux guests\n");
		return HOSTCHECK_CAN;
	}
	printf("cvmm: host KVM cannot run Linux guests: %s\n", cannot);
	return HOSTCHECK_CANNOT;
}

int hostcheck_no_check(struct hostcheck_vm *v, const char *why)
{
	hostcheck_vm_destroy(v);
	printf("cvmm: cannot check host KVM: %s\n", why);
	return HOSTCHECK_NO_CHECK;
}
