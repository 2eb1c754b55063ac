/* The arm64 kernel Image and where it, the initramfs and the device tree go
 * (include/cvmm/arm64_boot.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cvmm/arm64_boot.h"
#include "cvmm/arm64_layout.h"
#include "cvmm/le.h"

#define ARM64_MIB (1024 * 1024ULL)
#define ARM64_PAGE 4096ULL
#define ARM64_IMAGE_FLAG_BE 1ULL

static bool arm64_is_gzip(const uint8_t *p, size_t size)
{
	return size >= 18 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8;
}

/* Inflates a gzip file into img->owned, growing up to ARM64_IMAGE_MAX_SIZE. */
static int arm64_gunzip(struct arm64_image *img, const uint8_t *file, size_t size, char *err, size_t errlen)
{
	z_stream zs = { .next_in = (Bytef *)file, .avail_in = (uInt)size };
	size_t cap = 32 * ARM64_MIB, used = 0;
	uint8_t *out = malloc(cap), *bigger;
	int zr;

	if (!out)
		return -ENOMEM;
	if (size > UINT32_MAX || inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		free(out);
		snprintf(err, errlen, "cannot decompress the gzip kernel (file too large or zlib failed)");
		return -EINVAL;
	}
	for (;;) {
		zs.next_out = out + used;
		zs.avail_out = (uInt)(cap - used);
		zr = inflate(&zs, Z_NO_FLUSH);
		used = cap - zs.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			snprintf(err, errlen, "the gzip kernel is corrupt (zlib: %s)", zs.msg ? zs.msg : "error");
			goto fail;
		}
		if (zs.avail_out) {
			snprintf(err, errlen, "the gzip kernel is truncated");
			goto fail;
		}
		if (cap >= ARM64_IMAGE_MAX_SIZE) {
			snprintf(err, errlen, "the gzip kernel decompresses to more than %llu MiB: not a kernel cvmm takes",
				 ARM64_IMAGE_MAX_SIZE / ARM64_MIB);
			goto fail;
		}
		cap *= 2;
		bigger = realloc(out, cap);
		if (!bigger) {
			inflateEnd(&zs);
			free(out);
			return -ENOMEM;
		}
		out = bigger;
	}
	inflateEnd(&zs);
	img->owned = out;
	img->data = out;
	img->size = used;
	img->compressed = true;
	return 0;
fail:
	inflateEnd(&zs);
	free(out);
	return -EINVAL;
}

int arm64_image_parse(struct arm64_image *img, const uint8_t *file, size_t size, char *err, size_t errlen)
{
	const uint8_t *h;
	uint64_t flags;
	int ret;

	memset(img, 0, sizeof(*img));
	img->data = file;
	img->size = size;
	if (arm64_is_gzip(file, size) && (ret = arm64_gunzip(img, file, size, err, errlen)))
		return ret;
	h = img->data;
	if (img->size < ARM64_IMAGE_HEADER_SIZE || le_get32(h + 56) != ARM64_IMAGE_MAGIC) {
		snprintf(err, errlen, "not an arm64 Image (no \"ARM\\x64\" magic at offset 56)%s",
			 img->compressed ? " inside the gzip file" : "");
		goto bad;
	}
	img->text_offset = le_get64(h + 8);
	img->image_size = le_get64(h + 16);
	flags = le_get64(h + 24);
	if (flags & ARM64_IMAGE_FLAG_BE) {
		snprintf(err, errlen, "big-endian arm64 Image: cvmm runs little-endian guests");
		goto bad;
	}
	if (!img->image_size) {
		snprintf(err, errlen, "arm64 Image without image_size (Linux before 3.17): not supported");
		goto bad;
	}
	if (img->image_size > ARM64_IMAGE_MAX_SIZE) {
		snprintf(err, errlen, "arm64 Image needs %llu MiB (image_size), more than the %llu MiB cvmm takes",
			 (unsigned long long)(img->image_size / ARM64_MIB), ARM64_IMAGE_MAX_SIZE / ARM64_MIB);
		goto bad;
	}
	if (img->image_size < img->size) {
		snprintf(err, errlen, "arm64 Image header says image_size %llu, less than its %zu bytes: corrupt",
			 (unsigned long long)img->image_size, img->size);
		goto bad;
	}
	if (img->text_offset % ARM64_PAGE || img->text_offset >= 2 * ARM64_MIB) {
		snprintf(err, errlen, "arm64 Image text_offset %#llx is not a page offset below 2 MiB: corrupt",
			 (unsigned long long)img->text_offset);
		goto bad;
	}
	return 0;
bad:
	arm64_image_destroy(img);
	return -EINVAL;
}

void arm64_image_destroy(struct arm64_image *img)
{
	free(img->owned);
	img->owned = NULL;
	img->data = NULL;
	img->size = 0;
}

int arm64_boot_plan(const struct arm64_image *img, uint64_t ram_size, uint64_t initrd_size, size_t cmdline_len,
		    struct arm64_boot_plan *p, char *err, size_t errlen)
{
	uint64_t limit;

	memset(p, 0, sizeof(*p));
	if (cmdline_len + 1 > ARM64_CMDLINE_MAX) {
		snprintf(err, errlen, "kernel command line is %zu bytes, Linux on arm64 takes at most %d",
			 cmdline_len, ARM64_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	p->kernel_addr = ARM64_RAM_BASE + img->text_offset;
	p->kernel_end = p->kernel_addr + img->image_size;
	if (ram_size < ARM64_FDT_MAX_SIZE + initrd_size + img->text_offset + img->image_size)
		goto small;
	/* booting.rst: the initramfs within a 1 GiB-aligned 32 GiB window that
	 * covers the kernel (a kernel with a small linear map reaches no
	 * further); the device tree beside it. */
	p->fdt_addr = ARM64_RAM_BASE + (ram_size < ARM64_INITRD_WINDOW ? ram_size : ARM64_INITRD_WINDOW) -
		      ARM64_FDT_MAX_SIZE;
	limit = p->fdt_addr;
	if (initrd_size) {
		p->initrd_addr = (p->fdt_addr - initrd_size) & ~(ARM64_PAGE - 1);
		p->initrd_size = initrd_size;
		limit = p->initrd_addr;
	}
	if (p->kernel_end > limit)
		goto small;
	return 0;
small:
	snprintf(err, errlen, "%llu MiB of RAM cannot hold the kernel (%llu MiB)%s and the device tree: "
		 "give more with --memory size=",
		 (unsigned long long)(ram_size / ARM64_MIB),
		 (unsigned long long)((img->text_offset + img->image_size + ARM64_MIB - 1) / ARM64_MIB),
		 initrd_size ? ", the initramfs" : "");
	return -E2BIG;
}
