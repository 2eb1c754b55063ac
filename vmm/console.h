/*
 * The host side of a guest console (--serial for the 8250, --console for
 * virtio-console): the terminal (raw input, restored on close; Ctrl-A x
 * stops the VM, Ctrl-A Ctrl-A sends Ctrl-A), a file, a Unix socket cvmm
 * listens on (one client at a time), a sink, or no device at all. The main
 * loop polls the fds console_pollfds gives and passes them back to
 * console_handle. The guest-side device is reached through a struct
 * console_sink, so the console does not know which device it feeds.
 */
#ifndef CVMM_CONSOLE_H
#define CVMM_CONSOLE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "cli.h"

struct vm;

/* What a console feeds: the device's input FIFO and where its output goes. */
struct console_sink {
	void *dev;
	/* Queues up to len input bytes; returns how many were taken. */
	size_t (*input)(void *dev, const uint8_t *buf, size_t len);
	/* Bytes input() would take now. */
	size_t (*room)(void *dev);
	/* Sends the device's output to fd from now on (-1: drop it). */
	void (*set_output)(void *dev, int fd);
	/* eventfd the device writes when room() becomes non-zero again. */
	int room_fd;
};

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
	const char *option;   /* "--serial" or "--console", for messages */
	struct console_sink sink;
	bool attached;
	struct vm *vm;
};

/* Opens the backend (creates the file or the listening socket). option
 * names the command-line option in messages. Logs one line on failure and
 * returns -errno. */
int console_open(struct console *c, enum cli_serial mode, const char *path, const char *option);
/* Connects the console to its device and VM; puts the terminal in raw mode. */
int console_attach(struct console *c, const struct console_sink *sink, struct vm *vm);
/* Restores the terminal, closes fds, removes the socket file. */
void console_close(struct console *c);
unsigned console_pollfds(struct console *c, struct pollfd *p);
void console_handle(struct console *c, const struct pollfd *p, unsigned n);

#endif
