#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm/iobus.h"
#include "cvmm/legacy.h"
#include "cvmm/serial.h"
#include "check_run.h"

static uint8_t legacy_rd(struct serial *s, unsigned reg)
{
	uint8_t v = 0xaa;

	serial_io(s, reg, &v, 1, false);
	return v;
}

static void legacy_wr(struct serial *s, unsigned reg, uint8_t v)
{
	serial_io(s, reg, &v, 1, true);
}

START_TEST(serial_transmit_and_registers)
{
	struct serial s;
	int p[2];
	char buf[8] = { 0 };

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	ck_assert_int_eq(serial_init(&s, NULL, SERIAL_COM1_PORT, 4, p[1]), 0);
	legacy_wr(&s, 0, 'h');
	legacy_wr(&s, 0, 'i');
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "hi");
	/* Transmitter always empty, no data. */
	ck_assert_uint_eq(legacy_rd(&s, 5), 0x60);
	/* DLAB: divisor latch instead of THR/IER, nothing transmitted. */
	legacy_wr(&s, 3, 0x83);
	legacy_wr(&s, 0, 0x01);
	legacy_wr(&s, 1, 0x02);
	ck_assert_uint_eq(legacy_rd(&s, 0), 0x01);
	ck_assert_uint_eq(legacy_rd(&s, 1), 0x02);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), -1);
	legacy_wr(&s, 3, 0x03);
	ck_assert_uint_eq(legacy_rd(&s, 3), 0x03);
	ck_assert_uint_eq(legacy_rd(&s, 1), 0x00);
	legacy_wr(&s, 7, 0x5a);
	ck_assert_uint_eq(legacy_rd(&s, 7), 0x5a);
	/* FIFO enabled shows in IIR's top bits (a 16550A). */
	legacy_wr(&s, 2, 0x07);
	ck_assert_uint_eq(legacy_rd(&s, 2), 0xc1);
	serial_destroy(&s);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(serial_interrupt_identification)
{
	struct serial s;
	uint8_t in[20];

	ck_assert_int_eq(serial_init(&s, NULL, SERIAL_COM1_PORT, 4, -1), 0);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x01);
	/* Enabling THRE raises it; reading IIR acknowledges it; a write raises it again. */
	legacy_wr(&s, 4, 0x08);  /* OUT2: let the UART drive its IRQ line */
	legacy_wr(&s, 1, 0x02);
	ck_assert(s.irq_level);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x02);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x01);
	ck_assert(!s.irq_level);
	legacy_wr(&s, 0, 'x');
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x02);
	/* Received data outranks THRE and is only raised with IER.RDA. */
	memset(in, 'a', sizeof(in));
	in[0] = 'b';
	ck_assert_uint_eq(serial_input(&s, in, sizeof(in)), SERIAL_FIFO_SIZE);
	ck_assert_uint_eq(serial_rx_room(&s), 0);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x01);
	legacy_wr(&s, 1, 0x01);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x04);
	ck_assert_uint_eq(legacy_rd(&s, 5) & 1, 1);
	ck_assert_uint_eq(legacy_rd(&s, 0), 'b');
	ck_assert_uint_eq(serial_rx_room(&s), 1);
	for (unsigned i = 1; i < SERIAL_FIFO_SIZE; i++)
		ck_assert_uint_eq(legacy_rd(&s, 0), 'a');
	ck_assert_uint_eq(legacy_rd(&s, 5) & 1, 0);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x01);
	/* Without OUT2 the line stays low (how a PC gates the UART's IRQ). */
	legacy_wr(&s, 4, 0x00);
	serial_input(&s, in, 1);
	ck_assert_uint_eq(legacy_rd(&s, 2) & 0x0f, 0x04);
	ck_assert(!s.irq_level);
	serial_destroy(&s);
}
END_TEST

/* The console input loop waits on room_fd while the FIFO is full; clearing
 * the FIFO (FCR bit 1) must wake it like reading a byte does. */
START_TEST(serial_fifo_clear_wakes_input)
{
	struct serial s;
	uint8_t in[SERIAL_FIFO_SIZE] = { 0 };
	eventfd_t v;

	ck_assert_int_eq(serial_init(&s, NULL, SERIAL_COM1_PORT, 4, -1), 0);
	ck_assert_uint_eq(serial_input(&s, in, sizeof(in)), SERIAL_FIFO_SIZE);
	ck_assert_uint_eq(serial_rx_room(&s), 0);
	ck_assert_int_eq(eventfd_read(s.room_fd, &v), -1); /* nothing yet */
	legacy_wr(&s, 2, 0x03); /* FIFO on, clear RX */
	ck_assert_uint_eq(serial_rx_room(&s), SERIAL_FIFO_SIZE);
	ck_assert_int_eq(eventfd_read(s.room_fd, &v), 0);
	serial_destroy(&s);
}
END_TEST

