/*
 * What the shared VMM (vmm/vm.c, vcpu.c, machine.c, irq_routing.c,
 * devices/virtio/virtio_vm.c) asks of the architecture it is built for. Each arch
 * implements it under arch/<arch>/: arch/x86/ for x86-64, arch/arm64/ for
 * aarch64. The build picks the directory (Makefile ARCH=); the compiler's
 * target picks the layout below.
 */
#ifndef CVMM_ARCH_H
#define CVMM_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/log.h"

#if defined(__x86_64__)
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"
/* Guest-physical places the shared virtio wiring uses (virtio_vm.h). */
#define ARCH_PCI_MMIO_START	X86_PCI_MMIO_START
#define ARCH_PCI_MMIO_SIZE	X86_PCI_MMIO_SIZE
#define ARCH_VIRTIO_MMIO_BASE	0xd0000000ULL
#define ARCH_PCI_ECAM_BASE	X86_PCI_ECAM_ADDR
#define ARCH_PCI_ECAM_SIZE	X86_PCI_ECAM_SIZE
/* ISA lines free on the x86 machine (4 is the UART, 9 the ACPI SCI; 0/1/2/8
 * are the PIT, keyboard controller, cascade and RTC). */
#define ARCH_VIRTIO_MMIO_IRQS	{ 5, 6, 7, 10, 11, 12, 13, 14, 15 }
/* The guest finds virtio-mmio devices in the DSDT and, for kernels without
 * ACPI, on its command line. */
#define ARCH_VIRTIO_MMIO_ON_CMDLINE 1
/* Port I/O exists: the PCI host bridge also answers at 0xcf8. */
#define ARCH_HAS_PIO		1
/* A guest reading device registers from memory this process writes sees
 * the writes whatever memory type it maps them with (caches are coherent). */
#define ARCH_COHERENT_DEVICE_READS 1
#define ARCH_MAX_CPUS		X86_MAX_CPUS
#define ARCH_KERNEL_HELP	"x86_64 bzImage (boot protocol 2.12+) or 64-bit ELF"
#define ARCH_SERIAL_HELP	"COM1 (0x3f8)"
/* What a missing /dev/kvm means here. */
#define ARCH_KVM_MISSING_HINT	"load the KVM module (modprobe kvm_intel or kvm_amd) on a host with " \
				"virtualization enabled"
#define ARCH_VIRTIO_MMIO_HELP	"announced in the ACPI DSDT and on the kernel command line\n" \
				"                       (virtio_mmio.device=)"
#elif defined(__aarch64__)
#include "cvmm/arm64_layout.h"
#define ARCH_PCI_MMIO_START	ARM64_PCI_MMIO_START
#define ARCH_PCI_MMIO_SIZE	ARM64_PCI_MMIO_SIZE
#define ARCH_VIRTIO_MMIO_BASE	ARM64_VIRTIO_MMIO_BASE
#define ARCH_PCI_ECAM_BASE	ARM64_PCI_ECAM_BASE
#define ARCH_PCI_ECAM_SIZE	ARM64_PCI_ECAM_SIZE
#define ARCH_VIRTIO_MMIO_IRQS	ARM64_VIRTIO_MMIO_SPIS
/* The device tree describes them. */
#define ARCH_VIRTIO_MMIO_ON_CMDLINE 0
#define ARCH_HAS_PIO		0
/* A guest maps device registers as Device memory, uncached: without
 * FEAT_S2FWB it would read around this process's cached writes. */
#define ARCH_COHERENT_DEVICE_READS 0
#define ARCH_MAX_CPUS		ARM64_MAX_CPUS
#define ARCH_KERNEL_HELP	"arm64 Image, plain or gzip-compressed (Debian's vmlinuz)"
#define ARCH_SERIAL_HELP	"16550A UART (MMIO " ARM64_UART_ADDR_STR ")"
#define ARCH_VIRTIO_MMIO_HELP	"described in the device tree"
/* KVM is built into arm64 kernels: no /dev/kvm means no EL2. */
#define ARCH_KVM_MISSING_HINT	"the host kernel did not start at EL2 (dmesg: \"HYP mode not available\"), " \
				"or this is a VM without nested virtualization"
#else
#error "cvmm runs on x86-64 and aarch64 hosts only"
#endif

