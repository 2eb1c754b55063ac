/*
 * --memory prefault=on on x86, second half: vm.c has allocated guest RAM, but
 * KVM's stage-2 (nested page) tables are still empty, and those are what a
 * guest's first access to a page faults on; Linux 6.1 has no ioctl to fill
 * them. So vCPU 0 runs a short pass (prefault_stub.S) that reads every page
 * once, in 64-bit mode over its own identity map, before cvmm gives it the
 * kernel's entry state. Afterwards no guest access takes a stage-2 fault
 * unless the host moves the page (reclaim, migration, compaction).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "cvmm/log.h"
#include "cvmm/x86_cpu.h"
#include "cvmm/x86_layout.h"

extern const uint8_t x86_prefault_stub_start[], x86_prefault_stub_end[];

#define PREFAULT_DONE_PORT 0x80  /* as in prefault_stub.S */
#define PREFAULT_CODE (X86_PREFAULT_ADDR)
#define PREFAULT_TABLE (X86_PREFAULT_ADDR + 0x1000)
#define PREFAULT_PML4 (X86_PREFAULT_ADDR + 0x2000)
#define PREFAULT_PDPT (X86_PREFAULT_ADDR + 0x3000)
#define PREFAULT_PDPTS 3         /* 1.5 TiB, past the 1 TiB + hole cvmm maps */
#define PREFAULT_PD (PREFAULT_PDPT + 0x1000 * PREFAULT_PDPTS)
/* Without 1 GiB pages, one page directory (2 MiB pages) a GiB, as many as
 * the rest of the scratch holds. */
#define PREFAULT_PDS ((X86_PREFAULT_ADDR + X86_PREFAULT_SIZE - PREFAULT_PD) / 0x1000)
#define PTE_PRESENT 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL
#define GIB (1ULL << 30)

/* An identity map of [0, gibs GiB) (1 GiB pages where the vCPU has them,
 * else 2 MiB pages), the stub, and its table of RAM ranges. */
static int prefault_write(struct gmem *mem, const struct x86_ram_range *r, unsigned nr, uint64_t gibs,
			  bool gbpages)
{
	size_t stub = (size_t)(x86_prefault_stub_end - x86_prefault_stub_start);
	uint8_t *code = gmem_ptr(mem, PREFAULT_CODE, 4096);
	uint64_t *table = gmem_ptr(mem, PREFAULT_TABLE, 4096);
	uint64_t *pml4 = gmem_ptr(mem, PREFAULT_PML4, 4096);
	uint64_t *pdpt = gmem_ptr(mem, PREFAULT_PDPT, 4096 * PREFAULT_PDPTS);
	uint64_t *pd = gbpages ? NULL : gmem_ptr(mem, PREFAULT_PD, 4096 * gibs);

	if (!code || !table || !pml4 || !pdpt || (!gbpages && !pd) || stub > 4096)
		return -EFAULT;
	memcpy(code, x86_prefault_stub_start, stub);
	memset(table, 0, 4096);
	for (unsigned i = 0; i < nr; i++) {
		table[2 * i] = r[i].gpa;
		table[2 * i + 1] = r[i].gpa + r[i].size;
	}
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096 * PREFAULT_PDPTS);
	for (uint64_t i = 0; i < (gibs + 511) / 512; i++)
		pml4[i] = (PREFAULT_PDPT + i * 4096) | PTE_PRESENT | PTE_RW;
	for (uint64_t g = 0; g < gibs; g++) {
		if (gbpages) {
			pdpt[g] = g * GIB | PTE_PRESENT | PTE_RW | PTE_PS;
			continue;
		}
		pdpt[g] = (PREFAULT_PD + g * 4096) | PTE_PRESENT | PTE_RW;
		for (uint64_t m = 0; m < 512; m++)
			pd[g * 512 + m] = (g * GIB + (m << 21)) | PTE_PRESENT | PTE_RW | PTE_PS;
	}
	return 0;
}

static long prefault_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int x86_prefault_ram(int vcpu_fd, struct kvm_run *run, struct gmem *mem, uint64_t ram_size,
		     bool gbpages)
{
	struct x86_ram_range r[2];
	unsigned nr = x86_ram_ranges(ram_size, r);
	uint64_t gibs = (r[nr - 1].gpa + r[nr - 1].size + GIB - 1) / GIB;
	struct timespec t0;
	int err;

	if (gibs > PREFAULT_PDPTS * 512ULL || (!gbpages && gibs > PREFAULT_PDS)) {
		log_err("--memory prefault=on: RAM ends at %llu GiB, past what the prefault pass maps "
			"(%llu GiB%s); drop prefault=on", (unsigned long long)gibs,
			gbpages ? PREFAULT_PDPTS * 512ULL : (unsigned long long)PREFAULT_PDS,
			gbpages ? "" : " without 1 GiB pages, CPUID pdpe1gb");
		return -E2BIG;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = prefault_write(mem, r, nr, gibs, gbpages);
	if (!err)
		err = x86_vcpu_setup_long_mode(vcpu_fd, PREFAULT_PML4, PREFAULT_CODE, PREFAULT_TABLE, 0);
	while (!err) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			log_err("--memory prefault=on: KVM_RUN failed: %s", strerror(-err));
			break;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PREFAULT_DONE_PORT)
			break;
		log_err("--memory prefault=on: the prefault pass stopped with KVM exit %u", run->exit_reason);
		x86_vcpu_dump(vcpu_fd, 0, mem, LOG_ERR);
		err = -EIO;
	}
	/* The guest finds this scratch as fresh RAM: zeroed. */
	memset(gmem_ptr(mem, X86_PREFAULT_ADDR, X86_PREFAULT_SIZE), 0, X86_PREFAULT_SIZE);
	if (!err)
		log_info("prefault: %llu MiB of guest RAM mapped for the guest in %ld ms",
			 (unsigned long long)(ram_size >> 20), prefault_ms_since(&t0));
	return err;
}
