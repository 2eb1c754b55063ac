/*
 * Fuzz target: the vhost-user back-end server (codec, handlers, ring set-up,
 * inflight restore) fed a hostile front-end's message stream with fds.
 *
 * Input: u16 n, then n bytes that every memfd the harness makes starts with
 * (guest memory or an inflight region, as the front-end wrote it); then
 * chunks {u8 fds, u16 len, len raw bytes} until the end. Each chunk's bytes
 * go to the socket in one sendmsg with up to 3 fds attached, made fresh by
 * the harness: fds & 3 is their count, bits 2-3, 4-5, 6-7 their kinds
 * (eventfd, 256 KiB memfd, socket, pipe). Headers are in the raw bytes, so
 * the codec's framing is fuzzed too. The stream ends with EOF; the server
 * serves it on this thread (the fuzz device runs no worker) and the
 * harness then reads the replies and closes every fd it got.
 */
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../vhost/backend/vu_server.h"
#include "lib/fuzz_fds.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"
#include "lib/fuzz_vdev.h"

#define VS_MEMFD_SIZE (256u * 1024)
#define VS_MEM_INIT_MAX 4096
/* Keeps the whole stream in the socket's buffer. */
#define VS_STREAM_MAX (48u * 1024)

FUZZ_TARGET_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct fuzz_fds fds;
	struct vu_server_config cfg = { .protocol_features = VU_SERVER_PROTOCOL_FEATURES };
	struct fuzz_vdev dev;
	struct vu_server s;
	const uint8_t *mem_init;
	size_t sent = 0, len, mem_init_len;
	int sv[2], stop_fd;

	mem_init = fuzz_input_take(&in, fuzz_input_u16(&in) % (VS_MEM_INIT_MAX + 1), &mem_init_len);
	fuzz_fds_init(&fds, VS_MEMFD_SIZE, mem_init, mem_init_len);
	if (fuzz_vdev_init(&dev, 2))
		abort();
	if (vu_server_init(&s, &dev.dev, &cfg))
		abort();
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	while (!fuzz_input_empty(&in)) {
		uint8_t spec = fuzz_input_u8(&in);
		const uint8_t *chunk = fuzz_input_take(&in, fuzz_input_u16(&in), &len);

		if (sent + len > VS_STREAM_MAX || !fuzz_fds_send(&fds, sv[1], spec, chunk, len))
			break;
		sent += len;
	}
	shutdown(sv[1], SHUT_WR);
	vu_server_serve_conn(&s, sv[0], stop_fd);
	fuzz_fds_drain(sv[1], NULL);
	close(sv[1]);
	fuzz_fds_destroy(&fds);
	close(stop_fd);
	vu_server_destroy(&s);
	fuzz_vdev_destroy(&dev);
	return 0;
}
