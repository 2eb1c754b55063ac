/* virtio-console from inside: write "cvmm-guest seed=N\n" on port 0, then
 * wait for "cvmm-host seed=N\n" (the host test answers on the console's
 * host side). Input may arrive split over several buffers. */
#include "vio.h"

#define VIO_CON_RX_BUFS 4
#define VIO_CON_BUF 64

static uint8_t vio_con_rx[VIO_CON_RX_BUFS][VIO_CON_BUF];
static char vio_con_tx[32];
static char vio_con_line[128];

int vio_check_console(struct tg *t, struct vio_dev *d)
{
	struct vio_queue rxq, txq;
	struct vio_buf b;
	char want[32];
	unsigned wlen, have = 0;
	uint16_t id;
	int64_t len;

	if (vio_init(d, 0) || vio_queue_init(d, &rxq, 0) || vio_queue_init(d, &txq, 1)) {
		tg_printf("TG: FAIL virtio-console %s: setup refused (status 0x%x)\n", vio_kind_name(d), vio_status(d));
		return -1;
	}
	vio_driver_ok(d);
	for (unsigned i = 0; i < VIO_CON_RX_BUFS; i++) {
		b = (struct vio_buf){ vio_con_rx[i], VIO_CON_BUF, true };
		vio_offer(&rxq, &b, 1);
	}
	vio_kick(d, &rxq);
	b = (struct vio_buf){ vio_con_tx, vio_seed_message(vio_con_tx, "cvmm-guest", t->seed, true), false };
	if (vio_request(d, &txq, &b, 1) < 0) {
		tg_printf("TG: FAIL virtio-console %s: output was not taken\n", vio_kind_name(d));
		return -1;
	}
	wlen = vio_seed_message(want, "cvmm-host", t->seed, true);
	while (have < wlen) {
		len = vio_wait(&rxq, &id);
		if (len < 0 || id >= VIO_CON_RX_BUFS || (uint64_t)len > sizeof(vio_con_line) - have) {
			tg_printf("TG: FAIL virtio-console %s: no answer from the host\n", vio_kind_name(d));
			return -1;
		}
		memcpy(vio_con_line + have, vio_con_rx[id], (size_t)len);
		have += (unsigned)len;
		b = (struct vio_buf){ vio_con_rx[id], VIO_CON_BUF, true };
		vio_offer(&rxq, &b, 1);
		vio_kick(d, &rxq);
	}
	if (memcmp(vio_con_line, want, wlen)) {
		tg_printf("TG: FAIL virtio-console %s: the host's answer was garbled\n", vio_kind_name(d));
		return -1;
	}
	tg_printf("TG: virtio-console %s out+in ok\n", vio_kind_name(d));
	return 0;
}