START_TEST(serial_loopback)
{
	struct serial s;
	int p[2];
	char c;

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	ck_assert_int_eq(serial_init(&s, NULL, SERIAL_COM1_PORT, 4, p[1]), 0);
	legacy_wr(&s, 4, 0x10 | 0x0f);
	ck_assert_uint_eq(legacy_rd(&s, 6) & 0xf0, 0xf0);
	legacy_wr(&s, 4, 0x10 | 0x01);
	ck_assert_uint_eq(legacy_rd(&s, 6) & 0xf0, 0x20);
	legacy_wr(&s, 0, 'L');
	ck_assert_int_eq(read(p[0], &c, 1), -1);
	ck_assert_uint_eq(legacy_rd(&s, 0), 'L');
	legacy_wr(&s, 4, 0x08);
	ck_assert_uint_eq(legacy_rd(&s, 6), 0xb0);
	serial_destroy(&s);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(i8042_commands)
{
	struct i8042 k;
	uint8_t v;

	ck_assert_int_eq(i8042_init(&k, NULL), 0);
	i8042_cmd_io(&k, 0, &v, 1, false);
	ck_assert_uint_eq(v & 1, 0);
	v = 0xaa;
	i8042_cmd_io(&k, 0, &v, 1, true);
	i8042_cmd_io(&k, 0, &v, 1, false);
	ck_assert_uint_eq(v & 1, 1);
	i8042_data_io(&k, 0, &v, 1, false);
	ck_assert_uint_eq(v, 0x55);
	v = 0x60;
	i8042_cmd_io(&k, 0, &v, 1, true);
	v = 0x47;
	i8042_data_io(&k, 0, &v, 1, true);
	v = 0x20;
	i8042_cmd_io(&k, 0, &v, 1, true);
	i8042_data_io(&k, 0, &v, 1, false);
	ck_assert_uint_eq(v, 0x47);
	i8042_destroy(&k);
}
END_TEST

START_TEST(acpi_pm_control)
{
	struct acpi_pm pm;
	uint8_t d[2];

	ck_assert_int_eq(acpi_pm_init(&pm, NULL), 0);
	acpi_pm_cnt_io(&pm, 0, d, 2, false);
	ck_assert_uint_eq(d[0] & 1, 1);  /* SCI_EN: always in ACPI mode */
	/* SLP_TYP is kept, SLP_EN is write-only (reads 0), SCI_EN stays set. */
	d[0] = 0x00;
	d[1] = (5 << 2) | 0x20;
	acpi_pm_cnt_io(&pm, 0, d, 2, true);
	acpi_pm_cnt_io(&pm, 0, d, 2, false);
	ck_assert_uint_eq(d[1], 5 << 2);
	ck_assert_uint_eq(d[0] & 1, 1);
	/* A byte write to the high half touches only that half. */
	d[0] = 3 << 2;
	acpi_pm_cnt_io(&pm, 1, d, 1, true);
	acpi_pm_cnt_io(&pm, 0, d, 2, false);
	ck_assert_uint_eq(d[1], 3 << 2);
	ck_assert_uint_eq(d[0], 1);
	acpi_pm_destroy(&pm);
}
END_TEST

static unsigned legacy_hits;
static uint64_t legacy_last_off;

static void legacy_handler(void *opaque, uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	(void)opaque;
	legacy_hits++;
	legacy_last_off = off;
	if (!is_write)
		memset(data, 0x11, len);
}

START_TEST(iobus_ranges)
{
	struct iobus bus;
	uint8_t d[4];

	iobus_init(&bus, "test");
	ck_assert_int_eq(iobus_register(&bus, 0x100, 8, legacy_handler, NULL), 0);
	ck_assert_int_eq(iobus_register(&bus, 0x104, 8, legacy_handler, NULL), -EEXIST);
	ck_assert_int_eq(iobus_register(&bus, 0xfc, 4, legacy_handler, NULL), 0);
	ck_assert_int_eq(iobus_register(&bus, 0x200, 0, legacy_handler, NULL), -EINVAL);
	ck_assert_int_eq(iobus_register(&bus, UINT64_MAX, 2, legacy_handler, NULL), -EINVAL);
	ck_assert(iobus_dispatch(&bus, 0x106, d, 2, false));
	ck_assert_uint_eq(legacy_last_off, 6);
	ck_assert_uint_eq(d[0], 0x11);
	/* An access that runs past the end of its range is not the device's. */
	ck_assert(!iobus_dispatch(&bus, 0x106, d, 4, false));
	ck_assert_uint_eq(d[3], 0xff);
	ck_assert(!iobus_dispatch(&bus, 0x300, d, 1, true));
	ck_assert_int_eq(iobus_unregister(&bus, 0x100), 0);
	ck_assert(!iobus_dispatch(&bus, 0x100, d, 1, false));
	ck_assert_int_eq(iobus_unregister(&bus, 0x100), -ENOENT);
	ck_assert_uint_eq(legacy_hits, 1);
	iobus_destroy(&bus);
}
END_TEST

static Suite *legacy_suite(void)
{
	Suite *s = suite_create("legacy");
	TCase *tc = tcase_create("devices");

	tcase_add_test(tc, serial_transmit_and_registers);
	tcase_add_test(tc, serial_interrupt_identification);
	tcase_add_test(tc, serial_fifo_clear_wakes_input);
	tcase_add_test(tc, serial_loopback);
	tcase_add_test(tc, i8042_commands);
	tcase_add_test(tc, acpi_pm_control);
	tcase_add_test(tc, iobus_ranges);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(legacy_suite());
}
