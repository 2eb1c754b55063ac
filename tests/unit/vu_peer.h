/*
 * Test helper: a vhost-user front-end on one end of a socket that sends raw
 * messages (any header, any payload, any fds) and reads replies, written
 * independently of the codec under test.
 */
#ifndef CVMM_TESTS_VU_PEER_H
#define CVMM_TESTS_VU_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/vu_proto.h"

struct vu_peer_reply {
	struct vu_hdr hdr;
	uint8_t payload[512];
	int fds[8];
	unsigned nfds;
};

/* A connected AF_UNIX stream pair: fds[0] for the server, fds[1] for the peer. */
int vu_peer_socketpair(int fds[2]);
/* Connects to a listening socket at path, retrying up to timeout_ms. */
int vu_peer_connect(const char *path, int timeout_ms);

/* Sends len raw bytes with fds attached to the first byte. 0 or -errno. */
int vu_peer_send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Sends a header {request, flags, size} followed by size payload bytes. */
int vu_peer_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds);
/* Same with VU_VERSION | NEED_REPLY, then reads the u64 ack: returns the
 * ack value (0 = success), or -1 when no well-formed ack came. */
long long vu_peer_call(int sock, uint32_t request, const void *payload, uint32_t size,
		       const int *fds, unsigned nfds);
/* Sends a request that has its own reply and reads it. 0 or -1. */
int vu_peer_get(int sock, uint32_t request, const void *payload, uint32_t size,
		struct vu_peer_reply *rep);
/* Reads one message (header, payload, fds) within timeout_ms. 0, -1 on EOF
 * or error, -2 on timeout. */
int vu_peer_read(int sock, struct vu_peer_reply *rep, int timeout_ms);
/* True when the other end closed the connection (EOF within timeout_ms). */
bool vu_peer_closed(int sock, int timeout_ms);

/* Number of open fds of this process. */
int vu_peer_count_fds(void);
/* An eventfd, for kick/call. */
int vu_peer_eventfd(void);
/* A memfd of size bytes. */
int vu_peer_memfd(size_t size);

#endif
