/* The x86 machine (include/cvmm/arch.h): a bzImage or ELF kernel booted
 * directly, ACPI and MP tables, COM1, the i8042, ACPI PM and the boot timer. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cvmm/arch.h"
#include "vmm/cli.h"
#include "cvmm/legacy.h"
#include "cvmm/log.h"
#include "cvmm/serial.h"
#include "vmm/vcpu.h"
#include "cvmm/virtio_mmio.h"
#include "cvmm/virtio_vm.h"
#include "cvmm/vm.h"
#include "cvmm/x86_boot.h"
#include "cvmm/x86_cpu.h"
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"

struct arch_machine {
	struct x86_kernel kernel;
	struct x86_boot_plan plan;
	struct serial uart;
	struct i8042 kbd;
	struct boot_timer timer;
	struct acpi_pm pm;
	bool have_uart, have_kbd, have_pm;
	/* The in-kernel PICs, IOAPIC and PIT before the guest first ran: what a
	 * machine reset puts back. */
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
};

int arch_machine_prepare(struct arch_machine **out, const struct cli_config *cfg, const uint8_t *kernel,
			 size_t kernel_size, size_t initrd_size, size_t cmdline_len)
{
	struct arch_machine *am;
	char why[256];

	*out = NULL;
	if (cfg->dump_dtb) {
		log_err("--dump-dtb: the x86 machine has no device tree (it boots with ACPI tables)");
		return -EINVAL;
	}
	am = calloc(1, sizeof(*am));
	if (!am)
		return -ENOMEM;
	if (x86_kernel_parse(&am->kernel, kernel, kernel_size, why, sizeof(why))) {
		log_err("kernel '%s': %s", cfg->kernel, why);
		free(am);
		return -EINVAL;
	}
	if (x86_boot_plan(&am->kernel, cfg->mem_size, initrd_size, cmdline_len, &am->plan, why, sizeof(why))) {
		log_err("%s", why);
		free(am);
		return -EINVAL;
	}
	*out = am;
	return 0;
}

/* The virtio-mmio devices the shared code places (virtio_vm_mmio_slot), for
 * the DSDT. Returns how many, at most X86_MAX_MMIO_DEVS. */
static unsigned x86_machine_mmio_devs(unsigned total, struct x86_mmio_dev *out)
{
	uint64_t base;
	unsigned n = 0, irq;

	for (; n < total && n < X86_MAX_MMIO_DEVS && !virtio_vm_mmio_slot(n, &base, &irq); n++)
		out[n] = (struct x86_mmio_dev){ .base = base, .size = VMMIO_WINDOW_SIZE, .irq = irq };
	return n;
}

static int x86_machine_tables(struct vm *vm, const struct arch_virtio_info *virtio)
{
	struct x86_mmio_dev mmio[X86_MAX_MMIO_DEVS];
	unsigned nmmio = x86_machine_mmio_devs(virtio->nmmio, mmio);
	uint8_t *bios = gmem_ptr(&vm->mem, X86_BIOS_ADDR, X86_MPTABLE_ADDR - X86_BIOS_ADDR);
	uint8_t *fp = gmem_ptr(&vm->mem, X86_EBDA_ADDR, 16);
	uint8_t *mp = gmem_ptr(&vm->mem, X86_MPTABLE_ADDR, X86_BIOS_END - X86_MPTABLE_ADDR);

	if (!bios || !fp || !mp)
		return -EFAULT;
	if (x86_acpi_build(bios, X86_MPTABLE_ADDR - X86_BIOS_ADDR, X86_BIOS_ADDR, vm->cfg.ncpus, mmio, nmmio) < 0 ||
	    x86_mptable_build(fp, mp, X86_BIOS_END - X86_MPTABLE_ADDR, X86_MPTABLE_ADDR, vm->cfg.ncpus) < 0)
		return -ENOSPC;
	return 0;
}

/* first: CPUID (KVM takes it only before a vCPU first runs, or the same
 * again) and the prefault pass; a reset only rewrites the entry state. */
