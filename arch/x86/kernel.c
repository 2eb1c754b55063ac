/* Recognising and checking kernel images: bzImage setup header and ELF64. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_boot.h"
#include "cvmm/x86_layout.h"

/* Setup header offsets in the bzImage file (Linux boot.rst). */
#define BZ_SETUP_SECTS		0x1f1
#define BZ_BOOT_FLAG		0x1fe
#define BZ_JUMP			0x200
#define BZ_HEADER		0x202
#define BZ_VERSION		0x206
#define BZ_LOADFLAGS		0x211
#define BZ_INITRD_ADDR_MAX	0x22c
#define BZ_KERNEL_ALIGNMENT	0x230
#define BZ_RELOCATABLE		0x234
#define BZ_XLOADFLAGS		0x236
#define BZ_CMDLINE_SIZE		0x238
#define BZ_PREF_ADDRESS		0x258
#define BZ_INIT_SIZE		0x260
#define BZ_HDR_MIN_END		0x268  /* a 2.10+ header reaches past init_size */

#define BZ_LOADED_HIGH		0x01
#define BZ_XLF_KERNEL_64	0x01

static bool kernel_is_bzimage(const uint8_t *d, size_t size)
{
	return size >= BZ_HDR_MIN_END && le_get16(d + BZ_BOOT_FLAG) == 0xaa55 &&
	       !memcmp(d + BZ_HEADER, "HdrS", 4);
}

static int kernel_parse_bzimage(struct x86_kernel *k, const uint8_t *d, size_t size, char *err, size_t errlen)
{
	unsigned sects = d[BZ_SETUP_SECTS] ? d[BZ_SETUP_SECTS] : 4;

	k->kind = X86_KERNEL_BZIMAGE;
	k->version = le_get16(d + BZ_VERSION);
	if (k->version < 0x0206) {
		snprintf(err, errlen, "bzImage boot protocol %u.%02u is too old: cvmm needs 2.06 or later",
			 k->version >> 8, k->version & 0xff);
		return -EINVAL;
	}
	/* Protocol 2.06 predates the 64-bit entry (2.12's xloadflags). */
	if (k->version < 0x020c || !(le_get16(d + BZ_XLOADFLAGS) & BZ_XLF_KERNEL_64)) {
		snprintf(err, errlen, "bzImage is a 32-bit kernel (no 64-bit entry point, XLF_KERNEL_64): "
			 "use an x86_64 kernel");
		return -EINVAL;
	}
	if (!(d[BZ_LOADFLAGS] & BZ_LOADED_HIGH)) {
		snprintf(err, errlen, "image is a zImage loaded low, not a bzImage: use a bzImage");
		return -EINVAL;
	}
	k->setup_size = (size_t)(sects + 1) * 512;
	k->header_end = BZ_HEADER + d[BZ_JUMP + 1];
	if (k->setup_size >= size || k->header_end > k->setup_size || k->header_end < BZ_HDR_MIN_END) {
		snprintf(err, errlen, "bzImage is truncated or its setup header is malformed");
		return -EINVAL;
	}
	k->initrd_addr_max = le_get32(d + BZ_INITRD_ADDR_MAX);
	k->kernel_alignment = le_get32(d + BZ_KERNEL_ALIGNMENT);
	k->relocatable = d[BZ_RELOCATABLE];
	k->cmdline_size = le_get32(d + BZ_CMDLINE_SIZE);
	k->pref_address = le_get64(d + BZ_PREF_ADDRESS);
	k->init_size = le_get32(d + BZ_INIT_SIZE);
	if (size - k->setup_size > X86_HOLE_START) {
		snprintf(err, errlen, "bzImage is %zu MiB: larger than the 3 GiB below the PCI hole it must "
			 "fit in", size >> 20);
		return -EINVAL;
	}
	if (k->init_size < size - k->setup_size)
		k->init_size = (uint32_t)(size - k->setup_size);
	if (k->kernel_alignment & (k->kernel_alignment - 1) || k->pref_address < X86_HIMEM_ADDR) {
		snprintf(err, errlen, "bzImage setup header is malformed (alignment %#x, preferred address %#llx)",
			 k->kernel_alignment, (unsigned long long)k->pref_address);
		return -EINVAL;
	}
	return 0;
}

/* Physical entry: e_entry itself, or its translation when it is a virtual
 * address inside a segment (p_vaddr != p_paddr, as in a vmlinux). */
