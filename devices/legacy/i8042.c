#include <errno.h>
#include <string.h>

#include "cvmm/legacy.h"
#include "cvmm/log.h"
#include "cvmm/vm.h"

#define I8042_STS_OBF		0x01
#define I8042_STS_SYS		0x04
#define I8042_STS_CMD		0x08

#define I8042_CMD_READ_CTR	0x20
#define I8042_CMD_WRITE_CTR	0x60
#define I8042_CMD_AUX_TEST	0xa9
#define I8042_CMD_SELF_TEST	0xaa
#define I8042_CMD_KBD_TEST	0xab
#define I8042_CMD_WRITE_OUTPORT	0xd1
#define I8042_CMD_RESET		0xfe

static void i8042_reply(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

static void i8042_request_system_reset(struct i8042 *k, const char *how)
{
	if (k->vm)
		vm_request_exit(k->vm, VM_EXIT_RESET, "guest reset through the i8042 (%s)", how);
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case I8042_CMD_READ_CTR:
		i8042_reply(k, k->ctr);
		break;
	case I8042_CMD_WRITE_CTR:
	case I8042_CMD_WRITE_OUTPORT:
		k->pending = cmd;
		break;
	case I8042_CMD_SELF_TEST:
		i8042_reply(k, 0x55);
		break;
	case I8042_CMD_AUX_TEST:
	case I8042_CMD_KBD_TEST:
		i8042_reply(k, 0x00);
		break;
	case I8042_CMD_RESET:
		i8042_request_system_reset(k, "command 0xfe to port 0x64");
		break;
	default:
		/* Port enables/disables and the like: no ports are attached. */
		break;
	}
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct i8042 *k = opaque;

	(void)offset;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		i8042_command(k, data[0]);
	} else {
		memset(data, 0, len);
		data[0] = I8042_STS_SYS | (k->out_full ? I8042_STS_OBF : 0);
	}
	pthread_mutex_unlock(&k->lock);
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct i8042 *k = opaque;

	(void)offset;
	pthread_mutex_lock(&k->lock);
	if (!is_write) {
		memset(data, 0, len);
		data[0] = k->out;
		k->out_full = false;
	} else if (k->pending == I8042_CMD_WRITE_CTR) {
		k->ctr = data[0];
		k->pending = 0;
	} else if (k->pending == I8042_CMD_WRITE_OUTPORT) {
		k->pending = 0;
		/* Output port bit 0 is the CPU reset line (active low). */
		if (!(data[0] & 1))
			i8042_request_system_reset(k, "output port write");
	}
	pthread_mutex_unlock(&k->lock);
}

#define I8042_CTR_RESET 0x30  /* both ports' clocks disabled, no interrupts */

int i8042_init(struct i8042 *k, struct vm *vm)
{
	int err;

	memset(k, 0, sizeof(*k));
	k->vm = vm;
	k->ctr = I8042_CTR_RESET;
	pthread_mutex_init(&k->lock, NULL);
	if (!vm)
		return 0;
	err = vm_pio_register(vm, I8042_DATA_PORT, 1, i8042_data_io, k);
	if (!err)
		err = vm_pio_register(vm, I8042_CMD_PORT, 1, i8042_cmd_io, k);
	if (err) {
		log_err("i8042: cannot claim ports 0x60/0x64: %s", strerror(-err));
		pthread_mutex_destroy(&k->lock);
	}
	return err;
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	k->ctr = I8042_CTR_RESET;
	k->out = 0;
	k->out_full = false;
	k->pending = 0;
	pthread_mutex_unlock(&k->lock);
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}
