/*
 * Fuzz target: the command line: cli_parse over any argv (options, their
 * cloud-hypervisor style key=value lists, sizes, booleans), then each
 * device's and the back-end's own option list parsed against its type's
 * key table (opts_parse, as devtype_create does before it creates
 * anything; nothing is created here: no file, tap or socket is touched).
 *
 * Input: the arguments after "cvmm", separated by NUL bytes (at most 64).
 */
#include <stdlib.h>
#include <string.h>

#include "../../vmm/cli.h"
#include "cvmm/opts.h"
#include "lib/fuzz_input.h"
#include "lib/fuzz_target.h"

#define CLI_FUZZ_MAX_ARGS 64

/* Parses one device option list against its type's keys, as the device
 * table does, and frees what it parsed. */
static void cli_fuzz_device_opts(const struct devtype *t, const char *text)
{
	void *opts = calloc(1, t->opts_size ? t->opts_size : 1);
	uint64_t seen;
	char err[256];

	if (!opts)
		abort();
	if (opts_parse(text, t->spec, opts, &seen, err, sizeof(err)) == 0)
		opts_free(t->spec, opts);
	free(opts);
}

FUZZ_TARGET_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private, NUL-terminated copy: arguments are C strings. */
	char *buf = malloc(size + 1);
	char *args[CLI_FUZZ_MAX_ARGS + 2];
	struct cli_config c;
	char err[256] = "";
	int argc = 0;
	uint64_t v;
	bool b;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;
	args[argc++] = (char *)"cvmm";
	for (char *p = buf; p <= buf + size && argc <= CLI_FUZZ_MAX_ARGS; p += strlen(p) + 1)
		args[argc++] = p;
	args[argc] = NULL;
	for (int i = 1; i < argc; i++) {
		opts_parse_size(args[i], &v);
		opts_parse_u64(args[i], &v);
		opts_parse_bool(args[i], &b);
	}
	memset(&c, 0, sizeof(c));
	if (cli_parse(argc, args, &c, err, sizeof(err)) == 0) {
		if (c.ndevices > CLI_MAX_DEVICES)
			abort();
		for (unsigned i = 0; i < c.ndevices; i++)
			cli_fuzz_device_opts(c.devices[i].type, c.devices[i].opts);
		if (c.action == CLI_BACKEND)
			cli_fuzz_device_opts(c.backend, c.backend_opts ? c.backend_opts : "");
	} else if (!memchr(err, 0, sizeof(err)) || !err[0]) {
		abort(); /* an error must come with its one line */
	}
	free(buf);
	return 0;
}
