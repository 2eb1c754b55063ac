#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cvmm/backends.h"
#include "cli.h"
#include "cvmm/confine.h"
#include "hostcheck.h"
#include "cvmm/log.h"
#include "machine.h"

#define CVMM_VERSION "0.1.0"
#define MAIN_EXIT_USAGE 2
#define MAIN_EXIT_BACKEND_USAGE 1   /* the back-ends' convention for bad options */

/* Host sockets (vsock connections), images and vhost-user regions are fds:
 * the default soft limit (often 1024) is far below what the host allows. */
static void main_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_info("cannot raise the open-file limit: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct cli_config cfg;
	enum confine_mode seccomp;
	struct timespec start;
	char err[512];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (cli_parse(argc, argv, &cfg, err, sizeof(err))) {
		fprintf(stderr, "cvmm: %s (see cvmm --help)\n", err);
		return MAIN_EXIT_USAGE;
	}
	if (cfg.action == CLI_HELP) {
		cli_usage(stdout);
		return 0;
	}
	if (cfg.action == CLI_VERSION) {
		printf("cvmm " CVMM_VERSION "\n");
		return 0;
	}
	if (confine_parse_mode(cfg.seccomp, &seccomp)) {
		fprintf(stderr, "cvmm: --seccomp '%s': expected true, false or log\n", cfg.seccomp);
		return cfg.action == CLI_BACKEND ? MAIN_EXIT_BACKEND_USAGE : MAIN_EXIT_USAGE;
	}
	log_set_level(cfg.verbose >= 2 ? LOG_DEBUG : cfg.verbose ? LOG_INFO : LOG_WARN);
	if (cfg.log_file) {
		ret = log_set_file(cfg.log_file);
		if (ret) {
			fprintf(stderr, "cvmm: --log-file %s: %s\n", cfg.log_file, strerror(-ret));
			return MAIN_EXIT_USAGE;
		}
	}
	main_raise_fd_limit();
	/* Filters are built before any thread starts; threads confine
	 * themselves once setup is over (the host check runs a probe VM and
	 * exits: nothing to confine). */
	if (cfg.action != CLI_CHECK_HOST && confine_configure(seccomp)) {
		log_close();
		return 1;
	}
	switch (cfg.action) {
	case CLI_CHECK_HOST:
		ret = hostcheck_main();
		break;
	case CLI_BACKEND:
		ret = vu_backend_main(cfg.backend, cfg.backend_opts);
		break;
	default:
		ret = machine_run(&cfg, &start);
		break;
	}
	log_close();
	/* Errors went to the log file: say where to look. */
	if (ret && cfg.log_file)
		fprintf(stderr, "cvmm: exit status %d: see the log in %s\n", ret, cfg.log_file);
	return ret;
}
