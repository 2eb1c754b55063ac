#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cvmm/opts.h"
#include "cvmm/arch.h"

/* The options of the VMM itself; device options come from the device type
 * table (OPT_DEVICE: --disk, --net, ...; OPT_BACKEND: --block-backend, ...). */
enum cli_opt {
	OPT_KERNEL, OPT_INITRAMFS, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_SERIAL, OPT_LOG_FILE,
	OPT_VERBOSE, OPT_HELP, OPT_VERSION, OPT_CHECK_HOST, OPT_TRANSPORT, OPT_CONSOLE, OPT_SECCOMP,
	OPT_DUMP_DTB, OPT_ON_REBOOT, OPT_COUNT, OPT_DEVICE = OPT_COUNT, OPT_BACKEND,
};

/* Room in seen[] for the fixed options and two per device type. */
#define CLI_MAX_SEEN (OPT_COUNT + 2 * 32)

struct cli_option {
	const char *name;
	bool has_arg;
	bool optional_arg;  /* the value may be left out (then it is "") */
	bool repeatable;
	bool checked_by_main;  /* main checks the value (its exit status depends on the action) */
};

static const struct cli_option cli_options[OPT_COUNT] = {
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
	[OPT_TRANSPORT] = { "--transport", true },
	[OPT_CONSOLE] = { "--console", true },
	[OPT_DUMP_DTB] = { "--dump-dtb", true },
	[OPT_ON_REBOOT] = { "--on-reboot", true },
	[OPT_SECCOMP] = { "--seccomp", true, false, false, true },
};

/* An option found on the command line: a fixed one or a device type's. */
struct cli_found {
	int opt;                     /* enum cli_opt */
	const struct devtype *type;  /* OPT_DEVICE, OPT_BACKEND */
	struct cli_option desc;
	unsigned seen_slot;
};

void cli_usage(FILE *out)
{
	fprintf(out,
		"usage: cvmm --kernel PATH [options]       boot a guest\n"
		"       cvmm --check-host                  can this host's KVM run Linux guests?\n");
	for (unsigned i = 0; devtype_table[i]; i++)
		if (devtype_table[i]->backend_option)
			fprintf(out, "       cvmm %s %s\n", devtype_table[i]->backend_option,
				devtype_table[i]->backend_usage);
	fprintf(out,
		"                                          vhost-user back-ends (all options in README.md)\n"
		"\n"
		"  --kernel PATH        " ARCH_KERNEL_HELP "\n"
		"  --initramfs PATH     initial ramdisk\n"
		"  --cmdline \"...\"      kernel command line (default \"" CLI_DEFAULT_CMDLINE "\")\n"
		"  --cpus boot=N        number of vCPUs (default 1, at most %d)\n"
		"  --memory size=SIZE[,shared=on][,hugepages=on][,prefault=on]\n"
		"                       guest RAM (default 512M; K/M/G suffixes); shared=on maps it\n"
		"                       MAP_SHARED, hugepages=on uses 2 MiB hugetlb pages,\n"
		"                       prefault=on allocates all of it and maps it for the guest\n"
		"                       before the guest starts (x86)\n"
		"  --serial tty|off|null|file=PATH|socket=PATH\n"
		"                       " ARCH_SERIAL_HELP " console: this terminal (default; Ctrl-A x quits),\n"
		"                       no UART, a UART whose output is dropped, a file, or a Unix\n"
		"                       socket cvmm listens on\n", ARCH_MAX_CPUS);
	for (unsigned i = 0; devtype_table[i]; i++)
		if (devtype_table[i]->vm_option)
			fputs(devtype_table[i]->vm_usage, out);
	fprintf(out,
		"  --console off|tty|null|file=PATH|socket=PATH\n"
		"                       a virtio-console (hvc0) with this host side (default off)\n"
		"  --transport pci|mmio how virtio devices attach (default pci); mmio devices are\n"
		"                       " ARCH_VIRTIO_MMIO_HELP "\n"
		"  --on-reboot exit|restart\n"
		"                       what a guest reboot does: end cvmm with status 0 (default),\n"
		"                       or reset the machine and boot the kernel again (x86)\n"
		"  --dump-dtb PATH      arm64: write the guest's device tree (a DTB) to PATH and\n"
		"                       exit without running the guest\n"
		"  --seccomp true|false|log\n"
		"                       after setup every thread runs under a seccomp allow-list for\n"
		"                       its role (default true: a forbidden syscall ends cvmm, naming\n"
		"                       it); log: allowed but logged by the kernel; false: no filter.\n"
		"                       Capabilities are dropped either way (docs/security.md).\n"
		"                       Also for the back-ends: cvmm --seccomp log --block-backend ...\n"
		"  --log-file PATH      write cvmm's log there instead of stderr\n"
		"  -v                   more log output (-v info, -v -v debug)\n"
		"  --help, --version\n"
		"\n"
		"Exit status: 0 when the guest resets (without --on-reboot restart) or powers off,\n"
		"1 on a guest crash (triple fault) or a KVM/internal error, 2 on bad input, 128+N\n"
		"when stopped by signal N.\n");
}

