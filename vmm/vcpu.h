/*
 * One vCPU and its thread: KVM_RUN in a loop, port I/O and MMIO exits
 * dispatched to the VM's buses, everything else ends the VM with a reason.
 * A vCPU leaves KVM_RUN when kicked: immediate_exit plus a signal
 * (VCPU_KICK_SIGNAL, a no-op handler) to its thread.
 */
#ifndef CVMM_VCPU_H
#define CVMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

struct vm;

#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/* Installs the kick signal's handler (once per process). */
int vcpu_signal_setup(void);
int vcpu_init(struct vcpu *v, struct vm *vm, unsigned id);
void vcpu_destroy(struct vcpu *v);
int vcpu_start(struct vcpu *v);
/* Makes the thread leave KVM_RUN soon (safe from any thread). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

#endif