struct cli_config;
struct kvm_irq_routing_entry;
struct serial;
struct vcpu;
struct vm;

/* ---- the VM (vmm/vm.c) ---- */

struct arch_kvm_cap {
	int cap;
	const char *name;
};

/* KVM capabilities the arch's machine needs; *n gets their number. */
const struct arch_kvm_cap *arch_kvm_caps(size_t *n);

/* Per-VM arch state (interrupt controller device fds on arm64). */
struct arch_vm {
	int gic_fd, its_fd;  /* arm64: the in-kernel GICv3 and its ITS, or -1 */
};

/* Guest RAM as at most two ranges. */
struct arch_ram_range {
	uint64_t gpa, size;
};
unsigned arch_ram_ranges(uint64_t ram_size, struct arch_ram_range r[2]);

/* Right after KVM_CREATE_VM: the in-kernel interrupt controller and timers
 * (x86: TSS, identity map, irqchip, PIT; arm64: the GICv3 and its ITS,
 * not yet initialised). Logs and returns -errno. */
int arch_vm_setup(struct vm *vm);
/* Once every vCPU exists: per-vCPU init and irqchip finalisation (arm64:
 * KVM_ARM_VCPU_INIT, then GIC and ITS init). Logs and returns -errno. */
int arch_vm_vcpus_created(struct vm *vm);
/* Closes what arch_vm_setup created. */
void arch_vm_destroy(struct vm *vm);
/* KVM_IRQ_LINE's irq field for the wired interrupt gsi (irqfd numbering). */
uint32_t arch_irq_line(unsigned gsi);
/* The routing entries for the wired GSIs 0..IRQ_PIN_GSIS-1 (KVM's default
 * table, which KVM_SET_GSI_ROUTING replaces); returns how many were written
 * (at most ARCH_IRQ_PIN_ROUTES). */
#define ARCH_IRQ_PIN_ROUTES 48
unsigned arch_irq_pin_routes(struct kvm_irq_routing_entry *e);

/* ---- a vCPU (vmm/vcpu.c) ---- */

/* After KVM could not emulate an instruction: true when the arch completed
 * it and the vCPU may run on. */
bool arch_vcpu_emulation_assist(struct vcpu *v);
/* Registers (and code bytes where useful) of a stopped vCPU, at level. */
void arch_vcpu_dump(struct vcpu *v, enum log_level level);

/* ---- the machine (vmm/machine.c) ---- */

/* Boot plan and arch devices; private to arch/<arch>/machine.c. */
struct arch_machine;

/* What the shared machine tells the arch about the virtio devices. */
struct arch_virtio_info {
	unsigned nmmio;   /* virtio-mmio devices, in slots 0..nmmio-1 (virtio_vm_mmio_slot) */
	unsigned npci;    /* virtio-pci devices */
};

/* Before the VM exists: recognises the kernel and plans where kernel,
 * initramfs and boot data go. Bad input (an unusable kernel, too little
 * RAM, an option the arch does not have) is logged in one line and returns
 * -EINVAL (cvmm exits 2); other errors -errno (exit 1). *out is malloc'd. */
int arch_machine_prepare(struct arch_machine **out, const struct cli_config *cfg, const uint8_t *kernel,
			 size_t kernel_size, size_t initrd_size, size_t cmdline_len);
/* With the VM created: writes kernel, initramfs and boot data (x86 tables,
 * arm64 device tree) into guest memory, sets the vCPUs' registers and
 * creates the arch's devices (UART output to serial_fd when cfg has a
 * serial port). 0 or -errno, logged. */
int arch_machine_load(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
		      const uint8_t *initrd, size_t initrd_size, const char *cmdline,
		      const struct arch_virtio_info *virtio, int serial_fd);
/* --on-reboot restart: the machine as at power-on again (vCPUs parked,
 * virtio devices already reset), the guest image rewritten, ready for
 * vm_resume. Logs and returns -errno. */
int arch_machine_reset(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
		       const uint8_t *initrd, const char *cmdline, const struct arch_virtio_info *virtio);
/* The UART the console attaches to, or NULL. */
struct serial *arch_machine_uart(struct arch_machine *am);
/* Call with the vCPUs stopped; NULL is fine. */
void arch_machine_destroy(struct arch_machine *am);

#endif
