#include <stdio.h>
#include <string.h>

#include "cvmm/log.h"

#define CVMM_VERSION "0.1.0"

static void main_usage(FILE *out)
{
	fprintf(out,
		"usage: cvmm --kernel PATH [options]\n"
		"  --help       this text\n"
		"  --version    print the version\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		main_usage(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("cvmm " CVMM_VERSION "\n");
		return 0;
	}
	log_err("booting guests is not implemented yet");
	main_usage(stderr);
	return 2;
}
