/*
 * A KVM virtual machine: guest RAM (struct gmem, memfd-backed), the in-kernel
 * interrupt controller (arch_vm_setup: IOAPIC, PIC and PIT on x86, the GICv3
 * on arm64), vCPUs, the port-I/O and MMIO buses devices register on,
 * interrupt injection, and the one decision every VM ends with: why it
 * stopped.
 *
 * Lifecycle: vm_init -> (load the guest, set up vCPUs, register devices)
 * -> vm_start -> wait on vm->stop_fd -> vm_stop -> vm_destroy.
 */
#ifndef CVMM_VM_H
#define CVMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cvmm/arch.h"
#include "cvmm/gmem.h"
#include "cvmm/iobus.h"

enum vm_exit {
	VM_RUNNING = 0,
	VM_EXIT_RESET,         /* guest reset (i8042, ACPI reset register): status 0 */
	VM_EXIT_POWEROFF,      /* guest powered off (ACPI S5): status 0 */
	VM_EXIT_SIGNAL,        /* SIGINT/SIGTERM: status 128 + signal */
	VM_EXIT_TRIPLE_FAULT,  /* KVM_EXIT_SHUTDOWN: status 1 */
	VM_EXIT_ERROR,         /* KVM error, emulation failure, internal error: status 1 */
};

struct vm_config {
	unsigned ncpus;
	uint64_t ram_size;    /* bytes, a multiple of 4 KiB (2 MiB with hugepages) */
	bool shared;          /* MAP_SHARED guest RAM (vhost-user back-ends can map it) */
	bool hugepages;       /* MFD_HUGETLB: 2 MiB pages */
	bool prefault;        /* allocate all RAM up front (arch code may also map it for the guest) */
	bool reset_restarts;  /* a guest reset parks the vCPUs for a restart (vm_wait_parked) */
	struct timespec start;  /* process start (CLOCK_MONOTONIC), for timing logs */
};

struct vcpu;

struct vm {
	int kvm_fd, vm_fd;
	int run_size;            /* size of each vCPU's kvm_run mapping */
	struct vm_config cfg;
	struct gmem mem;
	struct iobus pio, mmio;
	struct vcpu *vcpus;      /* cfg.ncpus of them */
	struct arch_vm arch;
	int stop_fd;             /* eventfd: readable once the VM is stopping */
	pthread_mutex_t exit_lock;
	pthread_cond_t park_cond;  /* with exit_lock: vCPUs parked after a reset, or released */
	unsigned parked;         /* vCPU threads waiting for a restart */
	bool ending;             /* vm_stop: parked vCPU threads end */
	enum vm_exit exit;       /* set once, by the first stop request */
	int exit_signal;
	char exit_detail[160];
};

/* Opens /dev/kvm, creates the VM with its RAM, irqchip, PIT and vCPUs (not
 * yet running). Logs one line saying what is wrong and returns -errno. */
int vm_init(struct vm *vm, const struct vm_config *cfg);
void vm_destroy(struct vm *vm);

/* Starts one thread per vCPU. 0 or -errno (threads already started are
 * stopped again). */
int vm_start(struct vm *vm);
/* Stops and joins every vCPU thread (requesting exit_if_running first if
 * the VM still runs). */
void vm_stop(struct vm *vm, enum vm_exit exit_if_running);

/* With cfg.reset_restarts, a guest reset (VM_EXIT_RESET) parks every vCPU
 * thread instead of ending it (threads cannot be created again once
 * confined). vm_wait_parked returns once all are parked, with the vCPUs out
 * of KVM_RUN so their state can be rewritten; vm_resume clears the exit
 * reason and lets them run again. */
void vm_wait_parked(struct vm *vm);
void vm_resume(struct vm *vm);
/* Called by a vCPU thread whose loop ended: true when it must run again
 * (the VM was resumed), false when it must end. */
bool vm_vcpu_park(struct vm *vm);

/* Asks the VM to stop for reason (the first request wins; later ones are
 * ignored). Callable from any thread, including vCPU threads and device
 * handlers. detail is a short printf-style explanation for the log. */
void vm_request_exit(struct vm *vm, enum vm_exit reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same with a signal number, for VM_EXIT_SIGNAL. */
void vm_request_exit_signal(struct vm *vm, int signo);
enum vm_exit vm_exit_reason(struct vm *vm);
/* Process exit status for the reason the VM stopped (see enum vm_exit). */
int vm_exit_status(struct vm *vm);

/* Device registration: see iobus.h for the handler contract. */
int vm_pio_register(struct vm *vm, uint16_t port, uint16_t len, iobus_fn fn, void *opaque);
int vm_mmio_register(struct vm *vm, uint64_t addr, uint64_t len, iobus_fn fn, void *opaque);

/* Interrupts: drive an IOAPIC/PIC input (gsi < 24) to level; attach an
 * eventfd that raises gsi when written (resample_fd >= 0 for a level
 * interrupt re-raised until the device deasserts it, or -1); send an MSI. */
int vm_irq_line(struct vm *vm, unsigned gsi, bool level);
int vm_irqfd(struct vm *vm, int fd, unsigned gsi, int resample_fd);
int vm_irqfd_remove(struct vm *vm, int fd, unsigned gsi);
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);
/* An eventfd written by KVM, without a VM exit, when the guest writes
 * [addr, addr+len) (a port when pio, else MMIO); len 0 matches any length. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, bool pio, int fd, bool add);

/* Memory slots from VM_DEVICE_SLOT_BASE up are the devices' (RAM takes the
 * ones below: arch_ram_ranges gives at most two ranges). */
#define VM_DEVICE_SLOT_BASE 8
/* Maps size bytes at hva (page-aligned, as are gpa and size) read-only at
 * gpa: guest reads come from that memory without an exit, writes still
 * exit to the MMIO handler registered there (or an ioeventfd). -EOPNOTSUPP
 * where KVM has no read-only memory slots or the host's pages are larger
 * than size. */
int vm_map_readonly(struct vm *vm, unsigned slot, uint64_t gpa, void *hva, uint64_t size);

/* Milliseconds since cfg.start. */
double vm_ms_since_start(const struct vm *vm);

#endif
