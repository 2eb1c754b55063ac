#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cvmm/confine.h"
#include "cvmm/log.h"
#include "vcpu.h"
#include "cvmm/vm.h"

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };

	/* No SA_RESTART: KVM_RUN must return EINTR to its loop. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
		log_err("sigaction: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vcpu_init(struct vcpu *v, struct vm *vm, unsigned id)
{
	int err;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		err = -errno;
		log_err("KVM_CREATE_VCPU %u failed: %s", id, strerror(-err));
		return err;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		err = -errno;
		v->run = NULL;
		log_err("mmap of vCPU %u's kvm_run failed: %s", id, strerror(-err));
		return err;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static void vcpu_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	/* String instructions (rep outsb) bring count elements at once. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		if (!iobus_dispatch(&v->vm->pio, run->io.port, data, run->io.size, out))
			log_debug("vCPU %u: %s of %u bytes at unclaimed port %#x", v->id, out ? "write" : "read",
				  run->io.size, run->io.port);
}

static void vcpu_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	if (run->mmio.len > sizeof(run->mmio.data))
		return;
	if (!iobus_dispatch(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			    run->mmio.is_write))
		log_debug("vCPU %u: %s of %u bytes at unclaimed MMIO %#llx", v->id,
			  run->mmio.is_write ? "write" : "read", run->mmio.len, run->mmio.phys_addr);
}

static void vcpu_fatal(struct vcpu *v, enum vm_exit reason, const char *what)
{
	if (vm_exit_reason(v->vm) != VM_RUNNING)
		return;
	arch_vcpu_dump(v, LOG_ERR);
	vm_request_exit(v->vm, reason, "vCPU %u: %s", v->id, what);
}

static void vcpu_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(v->vm, VM_EXIT_POWEROFF, "vCPU %u: guest powered off", v->id);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(v->vm, VM_EXIT_RESET, "vCPU %u: guest reset", v->id);
		break;
	default:
		vcpu_fatal(v, VM_EXIT_ERROR, "guest crashed (KVM system event)");
		break;
	}
}

/* Handles one exit; returns false when the loop must end. */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_io(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		/* SVM hosts reset the vCPU before this exit reaches us. */
		vcpu_fatal(v, VM_EXIT_TRIPLE_FAULT,
			   "triple fault (KVM_EXIT_SHUTDOWN): the guest crashed (on AMD hosts KVM has "
			   "already reset the vCPU: the registers logged are not the crash's)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_system_event(v);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
		    arch_vcpu_emulation_assist(v))
			return true;
		snprintf(what, sizeof(what), "KVM internal error, suberror %u%s", run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (KVM could not emulate the instruction at rip)" : "");
		vcpu_fatal(v, VM_EXIT_ERROR, what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "KVM entry failed, hardware reason %#llx",
			 run->fail_entry.hardware_entry_failure_reason);
		vcpu_fatal(v, VM_EXIT_ERROR, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unexpected KVM exit %u", run->exit_reason);
		vcpu_fatal(v, VM_EXIT_ERROR, what);
		return false;
	}
}

/*
 * The kick signal is blocked in the vCPU thread except inside KVM_RUN
 * (KVM_SET_SIGNAL_MASK): a kick that arrives while the thread is outside
 * KVM_RUN stays pending and makes the next KVM_RUN return at once, so no
 * kick is lost between checking for a stop and entering the guest.
 */
static int vcpu_set_signal_mask(struct vcpu *v)
{
	struct {
		struct kvm_signal_mask m;
		uint8_t set[8];  /* the kernel's sigset: 64 signals */
	} km;
	sigset_t set;

	pthread_sigmask(SIG_BLOCK, NULL, &set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	km.m.len = sizeof(km.set);
	memcpy(km.set, &set, sizeof(km.set));
	if (ioctl(v->fd, KVM_SET_SIGNAL_MASK, &km) < 0) {
		log_err("KVM_SET_SIGNAL_MASK on vCPU %u failed: %s", v->id, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Delivers kicks left pending by a stop (to the no-op handler): after a
 * restart they would make every KVM_RUN return at once. */
static void vcpu_drain_kicks(void)
{
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	pthread_sigmask(SIG_BLOCK, &kick, NULL);
}

/* KVM_RUN until the VM stops. */
static void vcpu_run(struct vcpu *v, bool *first)
{
	while (vm_exit_reason(v->vm) == VM_RUNNING) {
		if (*first && v->id == 0)
			log_info("first KVM_RUN %.3f ms after start", vm_ms_since_start(v->vm));
		*first = false;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			char what[96];

			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
			vcpu_fatal(v, VM_EXIT_ERROR, what);
			return;
		}
		if (!vcpu_handle_exit(v))
			return;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	bool first = true;
	char name[16];

	snprintf(name, sizeof(name), "cvmm-vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	if (vcpu_set_signal_mask(v))
		vcpu_fatal(v, VM_EXIT_ERROR, "cannot set its signal mask");
	else if (confine_thread(CONFINE_ROLE_VCPU))
		vcpu_fatal(v, VM_EXIT_ERROR, "cannot confine its thread");
	for (;;) {
		vcpu_run(v, &first);
		/* A guest reset with --on-reboot restart: wait for the machine
		 * to be put back, then run again. */
		if (!vm_vcpu_park(v->vm))
			break;
		vcpu_drain_kicks();
	}
	/* Where a guest was when the user stopped it: for hung guests. */
	if (vm_exit_reason(v->vm) == VM_EXIT_SIGNAL && log_get_level() >= LOG_DEBUG)
		arch_vcpu_dump(v, LOG_DEBUG);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	sigset_t kick, old;
	int err;

	/* The thread starts with the kick signal blocked (see above). */
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &kick, &old);
	err = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_err("cannot start vCPU %u's thread: %s", v->id, strerror(err));
		return -err;
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->run)
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	struct timespec ts;

	if (!v->started)
		return;
	/* A kick sent before the thread was marked started had no signal:
	 * send it again until the thread is gone. */
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(v->thread, NULL, &ts) != ETIMEDOUT)
			break;
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
	v->started = false;
}
