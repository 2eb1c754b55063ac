/*
 * vhost-user message codec: reads one message with its fds and validates it
 * against the wire rules of its request type (header, payload size, fd
 * count), so handlers can trust what they get; sends requests and replies.
 * The socket is a connected AF_UNIX stream socket. Functions are not
 * thread-safe per socket: one reader and one writer at a time.
 */
#ifndef CVMM_VU_MSG_H
#define CVMM_VU_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "cvmm/vu_proto.h"

/* Largest payload read; a bigger declared size drops the connection. */
#define VU_MSG_MAX_PAYLOAD 4096
/* How long a message may take, once started, to arrive completely (one
 * deadline for the whole message, not per byte), and how long sending one
 * may take. */
#define VU_MSG_TIMEOUT_MS 5000

struct vu_msg {
	struct vu_hdr hdr;
	union {
		union vu_payload payload;
		uint8_t raw[VU_MSG_MAX_PAYLOAD];
	};
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

/*
 * Reads and validates one front-end request. Returns:
 *  0            m holds a valid request of a known type, with exactly the
 *               fds its rule allows (the caller owns them: vu_msg_close_fds);
 *  -ECONNRESET  the peer closed the connection between messages;
 *  -EBADMSG     framing is intact (m->hdr is valid, the payload was consumed)
 *               but the payload size or the fd count is wrong for the request;
 *  -EOPNOTSUPP  framing is intact, the request type is not one this codec
 *               knows;
 *  -EPROTO      bad header (version, reserved or reply flag), oversized or
 *               truncated message: the stream can no longer be trusted;
 *  other -errno from the socket (-ETIMEDOUT for a stalled message).
 * On every error all received fds are closed and m->nfds is 0.
 */
int vu_msg_recv(int sock, struct vu_msg *m);

/* Reads and validates one back-end request (front-end side of the
 * SET_BACKEND_REQ_FD channel), waiting at most timeout_ms for it to start
 * (-1: forever). Same results as vu_msg_recv; only the requests a front-end
 * acts on are known (CONFIG_CHANGE_MSG), others are -EOPNOTSUPP. */
int vu_msg_recv_backend(int sock, struct vu_msg *m, int timeout_ms);

/* Reads a reply to `request` (REPLY flag set, version 1), waiting at most
 * timeout_ms for it to start (-1: forever). Fds it carries are kept in m
 * (up to VU_MAX_FDS, more is -EPROTO). 0, -ETIMEDOUT, -ECONNRESET, -EPROTO. */
int vu_msg_recv_reply(int sock, uint32_t request, struct vu_msg *m, int timeout_ms);

struct msghdr;

/* Attaches nfds fds (SCM_RIGHTS) to mh, in ctl: zeroed, and at least
 * CMSG_SPACE(sizeof(int) * nfds) bytes, aligned for struct cmsghdr. */
void vu_msg_attach_fds(struct msghdr *mh, void *ctl, const int *fds, unsigned nfds);

/* Sends one message: a header {request, flags, size}, size payload bytes and
 * up to VU_MAX_FDS fds (attached to the first byte), within VU_MSG_TIMEOUT_MS
 * (the socket is never blocked on past that). 0, -ETIMEDOUT or -errno. */
int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, unsigned nfds);

/* Sends the reply to req with the given payload and fds. */
int vu_msg_reply(int sock, const struct vu_msg *req, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds);
/* REPLY_ACK: a u64 reply, 0 for result 0, the positive errno otherwise. */
int vu_msg_ack(int sock, const struct vu_msg *req, int result);

/* Sends a back-end request on the back-end channel and, with need_reply,
 * reads the front-end's ack; timeout_ms bounds the whole exchange, sending
 * included. 0, -EIO (the front-end answered non-zero), -ETIMEDOUT, or a
 * socket error. */
int vu_msg_backend_request(int sock, uint32_t request, const void *payload,
			   uint32_t size, const int *fds, unsigned nfds,
			   bool need_reply, int timeout_ms);

struct sockaddr_un;
/* Fills *sa with the Unix socket address of path: 0, or -ENAMETOOLONG when
 * path does not fit sun_path. */
int vu_unix_addr(const char *path, struct sockaddr_un *sa);
/* Connects a Unix stream socket to path without ever blocking: a peer that
 * listens but does not accept fills its backlog, and a blocking connect
 * would then wait for ever. Returns the connected socket (non-blocking,
 * which the codec's deadlines expect), -EAGAIN when the peer's backlog is
 * full (try again later), or -errno. */
int vu_unix_connect(const char *path);

/* Closes the fds m still holds (entries set to -1 are skipped). */
void vu_msg_close_fds(struct vu_msg *m);
/* Takes fd i out of m: the caller owns it. -1 when there is none. */
int vu_msg_take_fd(struct vu_msg *m, unsigned i);

/* Request name for logs ("SET_MEM_TABLE"), "UNKNOWN" for others. */
const char *vu_msg_request_name(uint32_t request);

#endif
