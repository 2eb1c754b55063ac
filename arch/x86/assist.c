/*
 * Completing instructions the host's KVM could not emulate. Some nested
 * KVMs run guest kernel code through KVM's instruction emulator, which lacks
 * a few instructions (../shared/HOST-KVM.md); the guest then stops with an
 * emulation failure. Where the architectural effect is simple, cvmm
 * produces it: int3 raises #BP (Linux executes one at boot, in its
 * alternatives self-test); fwait with no pending x87 exception does nothing
 * (Linux runs one when it initialises each CPU's FPU).
 */
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/log.h"
#include "cvmm/x86_cpu.h"

#define ASSIST_INT3 0xcc
#define ASSIST_FWAIT 0x9b
#define ASSIST_BP_VECTOR 3
#define ASSIST_FSW_ES 0x80  /* x87 status: an unmasked exception is pending */

/* fwait: a no-op unless an x87 exception is pending, which would raise
 * #MF; that case is left to fail. */
static bool assist_fwait(int vcpu_fd, struct kvm_regs *r)
{
	struct kvm_fpu fpu;

	if (ioctl(vcpu_fd, KVM_GET_FPU, &fpu) < 0 || (fpu.fsw & ASSIST_FSW_ES))
		return false;
	r->rip++;
	if (ioctl(vcpu_fd, KVM_SET_REGS, r) < 0)
		return false;
	log_debug("fwait at %#llx: KVM could not emulate it, cvmm stepped over it", r->rip - 1);
	return true;
}

bool x86_emulation_assist(int vcpu_fd, const struct gmem *mem)
{
	struct kvm_translation tr;
	struct kvm_vcpu_events ev;
	struct kvm_regs r;
	const uint8_t *code;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0)
		return false;
	tr = (struct kvm_translation){ .linear_address = r.rip };
	if (ioctl(vcpu_fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return false;
	code = gmem_ptr(mem, tr.physical_address, 1);
	if (!code)
		return false;
	if (*code == ASSIST_FWAIT)
		return assist_fwait(vcpu_fd, &r);
	if (*code != ASSIST_INT3)
		return false;
	if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ev.exception.injected || ev.exception.pending)
		return false;
	/* #BP is a trap: the handler sees rip after the int3. */
	r.rip++;
	ev.exception.injected = 1;
	ev.exception.nr = ASSIST_BP_VECTOR;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags = 0;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		log_warn("cannot deliver #BP for int3 at %#llx: the guest will stop", r.rip - 1);
		return false;
	}
	log_debug("int3 at %#llx: KVM could not emulate it, cvmm raised #BP", r.rip - 1);
	return true;
}
