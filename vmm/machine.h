/*
 * cvmm's x86 machine: a VM with its legacy devices (COM1, i8042, ACPI PM,
 * boot timer), firmware tables and a directly booted kernel, run until it
 * stops. What main() does once the command line is understood.
 */
#ifndef CVMM_MACHINE_H
#define CVMM_MACHINE_H

#include <time.h>

#include "cli.h"

/* Boots cfg's guest and returns the process exit status (vm.h's enum
 * vm_exit; 2 for bad input such as an unusable kernel file). start is when
 * the process started. Errors are logged once, where they are found. */
int machine_run(const struct cli_config *cfg, const struct timespec *start);

#endif
