#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cvmm/opts.h"
#include "cvmm/x86_tables.h"

enum cli_opt {
	OPT_KERNEL, OPT_INITRAMFS, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_SERIAL, OPT_LOG_FILE,
	OPT_VERBOSE, OPT_HELP, OPT_VERSION, OPT_CHECK_HOST, OPT_BLOCK_BACKEND, OPT_NET_BACKEND,
	OPT_VSOCK_BACKEND, OPT_DISK, OPT_RNG, OPT_TRANSPORT, OPT_CONSOLE, OPT_NET, OPT_COUNT,
};

static const struct cli_option {
	const char *name;
	bool has_arg;
	bool optional_arg;  /* the value may be left out (then it is "") */
	bool repeatable;
} cli_options[OPT_COUNT] = {
	[OPT_KERNEL] = { "--kernel", true },
	[OPT_INITRAMFS] = { "--initramfs", true },
	[OPT_CMDLINE] = { "--cmdline", true },
	[OPT_CPUS] = { "--cpus", true },
	[OPT_MEMORY] = { "--memory", true },
	[OPT_SERIAL] = { "--serial", true },
	[OPT_LOG_FILE] = { "--log-file", true },
	[OPT_VERBOSE] = { "-v", false },
	[OPT_HELP] = { "--help", false },
	[OPT_VERSION] = { "--version", false },
	[OPT_CHECK_HOST] = { "--check-host", false },
	[OPT_BLOCK_BACKEND] = { "--block-backend", true },
	[OPT_NET_BACKEND] = { "--net-backend", true },
	[OPT_VSOCK_BACKEND] = { "--vsock-backend", true },
	[OPT_DISK] = { "--disk", true, false, true },
	[OPT_RNG] = { "--rng", true, true, false },
	[OPT_TRANSPORT] = { "--transport", true },
	[OPT_CONSOLE] = { "--console", true },
	[OPT_NET] = { "--net", true, false, true },
};

void cli_usage(FILE *out)
{
	fprintf(out,
		"usage: cvmm --kernel PATH [options]       boot a guest\n"
		"       cvmm --check-host                  can this host's KVM run Linux guests?\n"
		"       cvmm --block-backend path=IMG,socket=SOCK[,...]   vhost-user back-ends:\n"
		"       cvmm --net-backend tap=NAME,socket=SOCK[,...]     all options in\n"
		"       cvmm --vsock-backend cid=N,socket=SOCK,uds_path=P README.md\n"
		"\n"
		"  --kernel PATH        x86_64 bzImage (boot protocol 2.12+) or 64-bit ELF\n"
		"  --initramfs PATH     initial ramdisk\n"
		"  --cmdline \"...\"      kernel command line (default \"" CLI_DEFAULT_CMDLINE "\")\n"
		"  --cpus boot=N        number of vCPUs (default 1, at most %d)\n"
		"  --memory size=SIZE[,shared=on][,hugepages=on]\n"
		"                       guest RAM (default 512M; K/M/G suffixes); shared=on maps it\n"
		"                       MAP_SHARED, hugepages=on uses 2 MiB hugetlb pages\n"
		"  --serial tty|off|null|file=PATH|socket=PATH\n"
		"                       COM1 (0x3f8) console: this terminal (default; Ctrl-A x quits),\n"
		"                       no UART, a UART whose output is dropped, a file, or a Unix\n"
		"                       socket cvmm listens on\n"
		"  --disk path=IMG[,readonly=on][,direct=on][,num_queues=N][,queue_size=N][,serial=STR][,id=ID]\n"
		"                       a virtio-blk disk on a raw image (repeatable, at most %d);\n"
		"                       num_queues defaults to the vCPUs with pci, 1 with mmio\n"
		"  --net tap=NAME[,mac=MAC][,ip=A,mask=M][,host_mac=MAC][,mtu=N][,num_queues=N][,queue_size=N][,id=ID]\n"
		"                       a virtio-net device on a tap (created if missing; repeatable, at most %d)\n"
		"  --rng [src=PATH]     a virtio-rng device fed by getrandom() or by PATH\n"
		"  --console off|tty|null|file=PATH|socket=PATH\n"
		"                       a virtio-console (hvc0) with this host side (default off)\n"
		"  --transport pci|mmio how virtio devices attach (default pci); mmio devices are\n"
		"                       announced in the ACPI DSDT and on the kernel command line\n"
		"                       (virtio_mmio.device=)\n"
		"  --log-file PATH      write cvmm's log there instead of stderr\n"
		"  -v                   more log output (-v info, -v -v debug)\n"
		"  --help, --version\n"
		"\n"
		"Exit status: 0 when the guest resets or powers off, 1 on a guest crash (triple\n"
		"fault) or a KVM/internal error, 2 on bad input, 128+N when stopped by signal N.\n",
		X86_MAX_CPUS, CLI_MAX_DISKS, CLI_MAX_NETS);
}

