/*
 * test_format.c - the kernel's vsnprintf (guest/lib/format.c, compiled
 * unchanged) against the C library's, format by format.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ktap.h"

int tinypv_snprintf(char *buf, size_t size, const char *fmt, ...);

#define SAME(fmt, ...)                                                         \
	do {                                                                   \
		char a[128], b[128];                                           \
		int na = tinypv_snprintf(a, sizeof(a), fmt, __VA_ARGS__);      \
		int nb = snprintf(b, sizeof(b), fmt, __VA_ARGS__);             \
		KTAP_CHECK(na == nb && !strcmp(a, b),                          \
			   "'%s': got '%s' (%d), libc '%s' (%d)", fmt, a, na,  \
			   b, nb);                                             \
	} while (0)

static void integers(void)
{
	ktap_case("integers");
	SAME("%d|%i|%u", 0, -1, 4000000000u);
	SAME("%d %d", 2147483647, (int)-2147483647 - 1);
	SAME("%ld %lu", (long)INT64_MIN, (unsigned long)UINT64_MAX);
	SAME("%lld %llu", (long long)-5, (unsigned long long)5);
	SAME("%hd %hhd %hu %hhu", 70000, 300, 70000, 300);
	SAME("%zu %zd", (size_t)12345, (ssize_t)-12345);
	SAME("%+d % d %+d % d", 5, 5, -5, -5);
	ktap_end_case();
}

static void hex_octal(void)
{
	ktap_case("hex_octal");
	SAME("%x %X %o", 0xdeadbeefu, 0xdeadbeefu, 8u);
	SAME("%#x %#X %#o %#x", 255u, 255u, 8u, 0u);
	SAME("%lx %016lx", 0xffffffff80100000ul, 0x1234ul);
	SAME("%#010x|%-#10x|", 0x1234u, 0x1234u);
	ktap_end_case();
}

static void width_precision(void)
{
	ktap_case("width_precision");
	SAME("[%5d][%-5d][%05d]", 42, 42, 42);
	SAME("[%5d][%-5d][%05d]", -42, -42, -42);
	SAME("[%.3d][%8.3d][%-8.3d]", 7, 7, -7);
	SAME("[%*d][%-*d]", 6, 1, 6, 1);
	SAME("[%.0d]", 0);
	SAME("[%.2s][%5s][%-5s][%.*s]", "abc", "abc", "abc", 1, "xyz");
	SAME("[%c][%3c][%-3c]", 'a', 'b', 'c');
	ktap_end_case();
}

static void pointers_and_percent(void)
{
	ktap_case("pointers_and_percent");
	SAME("%p %%", (void *)0xffffffff80100000ul);
	SAME("%s", "plain");
	ktap_end_case();
}

static void truncation(void)
{
	char buf[5];
	ktap_case("truncation");
	int n = tinypv_snprintf(buf, sizeof(buf), "%s", "abcdefgh");
	KTAP_CHECK(n == 8, "returned %d, want 8", n);
	KTAP_CHECK(!strcmp(buf, "abcd"), "buffer '%s', want 'abcd'", buf);
	n = tinypv_snprintf(NULL, 0, "%d", 12345);
	KTAP_CHECK(n == 5, "size 0 returned %d, want 5", n);
	ktap_end_case();
}

int main(void)
{
	ktap_begin(5);
	integers();
	hex_octal();
	width_precision();
	pointers_and_percent();
	truncation();
	return ktap_finish();
}
