/* The 8250/16550 UART at 0x3f8, polled. */
#include "tg.h"

#define COM1	0x3f8
#define THR	0
#define IER	1
#define FCR	2
#define LCR	3
#define MCR	4
#define LSR	5
#define DLL	0
#define DLM	1

#define LCR_8N1		0x03
#define LCR_DLAB	0x80
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

void tg_serial_init(void)
{
	tg_outb(COM1 + IER, 0);
	tg_outb(COM1 + LCR, LCR_DLAB);
	tg_outb(COM1 + DLL, 1);         /* 115200 baud */
	tg_outb(COM1 + DLM, 0);
	tg_outb(COM1 + LCR, LCR_8N1);
	tg_outb(COM1 + FCR, 0);
	tg_outb(COM1 + MCR, 0x03);      /* DTR RTS */
}

void tg_serial_putc(char c)
{
	/* A bounded wait: a UART that never drains must not hang the guest. */
	for (int i = 0; i < 1000 && !(tg_inb(COM1 + LSR) & LSR_THRE); i++)
		tg_pause();
	tg_outb(COM1 + THR, (uint8_t)c);
}

/* The registers read back what a driver expects: LCR as written, the
 * divisor latch behind DLAB, an idle transmitter. Runs after tg_serial_init,
 * so if the port were dead nobody would see this line anyway — the host
 * side notices the missing output. */
int tg_check_serial(struct tg *t)
{
	uint8_t lcr, lsr, dll;

	(void)t;
	lcr = tg_inb(COM1 + LCR);
	tg_outb(COM1 + LCR, LCR_DLAB | LCR_8N1);
	dll = tg_inb(COM1 + DLL);
	tg_outb(COM1 + LCR, LCR_8N1);
	lsr = tg_inb(COM1 + LSR);
	if (lcr != LCR_8N1 || dll != 1 || !(lsr & LSR_THRE) || lsr == 0xff) {
		tg_printf("TG: FAIL serial: lcr=0x%x dll=0x%x lsr=0x%x\n", lcr, dll, lsr);
		return -1;
	}
	tg_printf("TG: serial lcr=0x%x lsr=0x%x ok\n", lcr, lsr);
	return 0;
}
