/* virtio-net from inside: send one broadcast frame of EtherType 0x88b5
 * (local experimental) carrying "cvmm-guest seed=N", then wait for a frame
 * carrying "cvmm-host seed=N" (the host test answers through the tap). With
 * MQ and a control queue, every pair is switched on (VQ_PAIRS_SET), the
 * frame leaves on the last pair and the answer may come on any. */
#include "vio.h"

#define VIO_NET_F_CTRL_VQ 17
#define VIO_NET_F_MAC 5
#define VIO_NET_F_MQ 22
#define VIO_NET_HDR 12
#define VIO_NET_ETHERTYPE 0x88b5
#define VIO_NET_MAX_PAIRS 4
#define VIO_NET_RX_BUFS 4
#define VIO_NET_BUF 2048
#define VIO_NET_FRAME 60

static uint8_t vio_net_tx[VIO_NET_HDR + VIO_NET_FRAME];
static uint8_t vio_net_rx[VIO_NET_MAX_PAIRS][VIO_NET_RX_BUFS][VIO_NET_BUF];
static struct vio_queue vio_net_rxq[VIO_NET_MAX_PAIRS], vio_net_txq[VIO_NET_MAX_PAIRS];

/* Switches pairs on through the control queue at index ctrl. */
static int vio_net_set_pairs(struct vio_dev *d, uint16_t ctrl, uint16_t pairs)
{
	static uint8_t cmd[4], ack;
	struct vio_buf bufs[2] = { { cmd, 4, false }, { &ack, 1, true } };
	struct vio_queue q;

	cmd[0] = 4; /* VIRTIO_NET_CTRL_MQ */
	cmd[1] = 0; /* VQ_PAIRS_SET */
	cmd[2] = (uint8_t)pairs;
	cmd[3] = (uint8_t)(pairs >> 8);
	ack = 0xff;
	if (vio_queue_init(d, &q, ctrl))
		return -1;
	vio_driver_ok(d);
	return vio_request(d, &q, bufs, 2) == 1 && ack == 0 ? 0 : -1;
}

/* The host's answer comes from a process on the host, which a loaded
 * machine may not run for a while: wait for it by the clock (the ACPI PM
 * timer cvmm provides at 0x608, 3.579545 MHz, 32 bits), not by a count of
 * polls, which passed in about a second. */
#define VIO_NET_PM_TMR		0x608
#define VIO_NET_WAIT_TICKS	(10u * 3579545u)

/* Takes the next used RX buffer of any pair: its length, with pair and buffer. */
static int64_t vio_net_receive(unsigned pairs, unsigned *pair, uint16_t *id)
{
	uint32_t start = tg_inl(VIO_NET_PM_TMR);

	for (unsigned i = 0; (i & 1023) || tg_inl(VIO_NET_PM_TMR) - start < VIO_NET_WAIT_TICKS; i++) {
		for (unsigned p = 0; p < pairs; p++) {
			int64_t len = vio_poll(&vio_net_rxq[p], id);

			if (len >= 0) {
				*pair = p;
				return *id < VIO_NET_RX_BUFS ? len : -1;
			}
		}
		tg_pause();
	}
	return -1;
}

int vio_check_net(struct tg *t, struct vio_dev *d)
{
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 }, *frame = vio_net_tx + VIO_NET_HDR;
	uint16_t max_pairs = 1, pairs = 1, id;
	char want[32];
	unsigned wlen, pair;
	struct vio_buf b;
	int64_t len;

	if (vio_init(d, 1ULL << VIO_NET_F_MAC | 1ULL << VIO_NET_F_MQ | 1ULL << VIO_NET_F_CTRL_VQ))
		goto refused;
	if (d->features & (1ULL << VIO_NET_F_MAC))
		vio_config_read(d, 0, mac, 6);
	if ((d->features & (1ULL << VIO_NET_F_MQ)) && (d->features & (1ULL << VIO_NET_F_CTRL_VQ))) {
		vio_config_read(d, 8, &max_pairs, 2);
		pairs = max_pairs < VIO_NET_MAX_PAIRS ? max_pairs : VIO_NET_MAX_PAIRS;
	}
	for (unsigned p = 0; p < pairs; p++)
		if (vio_queue_init(d, &vio_net_rxq[p], (uint16_t)(2 * p)) ||
		    vio_queue_init(d, &vio_net_txq[p], (uint16_t)(2 * p + 1)))
			goto refused;
	if (pairs > 1 && vio_net_set_pairs(d, (uint16_t)(2 * max_pairs), pairs)) {
		tg_printf("TG: FAIL virtio-net %s: the device refused %u pairs\n", vio_kind_name(d), pairs);
		return -1;
	}
	vio_driver_ok(d);
	for (unsigned p = 0; p < pairs; p++) {
		for (unsigned i = 0; i < VIO_NET_RX_BUFS; i++) {
			b = (struct vio_buf){ vio_net_rx[p][i], VIO_NET_BUF, true };
			vio_offer(&vio_net_rxq[p], &b, 1);
		}
		vio_kick(d, &vio_net_rxq[p]);
	}

	memset(vio_net_tx, 0, sizeof(vio_net_tx));
	memset(frame, 0xff, 6);
	memcpy(frame + 6, mac, 6);
	frame[12] = VIO_NET_ETHERTYPE >> 8;
	frame[13] = VIO_NET_ETHERTYPE & 0xff;
	vio_seed_message((char *)frame + 14, "cvmm-guest", t->seed, false);
	b = (struct vio_buf){ vio_net_tx, sizeof(vio_net_tx), false };
	if (vio_request(d, &vio_net_txq[pairs - 1], &b, 1) < 0) {
		tg_printf("TG: FAIL virtio-net %s: the transmitted frame was not returned\n", vio_kind_name(d));
		return -1;
	}
	wlen = vio_seed_message(want, "cvmm-host", t->seed, false);
	/* Frames other than the answer (IPv6 router solicitations, ...) may come first. */
	for (unsigned tries = 0; tries < 16; tries++) {
		const uint8_t *f;

		len = vio_net_receive(pairs, &pair, &id);
		if (len < 0) {
			tg_printf("TG: FAIL virtio-net %s: no answer from the host\n", vio_kind_name(d));
			return -1;
		}
		f = vio_net_rx[pair][id] + VIO_NET_HDR;
		if (len >= VIO_NET_HDR + 14 + wlen && !memcmp(f, mac, 6) &&
		    f[12] == VIO_NET_ETHERTYPE >> 8 && f[13] == (VIO_NET_ETHERTYPE & 0xff) &&
		    !memcmp(f + 14, want, wlen)) {
			tg_printf("TG: virtio-net %s mac=%x:%x:%x:%x:%x:%x pairs=%u tx+rx ok\n", vio_kind_name(d),
				  mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], pairs);
			return 0;
		}
		/* Not the answer: the same descriptor goes back. (Offering it
		 * anew took the next free descriptor, whose id, past the
		 * receive buffers, then read as "no answer".) */
		vio_reoffer(&vio_net_rxq[pair], id);
		vio_kick(d, &vio_net_rxq[pair]);
	}
	tg_printf("TG: FAIL virtio-net %s: the host's answer never came\n", vio_kind_name(d));
	return -1;
refused:
	tg_printf("TG: FAIL virtio-net %s: setup refused (status 0x%x)\n", vio_kind_name(d), vio_status(d));
	return -1;
}
