/*
 * The host side of the guest's serial console (--serial): the terminal (raw
 * input, restored on close; Ctrl-A x stops the VM, Ctrl-A Ctrl-A sends
 * Ctrl-A), a file, a Unix socket cvmm listens on (one client at a time), a
 * sink, or no UART at all. The main loop polls the fds console_pollfds
 * gives and passes them back to console_handle.
 */
#ifndef CVMM_CONSOLE_H
#define CVMM_CONSOLE_H

#include <poll.h>
#include <stdbool.h>
#include <termios.h>

#include "cvmm/cli.h"

struct serial;
struct vm;

#define CONSOLE_MAX_POLLFDS 2

struct console {
	enum cli_serial mode;
	int in_fd;            /* where guest input comes from, or -1 */
	int out_fd;           /* where guest output goes, or -1 */
	int listen_fd;        /* socket mode */
	const char *socket_path;
	bool raw;
	struct termios saved;
	bool escape;          /* Ctrl-A seen */
	struct serial *uart;
	struct vm *vm;
};

/* Opens the backend (creates the file or the listening socket). Logs one
 * line on failure and returns -errno. */
int console_open(struct console *c, enum cli_serial mode, const char *path);
/* Connects the console to the UART and VM; puts the terminal in raw mode. */
int console_attach(struct console *c, struct serial *uart, struct vm *vm);
/* Restores the terminal, closes fds, removes the socket file. */
void console_close(struct console *c);
unsigned console_pollfds(struct console *c, struct pollfd *p);
void console_handle(struct console *c, const struct pollfd *p, unsigned n);

#endif
