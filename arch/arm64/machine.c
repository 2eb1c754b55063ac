/* The arm64 machine (include/cvmm/arch.h): an Image booted directly with a
 * device tree, a 16550A UART on MMIO, PSCI for CPUs and power. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvmm/arch.h"
#include "cvmm/arm64_boot.h"
#include "cvmm/arm64_cpu.h"
#include "vmm/cli.h"
#include "cvmm/log.h"
#include "cvmm/serial.h"
#include "vmm/vcpu.h"
#include "cvmm/virtio_vm.h"
#include "cvmm/vm.h"

struct arch_machine {
	struct arm64_image image;
	struct arm64_boot_plan plan;
	struct serial uart;
	bool have_uart;
};

int arch_machine_prepare(struct arch_machine **out, const struct cli_config *cfg, const uint8_t *kernel,
			 size_t kernel_size, size_t initrd_size, size_t cmdline_len)
{
	struct arch_machine *am = calloc(1, sizeof(*am));
	char why[256];
	int err;

	*out = NULL;
	if (!am)
		return -ENOMEM;
	/* Resetting the GICv3 and ITS state in place is not written yet. */
	if (cfg->reboot_restart) {
		log_err("--on-reboot restart: not available on arm64 yet (a guest reboot ends cvmm)");
		free(am);
		return -EINVAL;
	}
	err = arm64_image_parse(&am->image, kernel, kernel_size, why, sizeof(why));
	if (err) {
		if (err == -EINVAL)
			log_err("kernel '%s': %s", cfg->kernel, why);
		free(am);
		return err;
	}
	if (arm64_boot_plan(&am->image, cfg->mem_size, initrd_size, cmdline_len, &am->plan, why, sizeof(why))) {
		log_err("%s", why);
		arm64_image_destroy(&am->image);
		free(am);
		return -EINVAL;
	}
	*out = am;
	return 0;
}

static int arm64_copy(struct vm *vm, uint64_t gpa, const void *src, size_t len, const char *what)
{
	void *dst = gmem_ptr(&vm->mem, gpa, len);

	if (!dst) {
		log_err("cannot place the %s at %#llx: outside guest RAM", what, (unsigned long long)gpa);
		return -EFAULT;
	}
	memcpy(dst, src, len);
	return 0;
}

static int arm64_dump_dtb(const char *path, const void *fdt, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), err = 0;
	ssize_t n;

	if (fd < 0)
		err = -errno;
	else if ((n = write(fd, fdt, len)) != (ssize_t)len)
		err = n < 0 ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && !err)
		err = -errno;
	if (err)
		log_err("--dump-dtb %s: %s", path, strerror(-err));
	return err;
}

static int arm64_machine_fdt(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
			     const char *cmdline, const struct arch_virtio_info *virtio)
{
	struct arm64_fdt_config fc = {
		.ncpus = vm->cfg.ncpus, .ram_size = vm->cfg.ram_size, .cmdline = cmdline,
		.initrd_addr = am->plan.initrd_addr, .initrd_size = am->plan.initrd_size,
		.uart = cfg->serial != CLI_SERIAL_OFF, .nmmio = virtio->nmmio, .its = vm->arch.its_fd >= 0,
	};
	void *fdt = gmem_ptr(&vm->mem, am->plan.fdt_addr, ARM64_FDT_MAX_SIZE);
	uint64_t *mpidr = calloc(vm->cfg.ncpus, sizeof(*mpidr));
	char why[256];
	int err = 0, len;

	if (!mpidr || !fdt) {
		free(mpidr);
		return mpidr ? -EFAULT : -ENOMEM;
	}
	if (virtio->npci && !fc.its) {
		log_err("virtio-pci needs MSIs through a GICv3 ITS, which this KVM lacks: use --transport mmio");
		err = -ENOTSUP;
	}
	/* KVM chooses each vCPU's affinity; the tree must name the same. */
	for (unsigned i = 0; i < vm->cfg.ncpus && !err; i++) {
		err = arm64_get_reg(vm->vcpus[i].fd, ARM64_MPIDR_REG, &mpidr[i]);
		if (err)
			log_err("cannot read vCPU %u's MPIDR_EL1: %s", i, strerror(-err));
		mpidr[i] &= ARM64_MPIDR_AFFINITY;
	}
	for (unsigned i = 0; i < virtio->nmmio && !err; i++)
		err = i < ARM64_FDT_MAX_MMIO ? virtio_vm_mmio_slot(i, &fc.mmio_addr[i], &fc.mmio_spi[i]) : -ENOSPC;
	fc.mpidr = mpidr;
	if (!err) {
		len = arm64_fdt_build(fdt, ARM64_FDT_MAX_SIZE, &fc, why, sizeof(why));
		if (len < 0) {
			log_err("%s", why);
			err = len;
		} else if (cfg->dump_dtb) {
			err = arm64_dump_dtb(cfg->dump_dtb, fdt, (size_t)len);
		}
	}
	free(mpidr);
	return err;
}

int arch_machine_load(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
		      const uint8_t *initrd, size_t initrd_size, const char *cmdline,
		      const struct arch_virtio_info *virtio, int serial_fd)
{
	int fd0 = vm->vcpus[0].fd, err;

	err = arm64_copy(vm, am->plan.kernel_addr, am->image.data, am->image.size, "kernel");
	if (!err && initrd_size)
		err = arm64_copy(vm, am->plan.initrd_addr, initrd, initrd_size, "initramfs");
	if (!err)
		err = arm64_machine_fdt(am, vm, cfg, cmdline, virtio);
	if (err)
		return err;
	/* booting.rst: x0 = the device tree, x1..x3 = 0 (as KVM resets them),
	 * MMU off, DAIF masked (KVM's reset state for EL1h). */
	err = arm64_set_reg(fd0, ARM64_CORE_REG(regs.pc), am->plan.kernel_addr);
	if (!err)
		err = arm64_set_reg(fd0, ARM64_CORE_REG(regs.regs[0]), am->plan.fdt_addr);
	if (err) {
		log_err("cannot set the boot vCPU's registers: %s", strerror(-err));
		return err;
	}
	if (cfg->serial != CLI_SERIAL_OFF) {
		err = serial_init_mmio(&am->uart, vm, ARM64_UART_ADDR, ARM64_UART_SPI, serial_fd);
		if (err)
			return err;
		am->have_uart = true;
	}
	return 0;
}

int arch_machine_reset(struct arch_machine *am, struct vm *vm, const struct cli_config *cfg,
		       const uint8_t *initrd, const char *cmdline, const struct arch_virtio_info *virtio)
{
	(void)am, (void)vm, (void)cfg, (void)initrd, (void)cmdline, (void)virtio;
	return -EOPNOTSUPP;  /* refused in arch_machine_prepare */
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
	arm64_image_destroy(&am->image);
	free(am);
}
