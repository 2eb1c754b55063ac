/*
 * Fuzz target: the kernel loader: bzImage setup header and ELF64 parsing,
 * placement of kernel, initramfs and command line in RAM, boot_params, and
 * the copy into guest memory. A plan the loader accepted must load: a
 * failing x86_boot_load after a successful x86_boot_plan is reported.
 *
 * Input: u8 RAM size (% 3: 32, 64 or 128 MiB), u16 initramfs KiB (% 1024),
 * u16 command line length (% 8192), then the kernel image.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cvmm/x86_boot.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"

#define KF_MIB (1024ull * 1024)
#define KF_RAM_MAX (128 * KF_MIB)
#define KF_INITRD_MAX (1024u * 1024)
#define KF_CMDLINE_MAX 8192

static uint8_t *kf_ram;         /* guest RAM at address 0, pages given back after each input */
static uint8_t *kf_initrd;      /* a zero initramfs of up to KF_INITRD_MAX bytes */
static char kf_cmdline[KF_CMDLINE_MAX + 1];

static void kf_cleanup(void)
{
	munmap(kf_ram, KF_RAM_MAX);
	free(kf_initrd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	kf_ram = mmap(NULL, KF_RAM_MAX, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	kf_initrd = calloc(1, KF_INITRD_MAX);
	if (kf_ram == MAP_FAILED || !kf_initrd)
		abort();
	atexit(kf_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint64_t ram = (32 * KF_MIB) << (fuzz_input_u8(&in) % 3);
	uint64_t initrd_size = (fuzz_input_u16(&in) % 1024) * 1024ull;
	size_t cmdline_len = fuzz_input_u16(&in) % (KF_CMDLINE_MAX + 1);
	struct gmem_region r = { .gpa = 0, .size = ram, .hva = kf_ram, .fd = -1 };
	static uint8_t zp[4096];
	struct x86_boot_plan plan;
	struct x86_kernel k;
	struct gmem mem;
	char err[256];
	size_t len;
	const uint8_t *image = fuzz_input_take(&in, in.size, &len);
	/* The image in a buffer of its own size: an overread shows. */
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		abort();
	memcpy(copy, image, len);
	if (x86_kernel_parse(&k, copy, len, err, sizeof(err)))
		goto out;
	if (x86_boot_plan(&k, ram, initrd_size, cmdline_len, &plan, err, sizeof(err)))
		goto out;
	x86_boot_params_build(zp, &k, &plan, ram, 0xe0000);
	memset(kf_cmdline, 'c', cmdline_len);
	kf_cmdline[cmdline_len] = 0;
	gmem_init(&mem);
	if (gmem_add(&mem, &r))
		abort();
	if (x86_boot_load(&mem, &k, &plan, initrd_size ? kf_initrd : NULL, kf_cmdline, ram, 0xe0000))
		abort(); /* the plan said it fits */
	gmem_destroy(&mem);
	/* Fresh zero pages for the next input. */
	madvise(kf_ram, KF_RAM_MAX, MADV_DONTNEED);
out:
	free(copy);
	return 0;
}