static int x86_machine_vcpus(struct vm *vm, uint64_t entry, bool prefault, bool first)
{
	struct kvm_cpuid2 *cpuid = NULL;
	int err = first ? x86_cpuid_get_supported(vm->kvm_fd, &cpuid) : 0;

	for (unsigned i = 0; i < vm->cfg.ncpus && !err; i++) {
		int fd = vm->vcpus[i].fd;

		if (first)
			err = x86_cpuid_set(fd, cpuid, i, vm->cfg.ncpus);
		else
			err = x86_vcpu_reset(fd, i, i == 0);
		if (!err)
			err = x86_vcpu_setup_common(fd, i == 0);
		if (!err && i == 0 && prefault && first)
			err = x86_prefault_ram(fd, vm->vcpus[0].run, &vm->mem, vm->cfg.ram_size,
					       x86_cpuid_has_gbpages(cpuid));
		if (!err)
			err = i == 0 ? x86_vcpu_setup_bsp(fd, entry, X86_ZERO_PAGE_ADDR) : x86_vcpu_setup_ap(fd);
	}
	free(cpuid);
	return err;
}

/* The kernel, initramfs, boot parameters and firmware tables into RAM. */
static int x86_machine_write_image(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
				   const uint8_t *initrd, const char *cmdline, const struct arch_virtio_info *virtio)
{
	int err = x86_boot_load(&vm->mem, &am->kernel, &am->plan, initrd, cmdline, cfg->mem_size, X86_BIOS_ADDR);

	if (!err)
		err = x86_boot_tables_write(&vm->mem);
	if (!err)
		err = x86_machine_tables(vm, virtio);
	if (err)
		log_err("cannot write the boot image into guest memory: %s", strerror(-err));
	return err;
}

/* get: read the interrupt controllers' and PIT's state into am, else
 * write it back. */
static int x86_machine_irqchip_state(struct arch_machine *am, struct vm *vm, bool get)
{
	for (unsigned i = 0; i < 3; i++) {
		am->chips[i].chip_id = i;
		if (ioctl(vm->vm_fd, get ? KVM_GET_IRQCHIP : KVM_SET_IRQCHIP, &am->chips[i]) < 0) {
			log_err("%s (chip %u) failed: %s", get ? "KVM_GET_IRQCHIP" : "KVM_SET_IRQCHIP", i,
				strerror(errno));
			return -errno;
		}
	}
	if (ioctl(vm->vm_fd, get ? KVM_GET_PIT2 : KVM_SET_PIT2, &am->pit) < 0) {
		log_err("%s failed: %s", get ? "KVM_GET_PIT2" : "KVM_SET_PIT2", strerror(errno));
		return -errno;
	}
	return 0;
}

static int x86_machine_devices(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg, int serial_fd)
{
	int err;

	if (cfg->serial != CLI_SERIAL_OFF) {
		err = serial_init(&am->uart, vm, SERIAL_COM1_PORT, SERIAL_COM1_IRQ, serial_fd);
		if (err)
			return err;
		am->have_uart = true;
	}
	err = i8042_init(&am->kbd, vm);
	if (err)
		return err;
	am->have_kbd = true;
	err = acpi_pm_init(&am->pm, vm);
	if (err)
		return err;
	am->have_pm = true;
	return boot_timer_init(&am->timer, vm);
}

int arch_machine_load(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
		      const uint8_t *initrd, size_t initrd_size, const char *cmdline,
		      const struct arch_virtio_info *virtio, int serial_fd)
{
	int err;

	(void)initrd_size;  /* planned in arch_machine_prepare */
	err = x86_machine_write_image(am, vm, cfg, initrd, cmdline, virtio);
	if (!err)
		err = x86_machine_vcpus(vm, am->plan.entry, cfg->mem_prefault, true);
	if (!err)
		err = x86_machine_devices(am, vm, cfg, serial_fd);
	if (!err && cfg->reboot_restart)
		err = x86_machine_irqchip_state(am, vm, true);
	return err;
}

int arch_machine_reset(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
		       const uint8_t *initrd, const char *cmdline, const struct arch_virtio_info *virtio)
{
	int err = x86_machine_irqchip_state(am, vm, false);

	if (!err)
		err = x86_machine_write_image(am, vm, cfg, initrd, cmdline, virtio);
	if (!err)
		err = x86_machine_vcpus(vm, am->plan.entry, false, false);
	if (err)
		return err;
	if (am->have_uart)
		serial_reset(&am->uart);
	i8042_reset(&am->kbd);
	acpi_pm_reset(&am->pm);
	return 0;
}

struct serial *arch_machine_uart(struct arch_machine *am)
{
	return am->have_uart ? &am->uart : NULL;
}

void arch_machine_destroy(struct arch_machine *am)
{
	if (!am)
		return;
	if (am->have_uart)
		serial_destroy(&am->uart);
	if (am->have_kbd)
		i8042_destroy(&am->kbd);
	if (am->have_pm)
		acpi_pm_destroy(&am->pm);
	free(am);
}
