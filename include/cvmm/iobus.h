/*
 * Dispatch of the guest's port I/O and MMIO exits to device handlers: a
 * table of address ranges, one per device register block. A VM has one bus
 * for ports and one for MMIO (struct vm: vm->pio, vm->mmio; register through
 * vm_pio_register / vm_mmio_register).
 *
 * Locking: lookups (from vCPU threads) and registration (any thread) take the
 * bus's rwlock; handlers run without it held by the bus and may be called
 * from several vCPU threads at once, so a device locks its own state. A
 * handler may still be running just after iobus_unregister returns: free a
 * device's state only once the vCPUs are stopped.
 */
#ifndef CVMM_IOBUS_H
#define CVMM_IOBUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* offset is from the range's base; data holds len (1, 2, 4 or 8) bytes,
 * little-endian: filled by a read handler, the value of a write. */
typedef void (*iobus_fn)(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

struct iobus_range {
	uint64_t base, len;
	iobus_fn fn;
	void *opaque;
};

#define IOBUS_MAX_RANGES 64

struct iobus {
	pthread_rwlock_t lock;
	struct iobus_range ranges[IOBUS_MAX_RANGES];
	unsigned n;
	const char *name;  /* "port" or "mmio", for log lines */
};

void iobus_init(struct iobus *bus, const char *name);
void iobus_destroy(struct iobus *bus);
/* 0, -EINVAL (empty or wrapping range), -EEXIST (overlaps another) or -ENOSPC. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len, iobus_fn fn, void *opaque);
int iobus_unregister(struct iobus *bus, uint64_t base);
/* Calls the handler whose range holds [addr, addr+len). Returns false when
 * none does; a read then yields all ones (what an empty bus returns). */
bool iobus_dispatch(struct iobus *bus, uint64_t addr, uint8_t *data, unsigned len, bool is_write);

#endif
