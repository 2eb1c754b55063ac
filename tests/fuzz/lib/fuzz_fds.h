/*
 * A hostile vhost-user peer's side of a socket for the vhost-user targets:
 * chunks of fuzz bytes sent with fresh fds attached, and what the other
 * side sends back read and its fds closed.
 *
 * A chunk's spec byte says which fds go with it: spec & 3 is their count
 * (up to 3), bits 2-3, 4-5, 6-7 their kinds (enum fuzz_fd_kind).
 */
#ifndef CVMM_FUZZ_FDS_H
#define CVMM_FUZZ_FDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most fds one run sends: keeps the process's fd count small. */
#define FUZZ_FDS_MAX 48

enum fuzz_fd_kind { FUZZ_FD_EVENTFD, FUZZ_FD_MEMFD, FUZZ_FD_SOCKET, FUZZ_FD_PIPE };

struct fuzz_fds {
	size_t memfd_size;          /* size of each memfd sent */
	const uint8_t *memfd_init;  /* the bytes each memfd sent starts with */
	size_t memfd_init_len;
	int keep[FUZZ_FDS_MAX];     /* other ends of sockets and pipes sent */
	unsigned nkeep, nfds;
};

/* Sets f up to send memfds of memfd_size bytes starting with init. */
void fuzz_fds_init(struct fuzz_fds *f, size_t memfd_size, const uint8_t *init, size_t init_len);
/* Closes the other ends of what was sent. */
void fuzz_fds_destroy(struct fuzz_fds *f);

/* A memfd of size bytes starting with init_len bytes of init; -1 on error. */
int fuzz_memfd(size_t size, const uint8_t *init, size_t init_len);

/* Sends buf on sock in one sendmsg with the fds spec asks for (as many as
 * can be made); false when it could not go (sock < 0, the other end is
 * closed, the buffer is full). An empty chunk sends nothing and is true. */
bool fuzz_fds_send(struct fuzz_fds *f, int sock, uint8_t spec, const uint8_t *buf, size_t len);

/* Reads what waits on sock (if sock >= 0) and closes the fds that came with
 * it, but keeps a socket in *socket_out when socket_out is given (closing
 * the one it held). */
void fuzz_fds_drain(int sock, int *socket_out);

#endif
