/*
 * arm64 vCPU registers through KVM_GET/SET_ONE_REG (aarch64 builds only:
 * needs the arm64 <asm/kvm.h>).
 */
#ifndef CVMM_ARM64_CPU_H
#define CVMM_ARM64_CPU_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

/* A core register (struct kvm_regs member) as a ONE_REG id. */
#define ARM64_CORE_REG(member) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offsetof(struct kvm_regs, member) / sizeof(uint32_t)))
/* MPIDR_EL1: the affinity fields name a CPU in the device tree. */
#define ARM64_MPIDR_REG ARM64_SYS_REG(3, 0, 0, 0, 5)
#define ARM64_MPIDR_AFFINITY 0xff00ffffffULL

/* 0 or -errno (not logged). */
int arm64_get_reg(int vcpu_fd, uint64_t id, uint64_t *val);
int arm64_set_reg(int vcpu_fd, uint64_t id, uint64_t val);

#endif
