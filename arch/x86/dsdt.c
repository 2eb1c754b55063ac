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
 *		Device (MRES) {                      // motherboard resources: the ECAM window the MCFG
 *			Name (_HID, EisaId ("PNP0C02"))  // announces (Linux uses MMCONFIG only when it is reserved)
 *			Name (_UID, 0)
 *			Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, X86_PCI_ECAM_ADDR, X86_PCI_ECAM_SIZE) })
 *		}
 *		Device (VRnn) {                      // one per virtio-mmio device, nn = its index in hex
 *			Name (_HID, "LNRO0005")          // what Linux's virtio_mmio driver matches
 *			Name (_UID, nn)
 *			Name (_CRS, ResourceTemplate () {
 *				Memory32Fixed (ReadWrite, base, size)
 *				Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { irq }
 *			})
 *		}
 *	}
 *
 * PCI devices interrupt through MSI-X only and say so (Interrupt Pin 0), so
 * there is no _PRT. virtio-mmio interrupts are edge-triggered: cvmm pulses
 * the IOAPIC pin through an irqfd, and a level-triggered pin would drop a
 * pulse that arrives before the previous one's EOI.
 */
#include <stdbool.h>
#include <string.h>

#include "cvmm/le.h"
#include "cvmm/x86_layout.h"
#include "cvmm/x86_tables.h"

#define AML_ZERO	0x00
#define AML_NAME	0x08
#define AML_BYTE	0x0a
#define AML_STRING	0x0d
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

/* Name (_CRS, Buffer () { <descriptors>, EndTag }) */
static void aml_crs(struct aml *a, const uint8_t *desc, size_t n)
{
	static const uint8_t end[] = { 0x79, 0 };
	size_t start, size_at;

	aml_byte(a, AML_NAME);
	aml_put(a, "_CRS", 4);
	aml_byte(a, AML_BUFFER);
	start = a->len;
	aml_byte(a, AML_BYTE);
	size_at = a->len;
	aml_byte(a, 0);
	aml_put(a, desc, n);
	aml_put(a, end, sizeof(end));
	if (!a->overflow)
		a->buf[size_at] = (uint8_t)(a->len - size_at - 1);
	aml_close(a, start);
}

static void aml_word_space(uint8_t d[16], uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	static const uint8_t head[] = { 0x88, 13, 0, 0, 0x0c };  /* producer, min and max fixed */

	memset(d, 0, 16);
	memcpy(d, head, sizeof(head));
	d[3] = type;
	d[5] = tflags;
	le_put16(d + 8, min);
	le_put16(d + 10, max);
	le_put16(d + 14, (uint16_t)(max - min + 1));
}

/* Memory32Fixed (ReadWrite, base, size): 12 bytes. */
static void aml_memory32_fixed(uint8_t d[12], uint32_t base, uint32_t size)
{
	d[0] = 0x86;
	le_put16(d + 1, 9);
	d[3] = 1;  /* read/write */
	le_put32(d + 4, base);
	le_put32(d + 8, size);
}

static void aml_pci_crs(struct aml *a)
{
	static const uint8_t io_cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	uint8_t d[16 + sizeof(io_cf8) + 16 + 16 + 26] = { 0 };
	uint8_t *bus = d, *mem = d + sizeof(d) - 26;

	aml_word_space(bus, 2, 0, 0, 0);  /* bus numbers 0..0 */
	memcpy(d + 16, io_cf8, sizeof(io_cf8));
	aml_word_space(d + 16 + sizeof(io_cf8), 1, 3, 0x0000, 0x0cf7);
	aml_word_space(d + 32 + sizeof(io_cf8), 1, 3, 0x0d00, 0xffff);
	memcpy(mem, (const uint8_t[]){ 0x87, 23, 0, 0, 0x0c, 0x01 }, 6);  /* memory, read/write, non-cacheable */
	le_put32(mem + 10, (uint32_t)X86_PCI_MMIO_START);
	le_put32(mem + 14, (uint32_t)(X86_PCI_MMIO_START + X86_PCI_MMIO_SIZE - 1));
	le_put32(mem + 22, (uint32_t)X86_PCI_MMIO_SIZE);
	aml_crs(a, d, sizeof(d));
}

