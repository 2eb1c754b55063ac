/* The few library routines the guest needs; output goes to the serial port. */
#include "tg.h"

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *dp = d;

	while (n--)
		*dp++ = (uint8_t)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *ap = a, *bp = b;

	for (; n; n--, ap++, bp++)
		if (*ap != *bp)
			return *ap < *bp ? -1 : 1;
	return 0;
}

size_t tg_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

uint8_t tg_checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return sum;
}

const char *tg_next_word(const char **p, size_t *len)
{
	const char *w;

	while (**p == ' ')
		(*p)++;
	w = *p;
	*len = 0;
	while (w[*len] && w[*len] != ' ')
		(*len)++;
	*p += *len;
	return w;
}

bool tg_parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (!len)
		return false;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return false;
	if (i + 1 == len) {
		unsigned shift;

		switch (s[i]) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		default: return false;
		}
		if (v > (UINT64_MAX >> shift))
			return false;
		v <<= shift;
	} else if (i != len) {
		return false;
	}
	*out = v;
	return true;
}

static void tg_put_num(uint64_t v, unsigned base, bool neg)
{
	char buf[24];
	int n = 0;

	if (neg)
		tg_serial_putc('-');
	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		tg_serial_putc(buf[--n]);
}

/* Supports %s %c %d %u %x with an optional l/ll, and %%. */
void tg_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		int longs = 0;

		if (*fmt != '%') {
			if (*fmt == '\n')
				tg_serial_putc('\r');
			tg_serial_putc(*fmt);
			continue;
		}
		while (*++fmt == 'l')
			longs++;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			while (*s)
				tg_serial_putc(*s++);
			break;
		}
		case 'c':
			tg_serial_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);

			tg_put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0);
			break;
		}
		case 'u':
			tg_put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, false);
			break;
		case 'x':
			tg_put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, false);
			break;
		case '%':
			tg_serial_putc('%');
			break;
		default:
			va_end(ap);
			return;
		}
	}
	va_end(ap);
}
