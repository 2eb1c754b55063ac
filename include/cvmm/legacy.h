/*
 * Small legacy x86 devices:
 *  - i8042: the PC keyboard controller, enough for a guest to reset the
 *    machine (reboot=k: command 0xfe to port 0x64; also output-port writes
 *    that clear the reset line). No keyboard is attached.
 *  - boot timer: a debug port the guest writes a marker to; cvmm logs the
 *    time since process start (docs/boot-timer.md).
 *  - ACPI PM: the fixed-hardware PM1a event/control blocks and PM timer
 *    that the FADT describes; writing SLP_EN with \_S5's SLP_TYP powers off.
 * Their handlers run on vCPU threads and stop the VM through vm_request_exit.
 */
#ifndef CVMM_LEGACY_H
#define CVMM_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ctr;        /* controller configuration byte */
	uint8_t out;        /* byte waiting in the output buffer */
	bool out_full;
	uint8_t pending;    /* command waiting for its data byte, or 0 */
};

int i8042_init(struct i8042 *k, struct vm *vm);
void i8042_destroy(struct i8042 *k);
/* A machine reset: the controller as at power-on. */
void i8042_reset(struct i8042 *k);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

#define BOOT_TIMER_PORT 0x440
#define BOOT_TIMER_MARKER_BOOTED 123

struct boot_timer {
	struct vm *vm;
};

int boot_timer_init(struct boot_timer *t, struct vm *vm);

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t sts, en;
	uint16_t cnt;
};

int acpi_pm_init(struct acpi_pm *pm, struct vm *vm);
void acpi_pm_destroy(struct acpi_pm *pm);
/* A machine reset: no events pending or enabled, SCI_EN set. */
void acpi_pm_reset(struct acpi_pm *pm);
void acpi_pm_cnt_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

#endif
