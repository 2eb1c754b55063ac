/*
 * arm64 direct boot (Linux Documentation/arch/arm64/booting.rst): the
 * kernel Image (its 64-byte header: text_offset, image_size, flags, magic
 * "ARM\x64"), plain or gzip-compressed as Debian ships it (vmlinuz), placed
 * at RAM's 2 MiB-aligned base plus text_offset; the initramfs and the
 * device tree near the end of RAM. The boot CPU starts at the Image's first
 * byte with x0 = the device tree's address, MMU off, interrupts masked;
 * the others wait for PSCI CPU_ON.
 *
 * And the device tree itself (built with libfdt): what Linux finds on the
 * machine (include/cvmm/arm64_layout.h). Neither needs KVM, so unit tests
 * check both on any build machine.
 */
#ifndef CVMM_ARM64_BOOT_H
#define CVMM_ARM64_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_MAGIC 0x644d5241u   /* "ARM\x64", little-endian at offset 56 */
#define ARM64_IMAGE_HEADER_SIZE 64
/* Largest kernel cvmm takes (decompressed): Debian's is ~30 MiB. */
#define ARM64_IMAGE_MAX_SIZE (256ULL << 20)
/* Linux's COMMAND_LINE_SIZE on arm64, with the NUL. */
#define ARM64_CMDLINE_MAX 2048

struct arm64_image {
	const uint8_t *data;   /* the Image (decompressed when the file was gzip) */
	size_t size;
	uint8_t *owned;        /* the decompressed copy, or NULL */
	bool compressed;
	uint64_t text_offset;  /* from RAM's 2 MiB-aligned base */
	uint64_t image_size;   /* memory the kernel needs from its load address */
};

/* Recognises an arm64 Image (or a gzip file holding one) in file. 0, or
 * -EINVAL with a one-line reason in err (not an Image, corrupt gzip,
 * big-endian, header inconsistent, larger than ARM64_IMAGE_MAX_SIZE);
 * -ENOMEM. */
int arm64_image_parse(struct arm64_image *img, const uint8_t *file, size_t size, char *err, size_t errlen);
void arm64_image_destroy(struct arm64_image *img);

/* Where things go in guest memory (all guest-physical). */
struct arm64_boot_plan {
	uint64_t kernel_addr, kernel_end;  /* the kernel's [addr, end) */
	uint64_t initrd_addr, initrd_size; /* initrd_size 0: none */
	uint64_t fdt_addr;                 /* ARM64_FDT_MAX_SIZE bytes reserved */
};

/* Places kernel, initramfs and device tree in ram_size bytes of RAM from
 * ARM64_RAM_BASE. 0, or -E2BIG with a reason in err (RAM too small for
 * them, command line longer than Linux takes). */
int arm64_boot_plan(const struct arm64_image *img, uint64_t ram_size, uint64_t initrd_size, size_t cmdline_len,
		    struct arm64_boot_plan *p, char *err, size_t errlen);

#define ARM64_FDT_MAX_MMIO 16

/* Everything the device tree describes. */
struct arm64_fdt_config {
	unsigned ncpus;
	const uint64_t *mpidr;       /* ncpus affinity values (MPIDR_EL1 & 0xff00ffffff) */
	uint64_t ram_size;
	const char *cmdline;
	uint64_t initrd_addr, initrd_size;  /* initrd_size 0: none */
	bool uart;                   /* the 16550A at ARM64_UART_ADDR, stdout-path */
	unsigned nmmio;              /* virtio-mmio devices */
	uint64_t mmio_addr[ARM64_FDT_MAX_MMIO];
	unsigned mmio_spi[ARM64_FDT_MAX_MMIO];
	bool its;                    /* the GIC has an ITS: PCI MSIs go through it */
};

/* Phandles in the tree. */
#define ARM64_FDT_PHANDLE_GIC 1
#define ARM64_FDT_PHANDLE_ITS 2

/* Builds the tree into buf (cap bytes, at most ARM64_FDT_MAX_SIZE). Returns
 * its size, or -ENOSPC / -EINVAL with a reason in err. */
int arm64_fdt_build(void *buf, size_t cap, const struct arm64_fdt_config *c, char *err, size_t errlen);

#endif