static int cli_find(const char *arg, const char **value)
{
	size_t n;

	*value = NULL;
	for (int i = 0; i < OPT_COUNT; i++) {
		n = strlen(cli_options[i].name);
		if (strncmp(arg, cli_options[i].name, n))
			continue;
		if (!arg[n])
			return i;
		if (arg[n] == '=' && cli_options[i].has_arg) {
			*value = arg + n + 1;
			return i;
		}
	}
	return -1;
}

struct cli_cpus {
	uint32_t boot;
};

static const struct opt_spec cli_cpus_spec[] = {
	OPT_SPEC("boot", OPT_U32, struct cli_cpus, boot),
	OPT_SPEC_END,
};

struct cli_memory {
	uint64_t size;
	bool shared, hugepages;
};

static const struct opt_spec cli_memory_spec[] = {
	OPT_SPEC("size", OPT_SIZE, struct cli_memory, size),
	OPT_SPEC("shared", OPT_BOOL, struct cli_memory, shared),
	OPT_SPEC("hugepages", OPT_BOOL, struct cli_memory, hugepages),
	OPT_SPEC_END,
};

static int cli_cpus(struct cli_config *c, const char *v, char *err, size_t errlen)
{
	struct cli_cpus o = { .boot = 1 };
	char why[256];

	if (opts_parse(v, cli_cpus_spec, &o, NULL, why, sizeof(why))) {
		snprintf(err, errlen, "--cpus %s: %s", v, why);
		return -EINVAL;
	}
	if (o.boot < 1 || o.boot > X86_MAX_CPUS) {
		snprintf(err, errlen, "--cpus boot=%u: must be 1 to %d", o.boot, X86_MAX_CPUS);
		return -EINVAL;
	}
	c->cpus = o.boot;
	return 0;
}

static int cli_memory(struct cli_config *c, const char *v, char *err, size_t errlen)
{
	struct cli_memory o = { .size = CLI_DEFAULT_MEMORY };
	uint64_t unit;
	char why[256];

	if (opts_parse(v, cli_memory_spec, &o, NULL, why, sizeof(why))) {
		snprintf(err, errlen, "--memory %s: %s", v, why);
		return -EINVAL;
	}
	unit = o.hugepages ? 2ULL << 20 : 4096;
	if (o.size < CLI_MIN_MEMORY || o.size > CLI_MAX_MEMORY || o.size % unit) {
		snprintf(err, errlen, "--memory %s: the size must be 2M to 1T and a multiple of %s", v,
			 o.hugepages ? "2M (hugepages=on)" : "4K");
		return -EINVAL;
	}
	c->mem_size = o.size;
	c->mem_shared = o.shared;
	c->mem_hugepages = o.hugepages;
	return 0;
}

/* The host side of a console: --serial and --console take the same values. */
static int cli_console_mode(const char *opt, const char *v, enum cli_serial *mode, const char **path,
			    char *err, size_t errlen)
{
	static const struct { const char *word; enum cli_serial mode; } words[] = {
		{ "tty", CLI_SERIAL_TTY }, { "off", CLI_SERIAL_OFF }, { "null", CLI_SERIAL_NULL },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(v, words[i].word)) {
			*mode = words[i].mode;
			return 0;
		}
	if (!strncmp(v, "file=", 5) && v[5]) {
		*mode = CLI_SERIAL_FILE;
		*path = v + 5;
		return 0;
	}
	if (!strncmp(v, "socket=", 7) && v[7]) {
		*mode = CLI_SERIAL_SOCKET;
		*path = v + 7;
		return 0;
	}
	snprintf(err, errlen, "%s %s: expected tty, off, null, file=PATH or socket=PATH", opt, v);
	return -EINVAL;
}

/* Device options are checked when the device is created (machine_virtio.c);
 * here only how many. */
static int cli_add_device(const char *opt, const char **list, unsigned *n, unsigned max, const char *v,
			  char *err, size_t errlen)
{
	if (*n == max) {
		snprintf(err, errlen, "%s: at most %u of them", opt, max);
		return -EINVAL;
	}
	list[(*n)++] = v;
	return 0;
}

static int cli_transport(struct cli_config *c, const char *v, char *err, size_t errlen)
{
	if (!strcmp(v, "pci"))
		c->transport = CLI_TRANSPORT_PCI;
	else if (!strcmp(v, "mmio"))
		c->transport = CLI_TRANSPORT_MMIO;
	else {
		snprintf(err, errlen, "--transport %s: expected pci or mmio", v);
		return -EINVAL;
	}
	return 0;
}

