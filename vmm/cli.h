/* cvmm's command line (cloud-hypervisor syntax). */
#ifndef CVMM_CLI_H
#define CVMM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cvmm/devtype.h"

enum cli_action {
	CLI_RUN,            /* boot a guest */
	CLI_HELP,
	CLI_VERSION,
	CLI_CHECK_HOST,
	CLI_BACKEND,        /* a vhost-user back-end (--block-backend, ...) */
};

enum cli_transport { CLI_TRANSPORT_PCI, CLI_TRANSPORT_MMIO };

/* Virtio devices from the device type table (--disk, --net, --rng) at most. */
#define CLI_MAX_DEVICES 16

enum cli_serial { CLI_SERIAL_TTY, CLI_SERIAL_OFF, CLI_SERIAL_NULL, CLI_SERIAL_FILE, CLI_SERIAL_SOCKET };

#define CLI_DEFAULT_CMDLINE "console=ttyS0 reboot=k"
#define CLI_DEFAULT_MEMORY (512ULL << 20)
#define CLI_MIN_MEMORY (2ULL << 20)
#define CLI_MAX_MEMORY (1ULL << 40)

/* One device option: its type and value (pointing into argv). */
struct cli_device {
	const struct devtype *type;
	const char *opts;           /* "" when given without a value */
};

/* Strings point into argv. */
struct cli_config {
	enum cli_action action;
	const char *kernel, *initramfs, *cmdline, *log_file;
	const struct devtype *backend; /* CLI_BACKEND: which */
	const char *backend_opts;   /* its argument */
	unsigned cpus;
	uint64_t mem_size;
	bool mem_shared, mem_hugepages, mem_prefault;
	enum cli_serial serial;
	const char *serial_path;    /* file= or socket= */
	int verbose;                /* number of -v */
	struct cli_device devices[CLI_MAX_DEVICES]; /* in command-line order */
	unsigned ndevices;
	enum cli_transport transport;
	enum cli_serial console;    /* --console: virtio-console host side (default off) */
	const char *console_path;
	const char *dump_dtb;       /* --dump-dtb PATH (arm64), or NULL */
	bool reboot_restart;        /* --on-reboot restart: a guest reset boots the kernel again */
	const char *seccomp;        /* --seccomp value, checked by confine_parse_mode (default "true") */
};

/* Fills c from argv. 0, or -EINVAL with one line in err saying what is
 * wrong (the caller adds how to get help). */
int cli_parse(int argc, char **argv, struct cli_config *c, char *err, size_t errlen);
void cli_usage(FILE *out);

#endif