/* Matches "NAME" or "NAME=VALUE" (the latter only for options with a value). */
static bool cli_match(const char *arg, const char *name, bool has_arg, const char **value)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n))
		return false;
	if (!arg[n])
		return true;
	if (arg[n] == '=' && has_arg) {
		*value = arg + n + 1;
		return true;
	}
	return false;
}

static bool cli_find(const char *arg, struct cli_found *f, const char **value)
{
	*value = NULL;
	for (int i = 0; i < OPT_COUNT; i++)
		if (cli_match(arg, cli_options[i].name, cli_options[i].has_arg, value)) {
			*f = (struct cli_found){ .opt = i, .desc = cli_options[i], .seen_slot = (unsigned)i };
			return true;
		}
	for (unsigned i = 0; devtype_table[i] && OPT_COUNT + 2 * i + 1 < CLI_MAX_SEEN; i++) {
		const struct devtype *t = devtype_table[i];

		if (t->vm_option && cli_match(arg, t->vm_option, true, value)) {
			*f = (struct cli_found){
				.opt = OPT_DEVICE, .type = t, .seen_slot = OPT_COUNT + 2 * i,
				.desc = { t->vm_option, true, t->value_optional, t->max > 1 },
			};
			return true;
		}
		if (t->backend_option && cli_match(arg, t->backend_option, true, value)) {
			*f = (struct cli_found){
				.opt = OPT_BACKEND, .type = t, .seen_slot = OPT_COUNT + 2 * i + 1,
				.desc = { t->backend_option, true },
			};
			return true;
		}
	}
	return false;
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
	bool shared, hugepages, prefault;
};

static const struct opt_spec cli_memory_spec[] = {
	OPT_SPEC("size", OPT_SIZE, struct cli_memory, size),
	OPT_SPEC("shared", OPT_BOOL, struct cli_memory, shared),
	OPT_SPEC("hugepages", OPT_BOOL, struct cli_memory, hugepages),
	OPT_SPEC("prefault", OPT_BOOL, struct cli_memory, prefault),
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
	if (o.boot < 1 || o.boot > ARCH_MAX_CPUS) {
		snprintf(err, errlen, "--cpus boot=%u: must be 1 to %d", o.boot, ARCH_MAX_CPUS);
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
	c->mem_prefault = o.prefault;
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
static int cli_add_device(struct cli_config *c, const struct devtype *t, const char *v, char *err,
			  size_t errlen)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->ndevices; i++)
		n += c->devices[i].type == t;
	if (n == t->max) {
		snprintf(err, errlen, "%s: at most %u of them", t->vm_option, t->max);
		return -EINVAL;
	}
	if (c->ndevices == CLI_MAX_DEVICES) {
		snprintf(err, errlen, "%s: at most %u virtio devices in all", t->vm_option, CLI_MAX_DEVICES);
		return -EINVAL;
	}
	c->devices[c->ndevices++] = (struct cli_device){ t, v };
	return 0;
}

/* A value that must be one of two words: 0 for the first, 1 for the
 * second, else -EINVAL with err set. */
static int cli_one_of_two(const char *opt, const char *v, const char *first, const char *second, char *err,
			  size_t errlen)
{
	if (!strcmp(v, first))
		return 0;
	if (!strcmp(v, second))
		return 1;
	snprintf(err, errlen, "%s %s: expected %s or %s", opt, v, first, second);
	return -EINVAL;
}

static int cli_on_reboot(struct cli_config *c, const char *v, char *err, size_t errlen)
{
	int w = cli_one_of_two("--on-reboot", v, "exit", "restart", err, errlen);

	if (w < 0)
		return w;
	c->reboot_restart = w == 1;
	return 0;
}

static int cli_transport(struct cli_config *c, const char *v, char *err, size_t errlen)
{
	int w = cli_one_of_two("--transport", v, "pci", "mmio", err, errlen);

	if (w < 0)
		return w;
	c->transport = w == 1 ? CLI_TRANSPORT_MMIO : CLI_TRANSPORT_PCI;
	return 0;
}

