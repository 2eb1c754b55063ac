/*
 * Fuzz target: virtio-vsock over fuzzed guest memory and hostile host
 * programs: TX header checks, connection state (REQUEST, RW, credit,
 * SHUTDOWN, RST), replies on RX and the event queue, through the ring
 * walker; a host client's "CONNECT <port>" handshake and data on the
 * hybrid-vsock socket; data and hang-ups from a host program. A host program
 * listens on port 1234 (the socket "<uds>_1234" in a temporary directory), so
 * a guest REQUEST there connects; other ports are refused. The device is
 * made once and reset before every input (every connection closed), as a
 * driver would. Its host side, served by its worker in cvmm, runs here on the
 * fuzzer's thread (the watch function the worker would call) with the worker
 * stopped, so the order of events is fixed.
 *
 * Input: u64 feature mask, u16 n and n bytes the host program sends on each
 * connection it accepts, u16 m and m bytes a host client sends after
 * connecting to the hybrid-vsock socket, then guest memory: rings of RX, TX
 * and EVENT at 0, 0x400, 0x800.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock/virtio_vsock.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"
#include "lib/fuzz_ring.h"

#define VSOCK_FUZZ_CID 3
#define VSOCK_FUZZ_PORT 1234
#define VSOCK_FUZZ_HOST_SEND 4096
#define VSOCK_FUZZ_CLIENT_SEND 4096

static char vsock_fuzz_dir[64];
static char vsock_fuzz_uds[108];
static struct sockaddr_un vsock_fuzz_port_addr;
static int vsock_fuzz_listen = -1;
static struct vsock_dev vsock_fuzz_dev;
static uint32_t vsock_fuzz_first_port;  /* the first host port the device allocates */
static struct fuzz_ring_mem vsock_fuzz_mem;

static void vsock_fuzz_cleanup(void)
{
	vsock_dev_destroy(&vsock_fuzz_dev);
	close(vsock_fuzz_listen);
	unlink(vsock_fuzz_port_addr.sun_path);
	rmdir(vsock_fuzz_dir);
	fuzz_ring_mem_destroy(&vsock_fuzz_mem);
}

/* The host program: takes the connections the last input made, sends
 * them the input's bytes and hangs up. */
static void vsock_fuzz_host_serve(const uint8_t *buf, size_t len)
{
	int fd;

	while ((fd = accept4(vsock_fuzz_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (len)
			(void)!send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
	}
}

/* A host client: connects to the hybrid-vsock socket and sends buf. -1
 * when it cannot connect. */
static int vsock_fuzz_client(const uint8_t *buf, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vsock_fuzz_uds);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	if (len)
		(void)!send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return fd;
}

/* What the device's worker does when its host sockets are ready. */
static void vsock_fuzz_host_events(void)
{
	struct worker_watch *w = &vsock_fuzz_dev.host_watch;

	w->fn(w->arg, EPOLLIN);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct vsock_dev_config cfg = { .guest_cid = VSOCK_FUZZ_CID, .uds_path = vsock_fuzz_uds };
	struct sockaddr_un *sa = &vsock_fuzz_port_addr;

	(void)argc;
	(void)argv;
	fuzz_quiet_log();
	if (fuzz_temp_dir(vsock_fuzz_dir, sizeof(vsock_fuzz_dir), "vsock") ||
	    fuzz_ring_mem_init(&vsock_fuzz_mem))
		abort();
	snprintf(vsock_fuzz_uds, sizeof(vsock_fuzz_uds), "%s/v.sock", vsock_fuzz_dir);
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s_%u", vsock_fuzz_uds, VSOCK_FUZZ_PORT);
	vsock_fuzz_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (vsock_fuzz_listen < 0 || bind(vsock_fuzz_listen, (struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    listen(vsock_fuzz_listen, 64) < 0)
		abort();
	if (vsock_dev_init(&vsock_fuzz_dev, &cfg))
		abort();
	vsock_fuzz_first_port = vsock_fuzz_dev.next_port;
	atexit(vsock_fuzz_cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	uint64_t features = fuzz_input_u64(&in);
	size_t host_len;
	const uint8_t *host_buf = fuzz_input_take(&in, fuzz_input_u16(&in) % (VSOCK_FUZZ_HOST_SEND + 1),
						  &host_len);
	size_t client_len;
	const uint8_t *client_buf = fuzz_input_take(&in, fuzz_input_u16(&in) % (VSOCK_FUZZ_CLIENT_SEND + 1),
						    &client_len);
	struct vdev *dev = &vsock_fuzz_dev.vdev;
	int client;

	/* The reset closes the last input's connections: new ones start from nothing. */
	if (fuzz_ring_attach(dev, &vsock_fuzz_mem, features, in.data, in.size))
		return 0;
	vsock_fuzz_host_serve(NULL, 0);
	/* A reset keeps counting host ports (no reuse right after it); every
	 * input starts from the same one, so it can name it. */
	vsock_fuzz_dev.next_port = vsock_fuzz_first_port;
	/* A host client connects and says what it wants before the guest runs. */
	client = vsock_fuzz_client(client_buf, client_len);
	vsock_fuzz_host_events();
	dev->ops->handle_queue(dev, VSOCK_Q_EVENT);
	dev->ops->handle_queue(dev, VSOCK_Q_TX);
	dev->ops->handle_queue(dev, VSOCK_Q_RX);
	/* The host side answers (and hangs up); the guest's queues run again. */
	vsock_fuzz_host_serve(host_buf, host_len);
	vsock_fuzz_host_events();
	dev->ops->handle_queue(dev, VSOCK_Q_TX);
	dev->ops->handle_queue(dev, VSOCK_Q_RX);
	if (client >= 0)
		close(client);
	vsock_fuzz_host_events();
	return 0;
}
