/*
 * The test guest: checks the machine cvmm built from the inside and reports
 * over the 8250 at 0x3f8, one line per check:
 *   TG: <check> <details> ok
 *   TG: FAIL <check>: <what is wrong>
 * then "TG: PASS" or "TG: FAIL <n> of <m> checks failed", and resets the
 * machine through the i8042 (0xfe to port 0x64).
 *
 * Expectations come from the kernel command line: tg.cpus=N tg.mem=SIZE
 * (SIZE with K/M/G); tg.halt makes it halt at the end instead, tg.poweroff
 * power off through ACPI (S5). Each check lives in its own file and is listed in
 * main.c; everything runs on the boot CPU by polling, no interrupts.
 */
#ifndef TG_H
#define TG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_MAX_CPUS	64
#define TG_MAX_E820	128

/* Debug port cvmm's boot timer watches (docs/boot-timer.md). */
#define TG_BOOT_TIMER_PORT	0x440
#define TG_BOOT_TIMER_VALUE	123

struct tg_e820 {
	uint64_t addr, size;
	uint32_t type;
};

#define TG_E820_RAM	1

/* What the checks share: the boot information, copied out of the zero page
 * first, and findings later checks use. */
struct tg {
	char cmdline[1024];
	struct tg_e820 e820[TG_MAX_E820];
	unsigned ne820;

	unsigned want_cpus;     /* 0 when the command line sets no expectation */
	uint64_t want_mem;
	bool halt;              /* tg.halt: halt at the end instead of resetting */
	bool poweroff;          /* tg.poweroff: end with ACPI S5 instead of resetting */
	unsigned want_virtio;   /* tg.virtio=N: virtio devices expected (0: none checked) */
	uint8_t seed;           /* tg.seed=N: varies the data written to virtio-blk */
	unsigned blk_loops;     /* tg.blkloop=N: after the check, N more write+read rounds */
	bool blk_grow;          /* tg.blkgrow: then wait for the disk's capacity to grow */
	bool vsock_restart;     /* tg.vsockrestart: the vsock check outlives a back-end restart */

	/* From the MADT (acpi.c), 0 when not found. */
	unsigned madt_cpus;
	uint32_t madt_apic_ids[TG_MAX_CPUS];
	uint64_t lapic_base;
	/* From the FADT and DSDT (acpi.c); slp_typ -1 when not found. */
	uint64_t sleep_port;
	bool sleep_hw_reduced;
	int slp_typ;
};

/* Port and MSR access. */
static inline void tg_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t tg_inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void tg_outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t tg_inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t tg_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void tg_cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static inline void tg_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* lib.c */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t tg_strlen(const char *s);
void tg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The next space-separated word of a command line at *p: returns its start
 * and length (0 at the end) and moves *p past it. */
const char *tg_next_word(const char **p, size_t *len);
/* Parses a size with an optional K/M/G suffix; false on junk. */
bool tg_parse_size(const char *s, size_t len, uint64_t *out);
uint8_t tg_checksum(const void *p, size_t n);

/* serial.c */
void tg_serial_init(void);
void tg_serial_putc(char c);

/* paging.c: the page tables cvmm entered us with, shared with the APs. */
void tg_paging_init(void);
/* True when [addr, addr+len) is identity-mapped. */
bool tg_mapped(uint64_t addr, uint64_t len);
extern uint32_t tg_ap_cr3;     /* CR3 for the APs; 0 when above 4 GiB */

/* The checks; each prints its own line and returns 0 (ok) or -1. */
int tg_check_serial(struct tg *t);
int tg_check_cmdline(struct tg *t);
int tg_check_cpuid(struct tg *t);
int tg_check_e820(struct tg *t);
int tg_check_acpi(struct tg *t);
/* Enters S5 as the ACPI tables say (returns only if it cannot). */
void tg_acpi_poweroff(const struct tg *t);
int tg_check_mptable(struct tg *t);
int tg_check_smp(struct tg *t);
int tg_check_virtio(struct tg *t);

/* head.S: AP start-up. The real-mode trampoline is copied below 1 MiB. */
extern const uint8_t tg_trampoline_start[], tg_trampoline_end[];
extern volatile uint32_t tg_ap_next;   /* slots handed out to APs */
/* smp.c: what each AP runs once in long mode, on its own stack. */
void tg_ap_main(uint32_t slot);
/* main.c: the C entry, boot_params in zero_page; resets or halts when done. */
void tg_main(uint64_t zero_page);
void tg_reset(void) __attribute__((noreturn));
void tg_halt(void) __attribute__((noreturn));

#endif