/* Opens Device (name): returns where to close it. */
static size_t aml_device(struct aml *a, const char name[4])
{
	size_t start;

	aml_byte(a, AML_EXT);
	aml_byte(a, AML_DEVICE);
	start = a->len;
	aml_put(a, name, 4);
	return start;
}

static void aml_motherboard_resources(struct aml *a)
{
	static const uint8_t hid[] = { AML_DWORD, 0x41, 0xd0, 0x0c, 0x02 };  /* EisaId ("PNP0C02") */
	static const uint8_t zero[] = { AML_ZERO };
	uint8_t mem[12];
	size_t dev = aml_device(a, "MRES");

	aml_name(a, "_HID", hid, sizeof(hid));
	aml_name(a, "_UID", zero, 1);
	aml_memory32_fixed(mem, (uint32_t)X86_PCI_ECAM_ADDR, (uint32_t)X86_PCI_ECAM_SIZE);
	aml_crs(a, mem, sizeof(mem));
	aml_close(a, dev);
}

static void aml_virtio_mmio(struct aml *a, unsigned index, const struct x86_mmio_dev *m)
{
	static const uint8_t hid[] = { AML_STRING, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0 };
	static const char hex[] = "0123456789ABCDEF";
	const char name[4] = { 'V', 'R', hex[index >> 4 & 0xf], hex[index & 0xf] };
	const uint8_t uid[] = { AML_BYTE, (uint8_t)index };
	/* Extended interrupt: consumer, edge, active high, exclusive; one IRQ. */
	uint8_t d[12 + 9] = { [12] = 0x89, [13] = 6, [14] = 0, [15] = 0x03, [16] = 1 };
	size_t dev = aml_device(a, name);

	aml_name(a, "_HID", hid, sizeof(hid));
	aml_name(a, "_UID", uid, sizeof(uid));
	aml_memory32_fixed(d, (uint32_t)m->base, m->size);
	le_put32(d + 17, m->irq);
	aml_crs(a, d, sizeof(d));
	aml_close(a, dev);
}

int x86_dsdt_aml(uint8_t *buf, size_t cap, const struct x86_mmio_dev *mmio, unsigned nmmio)
{
	static const uint8_t s5[] = { AML_PACKAGE, 8, 4, AML_BYTE, X86_ACPI_S5_SLP_TYP, AML_BYTE,
				      X86_ACPI_S5_SLP_TYP, AML_ZERO, AML_ZERO };
	static const uint8_t hid[] = { AML_DWORD, 0x41, 0xd0, 0x0a, 0x03 };  /* EisaId ("PNP0A03") */
	static const uint8_t zero[] = { AML_ZERO };
	struct aml a = { .buf = buf, .cap = cap };
	size_t scope, dev;

	if (nmmio > X86_MAX_MMIO_DEVS)
		return -1;
	aml_name(&a, "_S5_", s5, sizeof(s5));
	aml_byte(&a, AML_SCOPE);
	scope = a.len;
	aml_put(&a, "\\_SB_", 5);
	dev = aml_device(&a, "PCI0");
	aml_name(&a, "_HID", hid, sizeof(hid));
	aml_name(&a, "_UID", zero, 1);
	aml_name(&a, "_BBN", zero, 1);
	aml_pci_crs(&a);
	aml_close(&a, dev);
	aml_motherboard_resources(&a);
	for (unsigned i = 0; i < nmmio; i++)
		aml_virtio_mmio(&a, i, &mmio[i]);
	aml_close(&a, scope);
	return a.overflow ? -1 : (int)a.len;
}
