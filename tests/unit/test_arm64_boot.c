/* The arm64 Image parser, boot plan and device tree (arch/arm64/image.c,
 * fdt.c): they need no KVM, so they are checked on every build machine. The
 * tree is parsed back with libfdt and every node is checked. */
#include <check.h>
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cvmm/arm64_boot.h"
#include "cvmm/arm64_layout.h"
#include "cvmm/le.h"
#include "cvmm/pci.h"
#include "check_run.h"

#define MIB (1024 * 1024ULL)
#define IMG_SIZE 0x10000

static uint8_t img[IMG_SIZE];
static char err[256];

/* An Image header as Linux 6.1 writes it: text_offset 0, image_size beyond
 * the file (bss), flags LE + 4K pages + place anywhere. */
static void test_make_image(uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	memset(img, 0, sizeof(img));
	memcpy(img, "MZ", 2);
	le_put64(img + 8, text_offset);
	le_put64(img + 16, image_size);
	le_put64(img + 24, flags);
	le_put32(img + 56, ARM64_IMAGE_MAGIC);
	memset(img + 64, 0xd5, 256);
}

/* gzip of data (what `gzip` writes: a gzip header around deflate). */
static uint8_t *test_gzip(const uint8_t *data, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	size_t cap = len + 1024;
	uint8_t *out = malloc(cap);

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}

START_TEST(image_plain)
{
	struct arm64_image im;

	test_make_image(0, 0x20000, 0xa);
	ck_assert_int_eq(arm64_image_parse(&im, img, sizeof(img), err, sizeof(err)), 0);
	ck_assert(!im.compressed);
	ck_assert_ptr_eq(im.data, img);
	ck_assert_uint_eq(im.size, sizeof(img));
	ck_assert_uint_eq(im.text_offset, 0);
	ck_assert_uint_eq(im.image_size, 0x20000);
	arm64_image_destroy(&im);
}
END_TEST

START_TEST(image_gzip)
{
	struct arm64_image im;
	size_t zlen;
	uint8_t *z;

	test_make_image(0x80000, 0x30000, 0x2);
	z = test_gzip(img, sizeof(img), &zlen);
	ck_assert_int_eq(arm64_image_parse(&im, z, zlen, err, sizeof(err)), 0);
	ck_assert(im.compressed);
	ck_assert_uint_eq(im.size, sizeof(img));
	ck_assert_mem_eq(im.data, img, sizeof(img));
	ck_assert_uint_eq(im.text_offset, 0x80000);
	arm64_image_destroy(&im);
	/* Cut short: refused, not booted half. */
	ck_assert_int_eq(arm64_image_parse(&im, z, zlen / 2, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "gzip"));
	free(z);
}
END_TEST

/* Each malformed header is refused with -EINVAL and a reason naming it. */
START_TEST(image_malformed)
{
	static const struct {
		uint64_t text_offset, image_size, flags;
		size_t size;
		const char *reason;
	} bad[] = {
		{ 0, 0x20000, 0, 40, "magic" },                        /* truncated header */
		{ 0, 0x20000, 1, IMG_SIZE, "big-endian" },
		{ 0, 0, 0, IMG_SIZE, "image_size" },                   /* pre-3.17 */
		{ 0, 0x1000, 0, IMG_SIZE, "less than" },               /* smaller than the file */
		{ 0x1234, 0x20000, 0, IMG_SIZE, "text_offset" },
		{ 0x200000, 0x20000, 0, IMG_SIZE, "text_offset" },
		{ 0, ARM64_IMAGE_MAX_SIZE + 4096, 0, IMG_SIZE, "MiB" }, /* oversized */
		{ 0, 1ULL << 40, 0, IMG_SIZE, "MiB" },
	};
	struct arm64_image im;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_make_image(bad[i].text_offset, bad[i].image_size, bad[i].flags);
		err[0] = 0;
		ck_assert_int_eq(arm64_image_parse(&im, img, bad[i].size, err, sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, bad[i].reason), "case %zu: '%s' lacks '%s'", i, err, bad[i].reason);
		ck_assert_ptr_null(strchr(err, '\n'));
	}
	/* No magic at all. */
	memset(img, 0, sizeof(img));
	ck_assert_int_eq(arm64_image_parse(&im, img, sizeof(img), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not an arm64 Image"));
}
END_TEST

START_TEST(image_gzip_not_image)
{
	uint8_t junk[4096];
	struct arm64_image im;
	size_t zlen;
	uint8_t *z;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7);
	z = test_gzip(junk, sizeof(junk), &zlen);
	ck_assert_int_eq(arm64_image_parse(&im, z, zlen, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "inside the gzip file"));
	free(z);
}
END_TEST

