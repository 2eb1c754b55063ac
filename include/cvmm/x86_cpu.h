/*
 * x86 vCPU setup for direct boot: CPUID, long-mode registers, identity page
 * tables and GDT in guest memory, LAPIC LINT pins, MSRs, and a register
 * dump for fatal exits. Each function takes a vCPU fd and returns 0 or
 * -errno (logging what failed).
 */
#ifndef CVMM_X86_CPU_H
#define CVMM_X86_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/gmem.h"
#include "cvmm/log.h"

struct kvm_cpuid2;

/* KVM_GET_SUPPORTED_CPUID into a malloc'd table (*out, free() it). */
int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out);
/* Adapts a copy of the supported table to vCPU id of ncpus: APIC IDs,
 * hypervisor bit and leaves, and the filter of features this kind of host
 * cannot run (see x86_cpuid_filter in cpuid.c). Modifies c in place. */
void x86_cpuid_adjust(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus);
/* Whether the table offers 1 GiB pages (leaf 0x80000001 EDX pdpe1gb). */
bool x86_cpuid_has_gbpages(const struct kvm_cpuid2 *c);
/* x86_cpuid_adjust on a copy of supported, then KVM_SET_CPUID2. */
int x86_cpuid_set(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned id, unsigned ncpus);

/* Writes GDT, IDT and the identity page tables (layout in x86_layout.h). */
int x86_boot_tables_write(struct gmem *mem);
/* 64-bit kernel mode (the GDT x86_boot_tables_write wrote, interrupts off,
 * no IDT) at rip with page tables cr3, rsi and rsp as given. */
int x86_vcpu_setup_long_mode(int vcpu_fd, uint64_t cr3, uint64_t rip, uint64_t rsi, uint64_t rsp);
/* The boot CPU: 64-bit mode at entry with rsi = boot_params. */
int x86_vcpu_setup_bsp(int vcpu_fd, uint64_t entry, uint64_t boot_params);
/* Application processors wait for INIT/SIPI from the BSP. */
int x86_vcpu_setup_ap(int vcpu_fd);
/* Every vCPU: LAPIC LINT pins as firmware leaves them (ExtINT on the BSP's
 * LINT0, NMI on LINT1), boot MSRs. */
int x86_vcpu_setup_common(int vcpu_fd, bool bsp);
/* A machine reset of a vCPU that has run: what a later setup_* does not
 * rewrite, back to power-on values (xAPIC mode and a reset local APIC, no
 * pending events, KVM's paravirtual MSRs off so KVM stops writing into
 * guest memory, XCR0 and debug registers, the BSP runnable). Logs and
 * returns -errno. */
int x86_vcpu_reset(int vcpu_fd, unsigned apic_id, bool bsp);
/* --memory prefault=on (prefault.c): vCPU 0 (fd, its kvm_run) reads every
 * page of ram_size bytes of RAM (allocated writable by vm.c) once, so KVM
 * maps them all for the guest now; its identity map uses 1 GiB pages where the vCPU has them (gbpages),
 * else 2 MiB pages (RAM up to 104 GiB). Uses the
 * X86_PREFAULT_ADDR scratch (zeroed after) and leaves the vCPU's registers
 * for the caller to set. 0 or -errno, logged. */
struct kvm_run;
int x86_prefault_ram(int vcpu_fd, struct kvm_run *run, struct gmem *mem, uint64_t ram_size,
		     bool gbpages);
/* After an emulation failure: completes the instruction at rip when it is
 * one cvmm can (arch/x86/assist.c). True when the vCPU may run on. */
bool x86_emulation_assist(int vcpu_fd, const struct gmem *mem);
/* Logs registers, segment state and (when mem is given) the code bytes at
 * rip at the given level. */
void x86_vcpu_dump(int vcpu_fd, unsigned id, const struct gmem *mem, enum log_level level);

#endif
