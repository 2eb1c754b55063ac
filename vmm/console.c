#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "console.h"
#include "cvmm/log.h"
#include "cvmm/vm.h"

#define CONSOLE_CTRL_A 0x01

static int console_listen(struct console *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("%s socket=%s: path too long (at most %zu bytes)", c->option, path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0)
		return -errno;
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		log_err("%s socket=%s: cannot create the socket: %s%s", c->option, path, strerror(-err),
			err == -EADDRINUSE ? " (remove the stale file or choose another path)" : "");
		return err;
	}
	c->socket_path = path;
	if (listen(c->listen_fd, 1) < 0)
		return -errno;
	return 0;
}

int console_open(struct console *c, enum cli_serial mode, const char *path, const char *option)
{
	int err = 0;

	memset(c, 0, sizeof(*c));
	c->mode = mode;
	c->option = option;
	c->in_fd = c->out_fd = c->listen_fd = -1;
	switch (mode) {
	case CLI_SERIAL_TTY:
		c->in_fd = STDIN_FILENO;
		c->out_fd = STDOUT_FILENO;
		break;
	case CLI_SERIAL_FILE:
		c->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			err = -errno;
			log_err("%s file=%s: cannot open: %s", option, path, strerror(-err));
		}
		break;
	case CLI_SERIAL_SOCKET:
		err = console_listen(c, path);
		break;
	case CLI_SERIAL_OFF:
	case CLI_SERIAL_NULL:
		break;
	}
	if (err)
		console_close(c);
	return err;
}

int console_attach(struct console *c, const struct console_sink *sink, struct vm *vm)
{
	struct termios t;

	c->sink = *sink;
	c->attached = true;
	c->vm = vm;
	if (c->mode != CLI_SERIAL_TTY || !isatty(c->in_fd))
		return 0;
	/* A background job touching its terminal would be stopped (SIGTTOU,
	 * SIGTTIN): it gets no input instead. A terminal that is no one's
	 * controlling terminal (tcgetpgrp fails, e.g. /dev/console read by an
	 * init) stops no one, so it is used. */
	pid_t foreground = tcgetpgrp(c->in_fd);
	if (foreground >= 0 && foreground != getpgrp()) {
		c->in_fd = -1;
		return 0;
	}
	if (tcgetattr(c->in_fd, &c->saved) < 0)
		return 0;
	/* Raw input: keys (Ctrl-C too) go to the guest. Output processing stays
	 * as it was, so a guest printing bare \n still starts new lines. */
	t = c->saved;
	t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(c->in_fd, TCSANOW, &t) < 0) {
		log_warn("cannot put the terminal in raw mode: %s", strerror(errno));
		return 0;
	}
	c->raw = true;
	return 0;
}

static void console_drop_client(struct console *c)
{
	if (c->attached)
		c->sink.set_output(c->sink.dev, -1);
	close(c->in_fd);
	c->in_fd = c->out_fd = -1;
}

void console_close(struct console *c)
{
	if (c->raw)
		tcsetattr(c->in_fd, TCSANOW, &c->saved);
	c->raw = false;
	if (c->mode == CLI_SERIAL_SOCKET && c->in_fd >= 0)
		console_drop_client(c);
	if (c->mode == CLI_SERIAL_FILE && c->out_fd >= 0)
		close(c->out_fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->socket_path)
		unlink(c->socket_path);
	c->socket_path = NULL;
	c->in_fd = c->out_fd = c->listen_fd = -1;
}

unsigned console_pollfds(struct console *c, struct pollfd *p)
{
	unsigned n = 0;

	if (!c->attached)
		return 0;
	if (c->listen_fd >= 0 && c->in_fd < 0)
		p[n++] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	if (c->in_fd >= 0) {
		/* Wait for the guest to drain a full FIFO before reading more. */
		if (c->sink.room(c->sink.dev))
			p[n++] = (struct pollfd){ .fd = c->in_fd, .events = POLLIN };
		else
			p[n++] = (struct pollfd){ .fd = c->sink.room_fd, .events = POLLIN };
	}
	return n;
}

/* Terminal input with the Ctrl-A escape; returns bytes left for the guest. */
static size_t console_filter(struct console *c, uint8_t *buf, size_t len)
{
	size_t out = 0;

	if (!c->raw)
		return len;
	for (size_t i = 0; i < len; i++) {
		if (c->escape) {
			c->escape = false;
			if (buf[i] == 'x') {
				log_info("Ctrl-A x: stopping the VM");
				vm_request_exit_signal(c->vm, SIGINT);
				return 0;
			}
			if (buf[i] != CONSOLE_CTRL_A)
				continue;
		} else if (buf[i] == CONSOLE_CTRL_A) {
			c->escape = true;
			continue;
		}
		buf[out++] = buf[i];
	}
	return out;
}

#define CONSOLE_READ_MAX 4096

static void console_read_input(struct console *c)
{
	uint8_t buf[CONSOLE_READ_MAX];
	size_t room = c->sink.room(c->sink.dev);
	ssize_t n;

	if (!room)
		return;
	n = read(c->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* End of input: a socket client left, or stdin closed. */
		if (c->mode == CLI_SERIAL_SOCKET)
			console_drop_client(c);
		else
			c->in_fd = -1;
		return;
	}
	c->sink.input(c->sink.dev, buf, console_filter(c, buf, (size_t)n));
}

void console_handle(struct console *c, const struct pollfd *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		if (p[i].fd == c->listen_fd) {
			int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd >= 0) {
				c->in_fd = c->out_fd = fd;
				c->sink.set_output(c->sink.dev, fd);
			}
		} else if (p[i].fd == c->sink.room_fd) {
			eventfd_t v;

			if (eventfd_read(c->sink.room_fd, &v) < 0 && errno != EAGAIN)
				log_warn_ratelimited("console: eventfd: %s", strerror(errno));
		} else if (p[i].fd == c->in_fd) {
			console_read_input(c);
		}
	}
}