/* Stores one option's value; 0 or -EINVAL with err set. */
static int cli_apply(struct cli_config *c, int opt, const char *v, char *err, size_t errlen)
{
	if (cli_options[opt].has_arg && !cli_options[opt].optional_arg && !*v) {
		snprintf(err, errlen, "%s needs a non-empty value", cli_options[opt].name);
		return -EINVAL;
	}
	switch (opt) {
	case OPT_KERNEL: c->kernel = v; return 0;
	case OPT_INITRAMFS: c->initramfs = v; return 0;
	case OPT_CMDLINE: c->cmdline = v; return 0;
	case OPT_LOG_FILE: c->log_file = v; return 0;
	case OPT_VERBOSE: c->verbose++; return 0;
	case OPT_CPUS: return cli_cpus(c, v, err, errlen);
	case OPT_MEMORY: return cli_memory(c, v, err, errlen);
	case OPT_SERIAL: return cli_console_mode("--serial", v, &c->serial, &c->serial_path, err, errlen);
	case OPT_CONSOLE: return cli_console_mode("--console", v, &c->console, &c->console_path, err, errlen);
	case OPT_DISK: return cli_add_device("--disk", c->disks, &c->ndisks, CLI_MAX_DISKS, v, err, errlen);
	case OPT_NET: return cli_add_device("--net", c->nets, &c->nnets, CLI_MAX_NETS, v, err, errlen);
	case OPT_RNG: c->rng = v; return 0;
	case OPT_TRANSPORT: return cli_transport(c, v, err, errlen);
	case OPT_HELP: c->action = CLI_HELP; return 0;
	case OPT_VERSION: c->action = CLI_VERSION; return 0;
	case OPT_CHECK_HOST: c->action = CLI_CHECK_HOST; return 0;
	case OPT_BLOCK_BACKEND: c->action = CLI_BLOCK_BACKEND; break;
	case OPT_NET_BACKEND: c->action = CLI_NET_BACKEND; break;
	case OPT_VSOCK_BACKEND: c->action = CLI_VSOCK_BACKEND; break;
	default: break;
	}
	c->backend_opts = v;
	return 0;
}

static bool cli_is_action(int opt)
{
	return opt == OPT_HELP || opt == OPT_VERSION || opt == OPT_CHECK_HOST || opt == OPT_BLOCK_BACKEND ||
	       opt == OPT_NET_BACKEND || opt == OPT_VSOCK_BACKEND;
}

int cli_parse(int argc, char **argv, struct cli_config *c, char *err, size_t errlen)
{
	bool seen[OPT_COUNT] = { false };
	int action_opt = -1, vm_opt = -1;

	memset(c, 0, sizeof(*c));
	c->action = CLI_RUN;
	c->cmdline = CLI_DEFAULT_CMDLINE;
	c->cpus = 1;
	c->mem_size = CLI_DEFAULT_MEMORY;
	c->serial = CLI_SERIAL_TTY;
	c->console = CLI_SERIAL_OFF;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int opt = cli_find(argv[i], &v);

		if (opt < 0) {
			snprintf(err, errlen, argv[i][0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'",
				 argv[i]);
			return -EINVAL;
		}
		if (seen[opt] && opt != OPT_VERBOSE && !cli_options[opt].repeatable) {
			snprintf(err, errlen, "%s given twice", cli_options[opt].name);
			return -EINVAL;
		}
		seen[opt] = true;
		if (cli_options[opt].optional_arg && !v) {
			/* "--rng src=PATH" or a bare "--rng": a value has a '='. */
			if (i + 1 < argc && argv[i + 1][0] != '-' && strchr(argv[i + 1], '='))
				v = argv[++i];
			else
				v = "";
		}
		if (cli_options[opt].has_arg && !v) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", cli_options[opt].name);
				return -EINVAL;
			}
			v = argv[++i];
		}
		if (cli_is_action(opt)) {
			if (action_opt >= 0) {
				snprintf(err, errlen, "%s and %s cannot be combined", cli_options[action_opt].name,
					 cli_options[opt].name);
				return -EINVAL;
			}
			action_opt = opt;
		} else if (opt != OPT_VERBOSE && opt != OPT_LOG_FILE) {
			vm_opt = opt;
		}
		if (cli_apply(c, opt, v, err, errlen))
			return -EINVAL;
	}
	if (c->action == CLI_HELP || c->action == CLI_VERSION)
		return 0;
	if (action_opt >= 0 && vm_opt >= 0) {
		snprintf(err, errlen, "%s cannot be combined with %s", cli_options[action_opt].name,
			 cli_options[vm_opt].name);
		return -EINVAL;
	}
	if (c->serial == CLI_SERIAL_TTY && c->console == CLI_SERIAL_TTY) {
		snprintf(err, errlen, "--console tty needs the terminal that --serial has: add --serial null (or off, file=, socket=)");
		return -EINVAL;
	}
	if (c->action == CLI_RUN && !c->kernel) {
		snprintf(err, errlen, "no kernel given: use --kernel PATH");
		return -EINVAL;
	}
	return 0;
}
