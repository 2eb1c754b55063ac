#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvmm/opts.h"

int opts_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	const char *digits = s;
	int base = 10;

	/* Decimal, or hex after 0x: a leading zero is not octal. */
	if (s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		digits = s + 2;
		base = 16;
	}
	/* strtoull accepts leading blanks and a sign: refuse both. */
	if (!s || !(base == 16 ? isxdigit((unsigned char)digits[0]) : isdigit((unsigned char)digits[0])))
		return -EINVAL;
	errno = 0;
	v = strtoull(digits, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == digits || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int opts_parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	unsigned long long v;
	const char *p;
	unsigned shift = 0;
	char *end;

	if (!s || !(s[0] >= '0' && s[0] <= '9'))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s)
		return -EINVAL;
	if (*end) {
		p = strchr(suffixes, *end == 'k' ? 'K' : *end);
		if (!p || end[1])
			return -EINVAL;
		shift = 10 * (unsigned)(p - suffixes + 1);
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int opts_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };

	for (unsigned i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

void opts_free(const struct opt_spec *specs, void *base)
{
	for (const struct opt_spec *sp = specs; sp->key; sp++) {
		char **field = (char **)((char *)base + sp->offset);

		if (sp->type != OPT_STRING)
			continue;
		free(*field);
		*field = NULL;
	}
}

static void opts_known_keys(const struct opt_spec *specs, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (const struct opt_spec *sp = specs; sp->key && n < len; sp++) {
		int m = snprintf(buf + n, len - n, "%s%s", sp == specs ? "" : ", ", sp->key);

		if (m < 0)
			break;
		n += (size_t)m;
	}
}

static const char *opts_type_hint(enum opt_type t)
{
	switch (t) {
	case OPT_SIZE:
		return "a size such as 512M or 2G";
	case OPT_U64:
	case OPT_U32:
		return "a number";
	case OPT_BOOL:
		return "on or off";
	case OPT_STRING:
		break;
	}
	return "a non-empty value";
}

/* Stores one value; 0 or -EINVAL/-ERANGE. */
static int opts_store(const struct opt_spec *sp, void *base, const char *val)
{
	void *field = (char *)base + sp->offset;
	uint64_t v;
	int ret;

	switch (sp->type) {
	case OPT_STRING: {
		char *copy;

		if (!*val)
			return -EINVAL;
		copy = strdup(val);
		if (!copy)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
	case OPT_SIZE:
		ret = opts_parse_size(val, &v);
		if (!ret)
			memcpy(field, &v, sizeof(v));
		return ret;
	case OPT_U64:
		ret = opts_parse_u64(val, &v);
		if (!ret)
			memcpy(field, &v, sizeof(v));
		return ret;
	case OPT_U32: {
		uint32_t v32;

		ret = opts_parse_u64(val, &v);
		if (ret)
			return ret;
		if (v > UINT32_MAX)
			return -ERANGE;
		v32 = (uint32_t)v;
		memcpy(field, &v32, sizeof(v32));
		return 0;
	}
	case OPT_BOOL: {
		bool b;

		ret = opts_parse_bool(val, &b);
		if (!ret)
			memcpy(field, &b, sizeof(b));
		return ret;
	}
	}
	return -EINVAL;
}

int opts_parse(const char *text, const struct opt_spec *specs, void *base, uint64_t *seen,
	       char *err, size_t errlen)
{
	char *copy, *save = NULL, *item;
	uint64_t mask = 0;
	int ret = 0;

	copy = strdup(text ? text : "");
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		const struct opt_spec *sp;
		unsigned idx;

		if (!eq) {
			snprintf(err, errlen, "'%s' is not key=value", item);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		for (sp = specs, idx = 0; sp->key && strcmp(sp->key, item); sp++, idx++)
			;
		if (!sp->key) {
			char known[256];

			opts_known_keys(specs, known, sizeof(known));
			snprintf(err, errlen, "unknown key '%s' (known: %s)", item, known);
			ret = -EINVAL;
			break;
		}
		if (idx < 64 && (mask & (1ULL << idx))) {
			snprintf(err, errlen, "key '%s' given twice", item);
			ret = -EINVAL;
			break;
		}
		ret = opts_store(sp, base, eq + 1);
		if (ret == -ENOMEM) {
			snprintf(err, errlen, "out of memory");
			break;
		}
		if (ret) {
			snprintf(err, errlen, "%s=%s: %s, expected %s", item, eq + 1,
				 ret == -ERANGE ? "out of range" : "bad value", opts_type_hint(sp->type));
			ret = -EINVAL;
			break;
		}
		if (idx < 64)
			mask |= 1ULL << idx;
	}
	free(copy);
	if (ret) {
		opts_free(specs, base);
		return ret;
	}
	if (seen)
		*seen = mask;
	return 0;
}
