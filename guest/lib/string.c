/*
 * string.c - the freestanding string and memory functions gcc may call.
 */
#include "kernel.h"

/*
 * The memory functions move 8 bytes at a time and finish byte-wise: x86
 * allows unaligned loads and stores, and the kernel has no SSE. (rep movs
 * and rep stos would be shorter code, but under QEMU -icount each of
 * their iterations is a guest instruction, which would make boot costs
 * look larger than the work they stand for.)
 */
static inline uint64_t load8(const unsigned char *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, 8);
	return v;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	for (; n >= 8; n -= 8, dp += 8, sp += 8) {
		uint64_t v = load8(sp);
		__builtin_memcpy(dp, &v, 8);
	}
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if (dp < sp)
		return memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *dp = d;
	uint64_t v = 0x0101010101010101ULL * (unsigned char)c;
	for (; n >= 8; n -= 8, dp += 8)
		__builtin_memcpy(dp, &v, 8);
	while (n--)
		*dp++ = (unsigned char)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n >= 8 && load8(x) == load8(y); n -= 8, x += 8, y += 8)
		;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

char *strchr(const char *s, int c)
{
	for (; *s; s++)
		if (*s == (char)c)
			return (char *)s;
	return c ? NULL : (char *)s;
}

/* Shell-style glob with '*' and '?'. */
bool glob_match(const char *pat, const char *s)
{
	if (!*pat)
		return !*s;
	if (*pat == '*')
		return glob_match(pat + 1, s) || (*s && glob_match(pat, s + 1));
	if (*s && (*pat == '?' || *pat == *s))
		return glob_match(pat + 1, s + 1);
	return false;
}

/* Both forms of clear_page() (mm.h); PAGE_SIZE is 4096 here. */
void clear_page_stosq(void *page)
{
	void *d = page;
	unsigned long n = 4096 / 8;
	asm volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0UL) : "memory");
}

void clear_page_stosb(void *page)
{
	void *d = page;
	unsigned long n = 4096;
	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(0UL) : "memory");
}
