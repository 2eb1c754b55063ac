/*
 * The DSDT's AML, encoded here rather than compiled from ASL (ACPI 6.4,
 * chapter 20). It declares:
 *
 *	Name (\_S5, Package () { 5, 5, 0, 0 })   // what the OS writes to PM1a_CNT.SLP_TYP for soft-off
 *	Scope (\_SB) {
 *		Device (PCI0) {                      // the PCI host bridge, config through ports 0xcf8/0xcfc
 *			Name (_HID, EisaId ("PNP0A03"))
 *			Name (_UID, 0)
 *			Name (_BBN, 0)
 *			Name (_CRS, ResourceTemplate () {
 *				WordBusNumber: bus 0
 *				IO: 0xcf8, 8 ports
 *				WordIO: 0x0000-0x0cf7, 0x0d00-0xffff
 *				DWordMemory: X86_PCI_MMIO_START, X86_PCI_MMIO_SIZE
 *			})
 *		}
 *	}
 *
 * Devices interrupt through MSI(-X); there is no _PRT, so no INTx.
 */
#include <stdbool.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"

#define AML_ZERO	0x00
#define AML_NAME	0x08
#define AML_BYTE	0x0a
#define AML_DWORD	0x0c
#define AML_SCOPE	0x10
#define AML_BUFFER	0x11
#define AML_PACKAGE	0x12
#define AML_EXT		0x5b
#define AML_DEVICE	0x82
#define AML_ROOT	0x5c

struct aml {
	uint8_t *buf;
	size_t len, cap;
	bool overflow;
};

static void aml_put(struct aml *a, const void *p, size_t n)
{
	if (a->overflow || a->cap - a->len < n) {
		a->overflow = true;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_put(a, &b, 1);
}

/* Closes a block opened at start (just after its opcode) by inserting its
 * PkgLength, which counts itself and everything after it. */
static void aml_close(struct aml *a, size_t start)
{
	size_t body = a->len - start, total;
	uint8_t pl[4];
	unsigned n;

	if (a->overflow)
		return;
	if (body + 1 <= 63) {
		pl[0] = (uint8_t)(body + 1);
		n = 1;
	} else {
		n = body + 2 <= 0xfff ? 2 : body + 3 <= 0xfffff ? 3 : 4;
		total = body + n;
		pl[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			pl[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (a->cap - a->len < n) {
		a->overflow = true;
		return;
	}
	memmove(a->buf + start + n, a->buf + start, body);
	memcpy(a->buf + start, pl, n);
	a->len += n;
}

/* Name (seg, <value bytes>) */
static void aml_name(struct aml *a, const char seg[4], const uint8_t *val, size_t n)
{
	aml_byte(a, AML_NAME);
	aml_put(a, seg, 4);
	aml_put(a, val, n);
}

static void aml_word_space(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	uint8_t d[16] = { 0x88, 13, 0, type, 0x0c, tflags };  /* producer, min and max fixed */

	le_put16(d + 8, min);
	le_put16(d + 10, max);
	le_put16(d + 14, (uint16_t)(max - min + 1));
	aml_put(a, d, sizeof(d));
}

static void aml_pci_crs(struct aml *a)
{
	static const uint8_t io_cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	uint8_t mem[26] = { 0x87, 23, 0, 0, 0x0c, 0x01 };  /* memory, read/write, non-cacheable */
	uint8_t bus[16] = { 0x88, 13, 0, 2, 0x0c, 0 };     /* bus numbers 0..0 */
	static const uint8_t end[] = { 0x79, 0 };
	size_t start, size_at;

	aml_byte(a, AML_NAME);
	aml_put(a, "_CRS", 4);
	aml_byte(a, AML_BUFFER);
	start = a->len;
	aml_byte(a, AML_BYTE);
	size_at = a->len;
	aml_byte(a, 0);
	le_put16(bus + 14, 1);
	aml_put(a, bus, sizeof(bus));
	aml_put(a, io_cf8, sizeof(io_cf8));
	aml_word_space(a, 1, 3, 0x0000, 0x0cf7);
	aml_word_space(a, 1, 3, 0x0d00, 0xffff);
	le_put32(mem + 10, (uint32_t)X86_PCI_MMIO_START);
	le_put32(mem + 14, (uint32_t)(X86_PCI_MMIO_START + X86_PCI_MMIO_SIZE - 1));
	le_put32(mem + 22, (uint32_t)X86_PCI_MMIO_SIZE);
	aml_put(a, mem, sizeof(mem));
	aml_put(a, end, sizeof(end));
	if (!a->overflow)
		a->buf[size_at] = (uint8_t)(a->len - size_at - 1);
	aml_close(a, start);
}

int x86_dsdt_aml(uint8_t *buf, size_t cap)
{
	static const uint8_t s5[] = { AML_PACKAGE, 8, 4, AML_BYTE, X86_ACPI_S5_SLP_TYP, AML_BYTE,
				      X86_ACPI_S5_SLP_TYP, AML_ZERO, AML_ZERO };
	static const uint8_t hid[] = { AML_DWORD, 0x41, 0xd0, 0x0a, 0x03 };  /* EisaId ("PNP0A03") */
	static const uint8_t zero[] = { AML_ZERO };
	struct aml a = { .buf = buf, .cap = cap };
	size_t scope, dev;

	aml_name(&a, "_S5_", s5, sizeof(s5));
	aml_byte(&a, AML_SCOPE);
	scope = a.len;
	aml_put(&a, "\\_SB_", 5);
	aml_byte(&a, AML_EXT);
	aml_byte(&a, AML_DEVICE);
	dev = a.len;
	aml_put(&a, "PCI0", 4);
	aml_name(&a, "_HID", hid, sizeof(hid));
	aml_name(&a, "_UID", zero, 1);
	aml_name(&a, "_BBN", zero, 1);
	aml_pci_crs(&a);
	aml_close(&a, dev);
	aml_close(&a, scope);
	return a.overflow ? -1 : (int)a.len;
}
