#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/log.h"
#include "cvmm/serial.h"
#include "cvmm/vm.h"

/* Register offsets */
#define UART_RBR_THR	0
#define UART_IER	1
#define UART_IIR_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define UART_IER_RDA	0x01
#define UART_IER_THRE	0x02
#define UART_IIR_NONE	0x01
#define UART_IIR_THRE	0x02
#define UART_IIR_RDA	0x04
#define UART_IIR_FIFO	0xc0
#define UART_FCR_ENABLE	0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_LCR_DLAB	0x80
#define UART_MCR_DTR	0x01
#define UART_MCR_RTS	0x02
#define UART_MCR_OUT1	0x04
#define UART_MCR_OUT2	0x08
#define UART_MCR_LOOP	0x10
#define UART_LSR_DR	0x01
#define UART_LSR_THRE	0x20
#define UART_LSR_TEMT	0x40
#define UART_MSR_CTS	0x10
#define UART_MSR_DSR	0x20
#define UART_MSR_RI	0x40
#define UART_MSR_DCD	0x80

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = s->fcr & UART_FCR_ENABLE ? UART_IIR_FIFO : 0;

	if ((s->ier & UART_IER_RDA) && s->rx_count)
		return fifo | UART_IIR_RDA;
	if ((s->ier & UART_IER_THRE) && s->thre_pending)
		return fifo | UART_IIR_THRE;
	return fifo | UART_IIR_NONE;
}

/* Called with the lock held after any state change. On a PC, OUT2 gates
 * the UART's interrupt line. */
static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & UART_IIR_NONE) && (s->mcr & UART_MCR_OUT2);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (s->vm && vm_irq_line(s->vm, s->irq, level) < 0)
		log_warn_ratelimited("serial: cannot set IRQ %u: %s", s->irq, strerror(errno));
}

static void serial_push_rx(struct serial *s, uint8_t b)
{
	if (s->rx_count == SERIAL_FIFO_SIZE)
		return;
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = b;
	s->rx_count++;
}

/* The console input loop stops reading while the FIFO is full and waits on
 * room_fd: every way out of "full" must wake it. */
static void serial_rx_drop(struct serial *s, unsigned n)
{
	bool was_full = s->rx_count == SERIAL_FIFO_SIZE;

	s->rx_head = (s->rx_head + n) % SERIAL_FIFO_SIZE;
	s->rx_count -= n;
	if (was_full && n && s->room_fd >= 0 && eventfd_write(s->room_fd, 1) < 0)
		log_warn_ratelimited("serial: eventfd: %s", strerror(errno));
}

static uint8_t serial_pop_rx(struct serial *s)
{
	uint8_t b;

	if (!s->rx_count)
		return 0;
	b = s->rx[s->rx_head];
	serial_rx_drop(s, 1);
	return b;
}

static void serial_transmit(struct serial *s, uint8_t b)
{
	if (s->mcr & UART_MCR_LOOP) {
		serial_push_rx(s, b);
	} else if (s->out_fd >= 0) {
		/* A console that cannot take output (a full socket) loses it
		 * rather than stalling the guest. */
		while (write(s->out_fd, &b, 1) < 0 && errno == EINTR)
			;
	}
	s->thre_pending = true;
}

static uint8_t serial_msr(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(m & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	return (m & UART_MCR_DTR ? UART_MSR_DSR : 0) | (m & UART_MCR_RTS ? UART_MSR_CTS : 0) |
	       (m & UART_MCR_OUT1 ? UART_MSR_RI : 0) | (m & UART_MCR_OUT2 ? UART_MSR_DCD : 0);
}

static uint8_t serial_read(struct serial *s, unsigned reg)
{
	bool dlab = s->lcr & UART_LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case UART_RBR_THR:
		return dlab ? s->dll : serial_pop_rx(s);
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR_FCR:
		v = serial_iir(s);
		/* Reading IIR acknowledges a THRE interrupt. */
		if ((v & 0x0f) == UART_IIR_THRE)
			s->thre_pending = false;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0);
	case UART_MSR:
		return serial_msr(s);
	default:
		return s->scr;
	}
}

static void serial_write(struct serial *s, unsigned reg, uint8_t v)
{
	bool dlab = s->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			s->dll = v;
		else
			serial_transmit(s, v);
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		/* Enabling THRE with an empty transmitter raises it at once. */
		if ((v & UART_IER_THRE) && !(s->ier & UART_IER_THRE))
			s->thre_pending = true;
		s->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		s->fcr = v & (UART_FCR_ENABLE | 0xc0);
		if (v & UART_FCR_CLEAR_RX)
			serial_rx_drop(s, s->rx_count);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_LSR:
	case UART_MSR:
		break;  /* read-only (factory test writes are ignored) */
	default:
		s->scr = v;
		break;
	}
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	/* The UART's registers are bytes; a wider access touches the first. */
	if (is_write) {
		serial_write(s, (unsigned)offset, data[0]);
	} else {
		data[0] = serial_read(s, (unsigned)offset);
		memset(data + 1, 0, len - 1);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	s->ier = s->lcr = s->mcr = s->scr = s->dll = s->dlm = s->fcr = 0;
	s->thre_pending = false;
	s->rx_head = s->rx_count = 0;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static int serial_setup(struct serial *s, struct vm *vm, unsigned irq, int out_fd)
{
	memset(s, 0, sizeof(*s));
	s->vm = vm;
	s->irq = irq;
	s->out_fd = out_fd;
	pthread_mutex_init(&s->lock, NULL);
	s->room_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->room_fd < 0) {
		int err = -errno;

		pthread_mutex_destroy(&s->lock);
		return err;
	}
	return 0;
}

int serial_init(struct serial *s, struct vm *vm, uint16_t port, unsigned irq, int out_fd)
{
	int err = serial_setup(s, vm, irq, out_fd);

	s->port = port;
	if (err || !vm)
		return err;
	err = vm_pio_register(vm, port, 8, serial_io, s);
	if (err) {
		log_err("serial: cannot claim ports %#x-%#x: %s", port, port + 7, strerror(-err));
		serial_destroy(s);
	}
	return err;
}

int serial_init_mmio(struct serial *s, struct vm *vm, uint64_t addr, unsigned irq, int out_fd)
{
	int err = serial_setup(s, vm, irq, out_fd);

	if (err)
		return err;
	err = vm_mmio_register(vm, addr, 8, serial_io, s);
	if (err) {
		log_err("serial: cannot claim MMIO %#llx-%#llx: %s", (unsigned long long)addr,
			(unsigned long long)addr + 7, strerror(-err));
		serial_destroy(s);
	}
	return err;
}

void serial_destroy(struct serial *s)
{
	if (s->room_fd >= 0)
		close(s->room_fd);
	s->room_fd = -1;
	pthread_mutex_destroy(&s->lock);
}

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < SERIAL_FIFO_SIZE)
		serial_push_rx(s, buf[n++]);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_room(struct serial *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = SERIAL_FIFO_SIZE - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return room;
}

void serial_set_output(struct serial *s, int out_fd)
{
	pthread_mutex_lock(&s->lock);
	s->out_fd = out_fd;
	pthread_mutex_unlock(&s->lock);
}