/* Stores one option's value; 0 or -EINVAL with err set. */
static int cli_apply(struct cli_config *c, const struct cli_found *f, const char *v, char *err,
		     size_t errlen)
{
	if (f->desc.has_arg && !f->desc.optional_arg && !f->desc.checked_by_main && !*v) {
		snprintf(err, errlen, "%s needs a non-empty value", f->desc.name);
		return -EINVAL;
	}
	switch (f->opt) {
	case OPT_KERNEL: c->kernel = v; return 0;
	case OPT_INITRAMFS: c->initramfs = v; return 0;
	case OPT_CMDLINE: c->cmdline = v; return 0;
	case OPT_LOG_FILE: c->log_file = v; return 0;
	case OPT_SECCOMP: c->seccomp = v; return 0;
	case OPT_VERBOSE: c->verbose++; return 0;
	case OPT_CPUS: return cli_cpus(c, v, err, errlen);
	case OPT_MEMORY: return cli_memory(c, v, err, errlen);
	case OPT_SERIAL: return cli_console_mode("--serial", v, &c->serial, &c->serial_path, err, errlen);
	case OPT_CONSOLE: return cli_console_mode("--console", v, &c->console, &c->console_path, err, errlen);
	case OPT_DEVICE: return cli_add_device(c, f->type, v, err, errlen);
	case OPT_DUMP_DTB: c->dump_dtb = v; return 0;
	case OPT_TRANSPORT: return cli_transport(c, v, err, errlen);
	case OPT_ON_REBOOT: return cli_on_reboot(c, v, err, errlen);
	case OPT_HELP: c->action = CLI_HELP; return 0;
	case OPT_VERSION: c->action = CLI_VERSION; return 0;
	case OPT_CHECK_HOST: c->action = CLI_CHECK_HOST; return 0;
	case OPT_BACKEND:
		c->action = CLI_BACKEND;
		c->backend = f->type;
		c->backend_opts = v;
		return 0;
	default: return 0;
	}
}

static bool cli_is_action(int opt)
{
	return opt == OPT_HELP || opt == OPT_VERSION || opt == OPT_CHECK_HOST || opt == OPT_BACKEND;
}

int cli_parse(int argc, char **argv, struct cli_config *c, char *err, size_t errlen)
{
	bool seen[CLI_MAX_SEEN] = { false };
	const char *action_opt = NULL, *vm_opt = NULL;

	memset(c, 0, sizeof(*c));
	c->action = CLI_RUN;
	c->cmdline = CLI_DEFAULT_CMDLINE;
	c->cpus = 1;
	c->mem_size = CLI_DEFAULT_MEMORY;
	c->serial = CLI_SERIAL_TTY;
	c->console = CLI_SERIAL_OFF;
	c->seccomp = "true";
	for (int i = 1; i < argc; i++) {
		struct cli_found f;
		const char *v;

		if (!cli_find(argv[i], &f, &v)) {
			snprintf(err, errlen, argv[i][0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'",
				 argv[i]);
			return -EINVAL;
		}
		if (seen[f.seen_slot] && f.opt != OPT_VERBOSE && !f.desc.repeatable) {
			snprintf(err, errlen, "%s given twice", f.desc.name);
			return -EINVAL;
		}
		seen[f.seen_slot] = true;
		if (f.desc.optional_arg && !v) {
			/* "--rng src=PATH" or a bare "--rng": a value has a '='. */
			if (i + 1 < argc && argv[i + 1][0] != '-' && strchr(argv[i + 1], '='))
				v = argv[++i];
			else
				v = "";
		}
		if (f.desc.has_arg && !v) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a value", f.desc.name);
				return -EINVAL;
			}
			v = argv[++i];
		}
		if (cli_is_action(f.opt)) {
			if (action_opt) {
				snprintf(err, errlen, "%s and %s cannot be combined", action_opt, f.desc.name);
				return -EINVAL;
			}
			action_opt = f.desc.name;
		} else if (f.opt != OPT_VERBOSE && f.opt != OPT_LOG_FILE && f.opt != OPT_SECCOMP) {
			vm_opt = f.desc.name;
		}
		if (cli_apply(c, &f, v, err, errlen))
			return -EINVAL;
	}
	if (c->action == CLI_HELP || c->action == CLI_VERSION)
		return 0;
	if (action_opt && vm_opt) {
		snprintf(err, errlen, "%s cannot be combined with %s", action_opt, vm_opt);
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
