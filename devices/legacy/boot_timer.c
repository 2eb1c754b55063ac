#include <string.h>

#include "cvmm/legacy.h"
#include "cvmm/log.h"
#include "cvmm/vm.h"

static void boot_timer_io(void *opaque, uint64_t offset, uint8_t *data, unsigned len, bool is_write)
{
	struct boot_timer *t = opaque;

	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (data[0] == BOOT_TIMER_MARKER_BOOTED)
		log_info("boot-timer: guest booted %.3f ms after start", vm_ms_since_start(t->vm));
	else
		log_info("boot-timer: marker %u at %.3f ms after start", data[0], vm_ms_since_start(t->vm));
}

int boot_timer_init(struct boot_timer *t, struct vm *vm)
{
	int err;

	t->vm = vm;
	err = vm_pio_register(vm, BOOT_TIMER_PORT, 1, boot_timer_io, t);
	if (err)
		log_err("boot timer: cannot claim port %#x: %s", BOOT_TIMER_PORT, strerror(-err));
	return err;
}