static int kernel_elf_entry(struct x86_kernel *k, const Elf64_Phdr *ph, unsigned nph, uint64_t entry)
{
	for (unsigned i = 0; i < k->nsegs; i++)
		if (entry >= k->segs[i].paddr && entry - k->segs[i].paddr < k->segs[i].memsz) {
			k->elf_entry = entry;
			return 0;
		}
	for (unsigned i = 0; i < nph; i++)
		if (ph[i].p_type == PT_LOAD && entry >= ph[i].p_vaddr && entry - ph[i].p_vaddr < ph[i].p_memsz) {
			k->elf_entry = entry - ph[i].p_vaddr + ph[i].p_paddr;
			return 0;
		}
	return -EINVAL;
}

static int kernel_parse_elf(struct x86_kernel *k, const uint8_t *d, size_t size, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[64];

	k->kind = X86_KERNEL_ELF;
	if (size < sizeof(eh)) {
		snprintf(err, errlen, "ELF kernel is truncated");
		return -EINVAL;
	}
	memcpy(&eh, d, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
		snprintf(err, errlen, "ELF kernel is 32-bit: cvmm boots only 64-bit (x86_64) kernels");
		return -EINVAL;
	}
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
		snprintf(err, errlen, "ELF file is not an x86_64 executable (machine %u, type %u)",
			 eh.e_machine, eh.e_type);
		return -EINVAL;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
	    eh.e_phoff > size || size - eh.e_phoff < (size_t)eh.e_phnum * sizeof(Elf64_Phdr)) {
		snprintf(err, errlen, "ELF kernel has a malformed program header table");
		return -EINVAL;
	}
	memcpy(ph, d + eh.e_phoff, (size_t)eh.e_phnum * sizeof(Elf64_Phdr));
	k->nsegs = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (k->nsegs == X86_ELF_MAX_SEGS || p->p_filesz > p->p_memsz || p->p_offset > size ||
		    size - p->p_offset < p->p_filesz) {
			snprintf(err, errlen, "ELF kernel segment %u is malformed or outside the file", i);
			return -EINVAL;
		}
		if (p->p_paddr < X86_HIMEM_ADDR || p->p_paddr > X86_HOLE_START ||
		    X86_HOLE_START - p->p_paddr < p->p_memsz) {
			snprintf(err, errlen, "ELF kernel segment %u at %#llx..%#llx is outside 1 MiB..3 GiB, "
				 "where cvmm loads kernels: link it at or above 1 MiB", i,
				 (unsigned long long)p->p_paddr, (unsigned long long)(p->p_paddr + p->p_memsz));
			return -EINVAL;
		}
		k->segs[k->nsegs++] = (struct x86_kernel_seg){ p->p_paddr, p->p_filesz, p->p_memsz, p->p_offset };
	}
	if (k->nsegs == 0) {
		snprintf(err, errlen, "ELF kernel has no loadable segment");
		return -EINVAL;
	}
	/* Loaded in order, a later segment would overwrite an earlier one. */
	for (unsigned i = 0; i < k->nsegs; i++)
		for (unsigned j = i + 1; j < k->nsegs; j++)
			if (k->segs[i].paddr < k->segs[j].paddr + k->segs[j].memsz &&
			    k->segs[j].paddr < k->segs[i].paddr + k->segs[i].memsz) {
				snprintf(err, errlen, "ELF kernel segments at %#llx and %#llx overlap",
					 (unsigned long long)k->segs[i].paddr,
					 (unsigned long long)k->segs[j].paddr);
				return -EINVAL;
			}
	if (kernel_elf_entry(k, ph, eh.e_phnum, eh.e_entry)) {
		snprintf(err, errlen, "ELF kernel entry point %#llx is not in a loaded segment",
			 (unsigned long long)eh.e_entry);
		return -EINVAL;
	}
	return 0;
}

int x86_kernel_parse(struct x86_kernel *k, const uint8_t *data, size_t size, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	k->data = data;
	k->size = size;
	if (size >= SELFMAG && !memcmp(data, ELFMAG, SELFMAG))
		return kernel_parse_elf(k, data, size, err, errlen);
	if (kernel_is_bzimage(data, size))
		return kernel_parse_bzimage(k, data, size, err, errlen);
	snprintf(err, errlen, "not a kernel: neither a bzImage nor an ELF file");
	return -ENOEXEC;
}
