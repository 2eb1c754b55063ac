/*
 * Fuzz target: virtio-net over fuzzed guest memory: TX header checks and
 * frame gathering, RX placement (MRG_RXBUF, the stash) of frames the "tap"
 * delivers, and the control queue (MQ pairs), through the ring walker. Two
 * queue pairs and a control queue; SOCK_SEQPACKET socketpairs stand in for
 * the tap queues. The device is made once and reset before every input, as
 * a driver would.
 *
 * Input: u64 feature mask, u8 frame count
 * (up to 4), that many {u16 len, len bytes} frames (header included) for
 * the tap to deliver (to pair i % 2), then guest memory: rings of RX0, TX0,
 * RX1, TX1 and control at 0, 0x400, ... 0x1000.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/virtio_net_dev.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"
#include "lib/fuzz_ring.h"

#define NET_FUZZ_PAIRS 2
#define NET_FUZZ_FRAMES 4

static struct net_dev net_fuzz_dev;
static int net_fuzz_peer[NET_FUZZ_PAIRS]; /* the host stack's ends */
static struct fuzz_ring_mem net_fuzz_mem;
static uint8_t net_fuzz_buf[NET_MAX_FRAME];

static void net_fuzz_cleanup(void)
{
	net_dev_destroy(&net_fuzz_dev);
	for (unsigned i = 0; i < NET_FUZZ_PAIRS; i++)
		close(net_fuzz_peer[i]);
	fuzz_ring_mem_destroy(&net_fuzz_mem);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	int fds[NET_FUZZ_PAIRS];
	struct net_dev_config cfg = { .fds = fds, .num_pairs = NET_FUZZ_PAIRS,
				      .queue_size = FUZZ_RING_SIZE, .mac = mac, .mtu = 1500 };

	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	for (unsigned i = 0; i < NET_FUZZ_PAIRS; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
			abort();
		fds[i] = sv[0];
		net_fuzz_peer[i] = sv[1];
	}
	if (fuzz_ring_mem_init(&net_fuzz_mem) || net_dev_init(&net_fuzz_dev, &cfg) ||
	    net_dev_enable_ctrl(&net_fuzz_dev))
		abort();
	atexit(net_fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint64_t features = fuzz_input_u64(&in);
	unsigned nframes = fuzz_input_u8(&in) % (NET_FUZZ_FRAMES + 1);
	struct vdev *dev = &net_fuzz_dev.vdev;
	const uint8_t *frames[NET_FUZZ_FRAMES];
	size_t frame_len[NET_FUZZ_FRAMES];

	for (unsigned i = 0; i < nframes; i++)
		frames[i] = fuzz_input_take(&in, fuzz_input_u16(&in), &frame_len[i]);
	/* What the last input sent or left undelivered must not steer this
	 * one (the workers are stopped: nobody else reads these). */
	for (unsigned i = 0; i < NET_FUZZ_PAIRS; i++) {
		while (read(net_fuzz_peer[i], net_fuzz_buf, sizeof(net_fuzz_buf)) >= 0)
			;
		while (read(net_fuzz_dev.pairs[i].tap_fd, net_fuzz_buf, sizeof(net_fuzz_buf)) >= 0)
			;
	}
	if (fuzz_ring_attach(dev, &net_fuzz_mem, features, in.data, in.size))
		return 0;
	/* The frames arrive once the workers are stopped: only this thread reads them. */
	for (unsigned i = 0; i < nframes; i++)
		if (write(net_fuzz_peer[i % NET_FUZZ_PAIRS], frames[i], frame_len[i]) < 0)
			break;
	/* Control first (it switches pairs on), then each pair's TX and RX,
	 * then RX again as after a kick with the frames still pending. */
	dev->ops->handle_queue(dev, 2 * NET_FUZZ_PAIRS);
	for (unsigned q = 0; q < 2 * NET_FUZZ_PAIRS; q++)
		dev->ops->handle_queue(dev, q ^ 1);
	for (unsigned p = 0; p < NET_FUZZ_PAIRS; p++)
		dev->ops->handle_queue(dev, 2 * p);
	return 0;
}
