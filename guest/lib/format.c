/*
 * format.c - vsnprintf for the kernel (and, unchanged, for the host tests
 * in tests/host/test_format.c, which compare it with the C library's).
 *
 * Supported: %d %i %u %x %X %o %p %s %c %%, flags '-' '0' '+' ' ' '#',
 * width and precision (also '*'), length modifiers hh h l ll z t.
 * Output is always NUL-terminated when size > 0; the return value is the
 * length the full output would have had, as in C99.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef HOST_TEST
#define vsnprintf tinypv_vsnprintf
#define snprintf tinypv_snprintf
int tinypv_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int tinypv_snprintf(char *buf, size_t size, const char *fmt, ...);
#else
#include "kernel.h"
#endif

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

struct spec {
	bool left, zero, plus, space, alt;
	int width, prec; /* prec < 0: none */
};

static void put_str(struct out *o, const struct spec *sp, const char *s)
{
	if (!s)
		s = "(null)";
	int n = 0;
	while (s[n] && (sp->prec < 0 || n < sp->prec))
		n++;
	if (!sp->left)
		pad(o, ' ', sp->width - n);
	for (int i = 0; i < n; i++)
		put(o, s[i]);
	if (sp->left)
		pad(o, ' ', sp->width - n);
}

static void put_num(struct out *o, const struct spec *sp, uint64_t v, bool neg,
		    unsigned base, bool upper, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;

	while (v) {
		tmp[n++] = digits[v % base];
		v /= base;
	}
	int ndig = n;
	int prec = sp->prec < 0 ? 1 : sp->prec;
	if (ndig < prec)
		ndig = prec;
	const char *sign = neg ? "-" : sp->plus ? "+" : sp->space ? " " : "";
	int plen = 0;
	while (prefix[plen])
		plen++;
	int slen = sign[0] ? 1 : 0;
	int total = ndig + plen + slen;
	bool zero_pad = sp->zero && !sp->left && sp->prec < 0;

	if (!sp->left && !zero_pad)
		pad(o, ' ', sp->width - total);
	if (slen)
		put(o, sign[0]);
	for (int i = 0; i < plen; i++)
		put(o, prefix[i]);
	if (zero_pad)
		pad(o, '0', sp->width - total);
	pad(o, '0', ndig - n);
	while (n)
		put(o, tmp[--n]);
	if (sp->left)
		pad(o, ' ', sp->width - total);
}

static int parse_int(const char **f)
{
	int v = 0;
	while (**f >= '0' && **f <= '9')
		v = v * 10 + (*(*f)++ - '0');
	return v;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};

	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		struct spec sp = {.prec = -1};
		for (;; f++) {
			if (f[1] == '-')
				sp.left = true;
			else if (f[1] == '0')
				sp.zero = true;
			else if (f[1] == '+')
				sp.plus = true;
			else if (f[1] == ' ')
				sp.space = true;
			else if (f[1] == '#')
				sp.alt = true;
			else
				break;
		}
		f++;
		if (*f == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.left = true;
				sp.width = -sp.width;
			}
			f++;
		} else {
			sp.width = parse_int(&f);
		}
		if (*f == '.') {
			f++;
			if (*f == '*') {
				sp.prec = va_arg(ap, int);
				f++;
			} else {
				sp.prec = parse_int(&f);
			}
		}
		int lng = 0; /* -2 hh, -1 h, 1 l, 2 ll */
		for (;; f++) {
			if (*f == 'l')
				lng++;
			else if (*f == 'h')
				lng--;
			else if (*f == 'z' || *f == 't')
				lng = 1;
			else
				break;
		}
		uint64_t u;
		int64_t s;
		switch (*f) {
		case 'd':
		case 'i':
			s = lng >= 1 ? va_arg(ap, long) : va_arg(ap, int);
			if (lng == -1)
				s = (short)s;
			else if (lng == -2)
				s = (signed char)s;
			put_num(&o, &sp, s < 0 ? -(uint64_t)s : (uint64_t)s,
				s < 0, 10, false, "");
			break;
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			u = lng >= 1 ? va_arg(ap, unsigned long)
				     : va_arg(ap, unsigned int);
			if (lng == -1)
				u = (unsigned short)u;
			else if (lng == -2)
				u = (unsigned char)u;
			sp.plus = sp.space = false;
			put_num(&o, &sp, u, false,
				*f == 'o'   ? 8
				: *f == 'u' ? 10
					    : 16,
				*f == 'X',
				sp.alt && u && *f == 'x'   ? "0x"
				: sp.alt && u && *f == 'X' ? "0X"
				: sp.alt && *f == 'o'	   ? "0"
							   : "");
			break;
		case 'p':
			u = (uintptr_t)va_arg(ap, void *);
			sp.plus = sp.space = false;
			put_num(&o, &sp, u, false, 16, false, "0x");
			break;
		case 's':
			put_str(&o, &sp, va_arg(ap, const char *));
			break;
		case 'c': {
			char c[2] = {(char)va_arg(ap, int), 0};
			if (!sp.left)
				pad(&o, ' ', sp.width - 1);
			put(&o, c[0]);
			if (sp.left)
				pad(&o, ' ', sp.width - 1);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		case '\0':
			f--;
			break;
		default:
			put(&o, '%');
			put(&o, *f);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
