/* The seccomp tables' types, shared by confine.c and confine_rules.c. */
#ifndef CVMM_CONFINE_INTERNAL_H
#define CVMM_CONFINE_INTERNAL_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include "cvmm/confine.h"

enum confine_check {
	CONFINE_ANY_ARGS,
	CONFINE_ARG_MASKED_EQ,  /* (args[arg] & mask) == value */
};

/* One allowed (or refused with an errno) syscall. */
struct confine_rule {
	int nr;                 /* SCMP_SYS(name): negative when this libseccomp does not know it */
	const char *name;
	enum confine_check check;
	unsigned arg;
	uint64_t mask, value;
	int refuse_errno;       /* 0: allow; else fail the call with this errno */
	uint64_t (*value_fn)(void);  /* non-NULL: value comes from here at run time */
};

struct confine_table {
	const char *name;
	const struct confine_rule *rules;
	size_t count;
};

#define CONFINE_ROLE_MAX_TABLES 8

struct confine_role_spec {
	const char *name;
	const struct confine_table *tables[CONFINE_ROLE_MAX_TABLES];  /* NULL-terminated */
};

extern const struct confine_role_spec confine_roles[CONFINE_ROLE_COUNT];

#endif