START_TEST(boot_plan_places_everything)
{
	struct arm64_boot_plan p;
	struct arm64_image im;

	test_make_image(0, 30 * MIB, 0xa);
	ck_assert_int_eq(arm64_image_parse(&im, img, sizeof(img), err, sizeof(err)), 0);
	ck_assert_int_eq(arm64_boot_plan(&im, 256 * MIB, 5 * MIB + 123, 100, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.kernel_addr, ARM64_RAM_BASE);
	ck_assert_uint_eq(p.kernel_end, ARM64_RAM_BASE + 30 * MIB);
	ck_assert_uint_eq(p.fdt_addr, ARM64_RAM_BASE + 256 * MIB - ARM64_FDT_MAX_SIZE);
	ck_assert_uint_eq(p.fdt_addr % 8, 0);
	ck_assert_uint_eq(p.initrd_addr % 4096, 0);
	ck_assert_uint_ge(p.initrd_addr, p.kernel_end);
	ck_assert_uint_le(p.initrd_addr + p.initrd_size, p.fdt_addr);
	ck_assert_uint_eq(p.initrd_size, 5 * MIB + 123);
	/* Too little RAM for kernel + initramfs + tree. */
	ck_assert_int_eq(arm64_boot_plan(&im, 32 * MIB, 5 * MIB, 100, &p, err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "--memory"));
	ck_assert_int_eq(arm64_boot_plan(&im, 16 * MIB, 0, 100, &p, err, sizeof(err)), -E2BIG);
	/* Linux's command line limit. */
	ck_assert_int_eq(arm64_boot_plan(&im, 256 * MIB, 0, ARM64_CMDLINE_MAX, &p, err, sizeof(err)), -E2BIG);
	ck_assert_int_eq(arm64_boot_plan(&im, 256 * MIB, 0, ARM64_CMDLINE_MAX - 1, &p, err, sizeof(err)), 0);
	/* 64 GiB: initramfs and tree stay in the 32 GiB from RAM's start (booting.rst). */
	ck_assert_int_eq(arm64_boot_plan(&im, 65536 * MIB, 5 * MIB, 100, &p, err, sizeof(err)), 0);
	ck_assert_uint_eq(p.fdt_addr, ARM64_RAM_BASE + ARM64_INITRD_WINDOW - ARM64_FDT_MAX_SIZE);
	ck_assert_uint_ge(p.initrd_addr, p.kernel_end);
	ck_assert_uint_le(p.initrd_addr + p.initrd_size, p.fdt_addr);
	arm64_image_destroy(&im);
}
END_TEST

/* ---- the device tree ---- */

static uint8_t fdt[ARM64_FDT_MAX_SIZE];
static const uint64_t test_mpidr[2] = { 0, 1 };

static void test_fdt_config(struct arm64_fdt_config *c)
{
	*c = (struct arm64_fdt_config){
		.ncpus = 2, .mpidr = test_mpidr, .ram_size = 256 * MIB, .cmdline = "console=ttyS0 panic=-1",
		.initrd_addr = 0x4f000000, .initrd_size = 0x123000, .uart = true, .nmmio = 2,
		.mmio_addr = { 0x0a000000, 0x0a001000 }, .mmio_spi = { 5, 6 }, .its = true,
	};
}

static int test_node(const char *path)
{
	int off = fdt_path_offset(fdt, path);

	ck_assert_msg(off >= 0, "no node %s: %s", path, fdt_strerror(off));
	return off;
}

static const void *test_prop(int node, const char *name, int want_len)
{
	int len;
	const void *p = fdt_getprop(fdt, node, name, &len);

	ck_assert_msg(p, "no property %s: %s", name, fdt_strerror(len));
	if (want_len >= 0)
		ck_assert_msg(len == want_len, "%s is %d bytes, want %d", name, len, want_len);
	return p;
}

static void test_str(int node, const char *name, const char *want)
{
	ck_assert_str_eq(test_prop(node, name, (int)strlen(want) + 1), want);
}

static uint32_t test_cell(int node, const char *name, unsigned i)
{
	int len;
	const fdt32_t *p = fdt_getprop(fdt, node, name, &len);

	ck_assert_msg(p && (unsigned)len >= (i + 1) * 4, "%s has no cell %u", name, i);
	return fdt32_to_cpu(p[i]);
}

static uint64_t test_u64(int node, const char *name, unsigned i)
{
	return (uint64_t)test_cell(node, name, 2 * i) << 32 | test_cell(node, name, 2 * i + 1);
}

static void test_cells(int node, const char *name, const uint32_t *want, unsigned n)
{
	test_prop(node, name, (int)(n * 4));
	for (unsigned i = 0; i < n; i++)
		ck_assert_msg(test_cell(node, name, i) == want[i], "%s cell %u is %#x, want %#x", name, i,
			      test_cell(node, name, i), want[i]);
}

START_TEST(fdt_every_node)
{
	struct arm64_fdt_config c;
	int root, n, len;

	test_fdt_config(&c);
	len = arm64_fdt_build(fdt, sizeof(fdt), &c, err, sizeof(err));
	ck_assert_msg(len > 0, "%s", err);
	ck_assert_int_eq(fdt_check_header(fdt), 0);
	ck_assert_int_eq((int)fdt_totalsize(fdt), len);

	root = test_node("/");
	test_str(root, "compatible", "linux,dummy-virt");
	ck_assert_uint_eq(test_cell(root, "#address-cells", 0), 2);
	ck_assert_uint_eq(test_cell(root, "#size-cells", 0), 2);
	ck_assert_uint_eq(test_cell(root, "interrupt-parent", 0), ARM64_FDT_PHANDLE_GIC);

	n = test_node("/chosen");
	test_str(n, "bootargs", "console=ttyS0 panic=-1");
	test_str(n, "stdout-path", "/uart@9000000");
	ck_assert_uint_eq(test_u64(n, "linux,initrd-start", 0), 0x4f000000);
	ck_assert_uint_eq(test_u64(n, "linux,initrd-end", 0), 0x4f123000);

	n = test_node("/memory@40000000");
	test_str(n, "device_type", "memory");
	ck_assert_uint_eq(test_u64(n, "reg", 0), ARM64_RAM_BASE);
	ck_assert_uint_eq(test_u64(n, "reg", 1), 256 * MIB);

	n = test_node("/cpus");
	ck_assert_uint_eq(test_cell(n, "#address-cells", 0), 1);
	ck_assert_uint_eq(test_cell(n, "#size-cells", 0), 0);
	for (unsigned i = 0; i < 2; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/cpus/cpu@%u", i);
		n = test_node(path);
		test_str(n, "device_type", "cpu");
		test_str(n, "compatible", "arm,arm-v8");
		test_str(n, "enable-method", "psci");
		ck_assert_uint_eq(test_cell(n, "reg", 0), i);
	}
	ck_assert_int_lt(fdt_path_offset(fdt, "/cpus/cpu@2"), 0);

	n = test_node("/psci");
	test_str(n, "compatible", "arm,psci-0.2");
	test_str(n, "method", "hvc");

	n = test_node("/timer");
	test_str(n, "compatible", "arm,armv8-timer");
	test_cells(n, "interrupts", (const uint32_t[]){ 1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4 }, 12);
	test_prop(n, "always-on", 0);

	n = test_node("/intc@8000000");
	test_str(n, "compatible", "arm,gic-v3");
	ck_assert_uint_eq(test_cell(n, "#interrupt-cells", 0), 3);
	test_prop(n, "interrupt-controller", 0);
	test_prop(n, "ranges", 0);
	ck_assert_uint_eq(test_u64(n, "reg", 0), ARM64_GIC_DIST_ADDR);
	ck_assert_uint_eq(test_u64(n, "reg", 1), ARM64_GIC_DIST_SIZE);
	ck_assert_uint_eq(test_u64(n, "reg", 2), ARM64_GIC_REDIST_ADDR);
	ck_assert_uint_eq(test_u64(n, "reg", 3), 2 * ARM64_GIC_REDIST_SIZE);
	ck_assert_uint_eq(test_cell(n, "phandle", 0), ARM64_FDT_PHANDLE_GIC);
	ck_assert_int_eq(fdt_node_offset_by_phandle(fdt, ARM64_FDT_PHANDLE_GIC), n);

	n = test_node("/intc@8000000/msi-controller@8080000");
	test_str(n, "compatible", "arm,gic-v3-its");
	test_prop(n, "msi-controller", 0);
	ck_assert_uint_eq(test_cell(n, "#msi-cells", 0), 1);
	ck_assert_uint_eq(test_u64(n, "reg", 0), ARM64_GIC_ITS_ADDR);
	ck_assert_uint_eq(test_u64(n, "reg", 1), ARM64_GIC_ITS_SIZE);
	ck_assert_int_eq(fdt_node_offset_by_phandle(fdt, ARM64_FDT_PHANDLE_ITS), n);

	n = test_node("/uart@9000000");
	test_str(n, "compatible", "ns16550a");
	ck_assert_uint_eq(test_u64(n, "reg", 0), ARM64_UART_ADDR);
	test_cells(n, "interrupts", (const uint32_t[]){ 0, ARM64_UART_SPI, 4 }, 3);
	ck_assert_uint_eq(test_cell(n, "clock-frequency", 0), ARM64_UART_CLOCK);

	for (unsigned i = 0; i < 2; i++) {
		char path[48];

		snprintf(path, sizeof(path), "/virtio_mmio@%llx", (unsigned long long)c.mmio_addr[i]);
		n = test_node(path);
		test_str(n, "compatible", "virtio,mmio");
		ck_assert_uint_eq(test_u64(n, "reg", 0), c.mmio_addr[i]);
		ck_assert_uint_eq(test_u64(n, "reg", 1), 0x1000);
		test_cells(n, "interrupts", (const uint32_t[]){ 0, c.mmio_spi[i], 1 }, 3);
		test_prop(n, "dma-coherent", 0);
	}

	n = test_node("/pcie@30000000");
	test_str(n, "compatible", "pci-host-ecam-generic");
	test_str(n, "device_type", "pci");
	ck_assert_uint_eq(test_cell(n, "#address-cells", 0), 3);
	ck_assert_uint_eq(test_cell(n, "#size-cells", 0), 2);
	test_cells(n, "bus-range", (const uint32_t[]){ 0, 0 }, 2);
	ck_assert_uint_eq(test_u64(n, "reg", 0), ARM64_PCI_ECAM_BASE);
	ck_assert_uint_eq(test_u64(n, "reg", 1), PCI_ECAM_BUS_SIZE);
	test_cells(n, "ranges", (const uint32_t[]){ 0x02000000, 0, 0x10000000, 0, 0x10000000, 0, 0x10000000 }, 7);
	test_cells(n, "msi-map", (const uint32_t[]){ 0, ARM64_FDT_PHANDLE_ITS, 0, 0x10000 }, 4);
}
END_TEST

/* What the configuration leaves out is not in the tree. */
START_TEST(fdt_optional_parts)
{
	struct arm64_fdt_config c;
	int n;

	test_fdt_config(&c);
	c.uart = false;
	c.its = false;
	c.initrd_size = 0;
	c.nmmio = 0;
	ck_assert_int_gt(arm64_fdt_build(fdt, sizeof(fdt), &c, err, sizeof(err)), 0);
	n = test_node("/chosen");
	ck_assert_ptr_null(fdt_getprop(fdt, n, "stdout-path", NULL));
	ck_assert_ptr_null(fdt_getprop(fdt, n, "linux,initrd-start", NULL));
	ck_assert_int_lt(fdt_path_offset(fdt, "/uart@9000000"), 0);
	ck_assert_int_lt(fdt_path_offset(fdt, "/intc@8000000/msi-controller@8080000"), 0);
	ck_assert_int_lt(fdt_path_offset(fdt, "/virtio_mmio@a000000"), 0);
	ck_assert_ptr_null(fdt_getprop(fdt, test_node("/pcie@30000000"), "msi-map", NULL));
}
END_TEST

START_TEST(fdt_cpu_affinity_and_limits)
{
	static const uint64_t mpidr[18] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x100, 0x101 };
	struct arm64_fdt_config c;

	test_fdt_config(&c);
	c.ncpus = 18;
	c.mpidr = mpidr;
	ck_assert_int_gt(arm64_fdt_build(fdt, sizeof(fdt), &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(test_cell(test_node("/cpus/cpu@101"), "reg", 0), 0x101);
	ck_assert_uint_eq(test_u64(test_node("/intc@8000000"), "reg", 3), 18 * ARM64_GIC_REDIST_SIZE);
	/* A buffer too small is an error, never a cut tree. */
	ck_assert_int_eq(arm64_fdt_build(fdt, 256, &c, err, sizeof(err)), -ENOSPC);
	c.nmmio = ARM64_FDT_MAX_MMIO + 1;
	ck_assert_int_eq(arm64_fdt_build(fdt, sizeof(fdt), &c, err, sizeof(err)), -EINVAL);
}
END_TEST

CHECK_MAIN("arm64_boot", image_plain, image_gzip, image_malformed, image_gzip_not_image, boot_plan_places_everything,
	   fdt_every_node, fdt_optional_parts, fdt_cpu_affinity_and_limits)
