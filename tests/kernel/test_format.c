/*
 * test_format.c - the kernel's vsnprintf, in the kernel (the host tests
 * compare it with the C library in depth).
 */
#include "ktest.h"

#define CHECK(t, want, ...)                                                    \
	do {                                                                   \
		char buf[64];                                                  \
		int n = snprintf(buf, sizeof(buf), __VA_ARGS__);               \
		KT_EXPECT(t, !strcmp(buf, want) && n == (int)strlen(want),     \
			  "got '%s' (%d), want '%s'", buf, n, want);           \
	} while (0)

KTEST(format, integers)
{
	CHECK(t, "42 -7 ff FF", "%d %i %x %X", 42, -7, 255, 255);
	CHECK(t, "18446744073709551615", "%lu", ~0UL);
	CHECK(t, "-9223372036854775808", "%ld", (long)(1UL << 63));
	CHECK(t, "0x00001234", "%#010x", 0x1234);
	CHECK(t, "  -12|-12  |", "%5d|%-5d|", -12, -12);
}

KTEST(format, strings_and_pointers)
{
	const char *volatile nul = NULL;
	CHECK(t, "ab|  abc|abc  |(null)", "%.2s|%5s|%-5s|%s", "abc", "abc",
	      "abc", nul);
	CHECK(t, "0xffffffff80100000", "%p", (void *)0xffffffff80100000UL);
	CHECK(t, "x%y%", "x%cy%%", '%');
}

KTEST(format, truncation)
{
	char buf[8];
	int n = snprintf(buf, sizeof(buf), "%s", "0123456789");
	KT_EXPECT(t, n == 10, "returned %d, want 10", n);
	KT_EXPECT(t, !strcmp(buf, "0123456"), "buffer '%s'", buf);
}
