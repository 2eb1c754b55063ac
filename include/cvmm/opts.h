/*
 * "key=value,key=value" option strings (cloud-hypervisor syntax), shared by
 * every command-line option that takes sub-options (--memory, --cpus,
 * --serial, --block-backend, --disk, --net, ...).
 *
 * A caller describes its keys with a table and a struct to fill:
 *
 *	struct mem_opts { uint64_t size; bool shared; char *path; };
 *	static const struct opt_spec mem_spec[] = {
 *		OPT_SPEC("size", OPT_SIZE, struct mem_opts, size),
 *		OPT_SPEC("shared", OPT_BOOL, struct mem_opts, shared),
 *		OPT_SPEC("path", OPT_STRING, struct mem_opts, path),
 *		OPT_SPEC_END,
 *	};
 *	struct mem_opts o = { .size = 512 << 20 };   (defaults first)
 *	uint64_t seen;
 *	char err[128];
 *	if (opts_parse("size=1G,shared=on", mem_spec, &o, &seen, err, sizeof(err)) < 0)
 *		... err says what is wrong, e.g. "unknown key 'sise' (known: size, shared, path)"
 *	...
 *	opts_free(mem_spec, &o);
 *
 * Rules: keys are matched exactly; a key may appear once; values cannot
 * contain ','; an empty string parses to nothing. OPT_STRING fields must be
 * NULL or malloc'd before the call (they are freed when replaced). Bit i of *seen is set when
 * spec[i] was given (so at most 64 keys per table).
 */
#ifndef CVMM_OPTS_H
#define CVMM_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opt_type {
	OPT_STRING,  /* char *: a malloc'd copy (freed by opts_free); must not be empty */
	OPT_SIZE,    /* uint64_t: bytes, decimal with optional K, M, G or T suffix (powers of 1024) */
	OPT_U64,     /* uint64_t: decimal or 0x hex */
	OPT_U32,     /* uint32_t: decimal or 0x hex */
	OPT_BOOL,    /* bool: on/off (also true/false, yes/no, 1/0) */
};

struct opt_spec {
	const char *key;
	enum opt_type type;
	size_t offset;  /* of the field in the caller's struct */
};

#define OPT_SPEC(key, type, st, field) { key, type, offsetof(st, field) }
#define OPT_SPEC_END { NULL, OPT_STRING, 0 }

/* Parses text into the struct at base per specs. Fields of keys not given
 * keep their values. Returns 0, or -EINVAL with a one-line reason in err
 * (which names the key, not the option); on error, strings already parsed
 * are freed and their fields reset to NULL. seen may be NULL. */
int opts_parse(const char *text, const struct opt_spec *specs, void *base, uint64_t *seen,
	       char *err, size_t errlen);
/* Frees the OPT_STRING fields of base and sets them to NULL. */
void opts_free(const struct opt_spec *specs, void *base);

/* The value parsers on their own: 0 or -EINVAL (-ERANGE on overflow). */
int opts_parse_size(const char *s, uint64_t *out);
int opts_parse_u64(const char *s, uint64_t *out);
int opts_parse_bool(const char *s, bool *out);

#endif
