/* virtio-net from inside: send one broadcast frame of EtherType 0x88b5
 * (local experimental) carrying "cvmm-guest seed=N", then wait for a frame
 * carrying "cvmm-host seed=N" (the host test answers through the tap). */
#include "vio.h"

#define VIO_NET_F_MAC 5
#define VIO_NET_HDR 12
#define VIO_NET_ETHERTYPE 0x88b5
#define VIO_NET_RX_BUFS 4
#define VIO_NET_BUF 2048
#define VIO_NET_FRAME 60

static uint8_t vio_net_tx[VIO_NET_HDR + VIO_NET_FRAME];
static uint8_t vio_net_rx[VIO_NET_RX_BUFS][VIO_NET_BUF];

int vio_check_net(struct tg *t, struct vio_dev *d)
{
	struct vio_queue rxq, txq;
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 }, *frame = vio_net_tx + VIO_NET_HDR;
	char want[32];
	unsigned wlen;
	struct vio_buf b;
	uint16_t id;
	int64_t len;

	if (vio_init(d, 1ULL << VIO_NET_F_MAC) || vio_queue_init(d, &rxq, 0) || vio_queue_init(d, &txq, 1)) {
		tg_printf("TG: FAIL virtio-net %s: setup refused (status 0x%x)\n", vio_kind_name(d), vio_status(d));
		return -1;
	}
	if (d->features & (1ULL << VIO_NET_F_MAC))
		vio_config_read(d, 0, mac, 6);
	vio_driver_ok(d);
	for (unsigned i = 0; i < VIO_NET_RX_BUFS; i++) {
		b = (struct vio_buf){ vio_net_rx[i], VIO_NET_BUF, true };
		vio_offer(&rxq, &b, 1);
	}
	vio_kick(d, &rxq);

	memset(vio_net_tx, 0, sizeof(vio_net_tx));
	memset(frame, 0xff, 6);
	memcpy(frame + 6, mac, 6);
	frame[12] = VIO_NET_ETHERTYPE >> 8;
	frame[13] = VIO_NET_ETHERTYPE & 0xff;
	vio_seed_message((char *)frame + 14, "cvmm-guest", t->seed, false);
	b = (struct vio_buf){ vio_net_tx, sizeof(vio_net_tx), false };
	if (vio_request(d, &txq, &b, 1) < 0) {
		tg_printf("TG: FAIL virtio-net %s: the transmitted frame was not returned\n", vio_kind_name(d));
		return -1;
	}
	wlen = vio_seed_message(want, "cvmm-host", t->seed, false);
	/* Frames other than the answer (IPv6 router solicitations, ...) may come first. */
	for (unsigned tries = 0; tries < 16; tries++) {
		const uint8_t *f;

		len = vio_wait(&rxq, &id);
		if (len < 0 || id >= VIO_NET_RX_BUFS) {
			tg_printf("TG: FAIL virtio-net %s: no answer from the host\n", vio_kind_name(d));
			return -1;
		}
		f = vio_net_rx[id] + VIO_NET_HDR;
		if (len >= VIO_NET_HDR + 14 + wlen && !memcmp(f, mac, 6) &&
		    f[12] == VIO_NET_ETHERTYPE >> 8 && f[13] == (VIO_NET_ETHERTYPE & 0xff) &&
		    !memcmp(f + 14, want, wlen)) {
			tg_printf("TG: virtio-net %s mac=%x:%x:%x:%x:%x:%x tx+rx ok\n", vio_kind_name(d),
				  mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
			return 0;
		}
		b = (struct vio_buf){ vio_net_rx[id], VIO_NET_BUF, true };
		vio_offer(&rxq, &b, 1);
		vio_kick(d, &rxq);
	}
	tg_printf("TG: FAIL virtio-net %s: the host's answer never came\n", vio_kind_name(d));
	return -1;
}
