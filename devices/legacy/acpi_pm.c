/* ACPI fixed hardware (PM1a event and control blocks, PM timer). */
#include <string.h>
#include <time.h>

#include "cvmm/legacy.h"
#include "cvmm/log.h"
#include "cvmm/vm.h"
#include "cvmm/x86_tables.h"

#define PM1_CNT_SCI_EN		0x0001
#define PM1_CNT_SLP_TYP_SHIFT	10
#define PM1_CNT_SLP_TYP_MASK	(7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN		0x2000
#define PM_TIMER_HZ		3579545ULL

static void acpi_pm_cnt_write(struct acpi_pm *pm, uint16_t v)
{
	unsigned typ = (v & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT;

	/* SLP_EN is write-only: it triggers the transition and reads as 0. */
	pm->cnt = (uint16_t)((v & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN);
	if (!(v & PM1_CNT_SLP_EN) || !pm->vm)
		return;
	if (typ == X86_ACPI_S5_SLP_TYP)
		vm_request_exit(pm->vm, VM_EXIT_POWEROFF, "guest powered off (ACPI S5)");
	else
		log_warn_ratelimited("acpi: guest asked for sleep type %u, which cvmm does not offer; ignored", typ);
}

/* PM1a control, 2 bytes; byte accesses update their half. */
void acpi_pm_cnt_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t b[2];

	pthread_mutex_lock(&pm->lock);
	b[0] = (uint8_t)pm->cnt;
	b[1] = (uint8_t)(pm->cnt >> 8);
	if (is_write) {
		for (unsigned i = 0; i < len && offset + i < 2; i++)
			b[offset + i] = data[i];
		acpi_pm_cnt_write(pm, (uint16_t)(b[0] | b[1] << 8));
	} else {
		memset(data, 0, len);
		for (unsigned i = 0; i < len && offset + i < 2; i++)
			data[i] = b[offset + i];
	}
	pthread_mutex_unlock(&pm->lock);
}

/* PM1a status (write 1 to clear) and enable, 2 bytes each. */
static void acpi_pm_evt_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct acpi_pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len && offset + i < 4; i++) {
		unsigned off = (unsigned)offset + i;
		uint16_t *reg = off < 2 ? &pm->sts : &pm->en;
		unsigned shift = (off & 1) * 8;

		if (!is_write)
			data[i] = (uint8_t)(*reg >> shift);
		else if (off < 2)
			*reg = (uint16_t)(*reg & ~((unsigned)data[i] << shift));
		else
			*reg = (uint16_t)((*reg & ~(0xffu << shift)) | (unsigned)data[i] << shift);
	}
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_tmr_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct timespec ts;
	uint32_t ticks;

	(void)opaque;
	if (is_write)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ticks = (uint32_t)((uint64_t)ts.tv_sec * PM_TIMER_HZ + (uint64_t)ts.tv_nsec * PM_TIMER_HZ / 1000000000ULL);
	memset(data, 0, len);
	for (unsigned i = 0; i < len && offset + i < 4; i++)
		data[i] = (uint8_t)(ticks >> (8 * (offset + i)));
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts = pm->en = 0;
	pm->cnt = PM1_CNT_SCI_EN;
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_init(struct acpi_pm *pm, struct vm *vm)
{
	int err;

	memset(pm, 0, sizeof(*pm));
	pm->vm = vm;
	pm->cnt = PM1_CNT_SCI_EN;
	pthread_mutex_init(&pm->lock, NULL);
	if (!vm)
		return 0;
	err = vm_pio_register(vm, X86_ACPI_PM1A_EVT, 4, acpi_pm_evt_io, pm);
	if (!err)
		err = vm_pio_register(vm, X86_ACPI_PM1A_CNT, 2, acpi_pm_cnt_io, pm);
	if (!err)
		err = vm_pio_register(vm, X86_ACPI_PM_TMR, 4, acpi_pm_tmr_io, pm);
	if (err) {
		log_err("acpi: cannot claim ports %#x-%#x: %s", X86_ACPI_PM1A_EVT, X86_ACPI_PM_TMR + 3,
			strerror(-err));
		pthread_mutex_destroy(&pm->lock);
	}
	return err;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}
