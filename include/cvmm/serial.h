/*
 * 8250/16550A UART (what Linux's 8250 driver and simple guests expect at
 * COM1: 0x3f8, IRQ 4; on arm64 the same registers on MMIO, found by Linux
 * through the device tree's "ns16550a" node). Transmitted bytes go straight to an output fd; received
 * bytes are pushed in by the VMM's console (serial_input) into a 16-byte
 * FIFO, and room_fd tells the console when the guest made room again.
 *
 * Locking: the UART's state is under its mutex; register handlers run on
 * vCPU threads, serial_input and serial_set_output on the main thread.
 */
#ifndef CVMM_SERIAL_H
#define CVMM_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_FIFO_SIZE 16

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t port;     /* 0 on MMIO */
	unsigned irq;
	int out_fd;        /* where transmitted bytes go; -1 discards them */
	int room_fd;       /* eventfd: written when a full FIFO gets room */
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending; /* a "transmitter empty" interrupt not yet acknowledged */
	bool irq_level;
	uint8_t rx[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;
};

/* Registers the UART's eight ports on vm. 0 or -errno. */
int serial_init(struct serial *s, struct vm *vm, uint16_t port, unsigned irq, int out_fd);
/* The same UART as eight byte-wide MMIO registers at addr (arm64). */
int serial_init_mmio(struct serial *s, struct vm *vm, uint64_t addr, unsigned irq, int out_fd);
void serial_destroy(struct serial *s);
/* A machine reset: registers as at power-on, received bytes dropped. */
void serial_reset(struct serial *s);
/* Queues up to len received bytes; returns how many fit. */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);
size_t serial_rx_room(struct serial *s);
/* Changes where output goes (a console socket client came or went). */
void serial_set_output(struct serial *s, int out_fd);
/* The register handler (exposed for unit tests). */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write);

#endif
