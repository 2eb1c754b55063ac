/* Entry from head.S: copy the boot information, run the checks in order,
 * report, reset. */
#include "tg.h"

/* Offsets in the Linux zero page (boot_params), Documentation/x86/zero-page.rst. */
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_CMD_LINE_PTR		0x228
#define BP_CMDLINE_SIZE		0x238
#define BP_E820_TABLE		0x2d0

struct tg_check {
	const char *name;
	int (*run)(struct tg *t);
};

/* In order: later checks use what earlier ones found (SMP uses the MADT). */
static const struct tg_check tg_checks[] = {
	{ "serial", tg_check_serial },
	{ "cmdline", tg_check_cmdline },
	{ "cpuid", tg_check_cpuid },
	{ "e820", tg_check_e820 },
	{ "acpi", tg_check_acpi },
	{ "mptable", tg_check_mptable },
	{ "smp", tg_check_smp },
	{ "virtio", tg_check_virtio },
};

static struct tg tg_state;

void tg_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void tg_reset(void)
{
	tg_outb(0x64, 0xfe);
	tg_halt();
}

static uint32_t tg_rd32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}

/* Copies the command line and e820 table while cvmm's own page tables are
 * still in use (the zero page is inside the map cvmm entered us with). */
static void tg_copy_boot_info(struct tg *t, uint64_t zp)
{
	const uint8_t *bp = (const uint8_t *)(uintptr_t)zp;
	uint64_t cmd = tg_rd32(zp + BP_CMD_LINE_PTR) | (uint64_t)tg_rd32(zp + BP_EXT_CMD_LINE_PTR) << 32;
	unsigned n = bp[BP_E820_ENTRIES], i;

	t->cmdline[0] = 0;
	if (cmd && tg_mapped(cmd, 1)) {
		const char *c = (const char *)(uintptr_t)cmd;

		for (i = 0; i + 1 < sizeof(t->cmdline) && c[i]; i++)
			t->cmdline[i] = c[i];
		t->cmdline[i] = 0;
	}
	if (n > TG_MAX_E820)
		n = TG_MAX_E820;
	for (i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		memcpy(&t->e820[i].addr, e, 8);
		memcpy(&t->e820[i].size, e + 8, 8);
		memcpy(&t->e820[i].type, e + 16, 4);
	}
	t->ne820 = n;
}

void tg_main(uint64_t zero_page)
{
	struct tg *t = &tg_state;
	unsigned i, failed = 0, n = sizeof(tg_checks) / sizeof(tg_checks[0]);

	/* The boot timer measures cvmm's path into the guest: mark it first. */
	tg_outb(TG_BOOT_TIMER_PORT, TG_BOOT_TIMER_VALUE);
	tg_serial_init();
	tg_printf("TG: start zero_page=0x%lx\n", zero_page);
	tg_copy_boot_info(t, zero_page);
	t->slp_typ = -1;
	tg_paging_init();
	for (i = 0; i < n; i++)
		if (tg_checks[i].run(t) < 0)
			failed++;
	if (failed)
		tg_printf("TG: FAIL %u of %u checks failed\n", failed, n);
	else
		tg_printf("TG: PASS %u checks\n", n);
	if (t->poweroff) {
		tg_acpi_poweroff(t);
		/* Stay up: a VMM that ignored S5 shows as a hung guest. */
		tg_halt();
	}
	if (t->halt)
		tg_halt();
}
