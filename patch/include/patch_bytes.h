/*
 * patch_bytes.h - copying and comparing the few bytes of a site, a word
 * at a time.
 *
 * Sites are at most PATCH_MAX_LEN (32) bytes, and boot patches hundreds of
 * them, so these run in the engine's hottest loop. Copies and compares of
 * n bytes use two (n <= 16) or four 8-byte moves whose ends overlap, so
 * they touch exactly [0, n) without a byte loop (a compare of up to 8
 * bytes reads one masked word); the "all" forms move the whole
 * PATCH_MAX_LEN bytes of a state or plan buffer.
 */
#ifndef TINYPV_PATCH_BYTES_H
#define TINYPV_PATCH_BYTES_H

#include <stdbool.h>
#include <stdint.h>

#include "patch_abi.h"

static inline uint64_t ld64(const void *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, 8);
	return v;
}

static inline void st64(void *p, uint64_t v)
{
	__builtin_memcpy(p, &v, 8);
}

/*
 * Copies exactly n (1..32) bytes, never writing past d + n: two or four
 * word moves whose ends overlap in the middle, so no byte loop.
 */
static inline void bytes_copy(uint8_t *d, const uint8_t *s, unsigned n)
{
	if (n >= 8) {
		uint64_t a = ld64(s), z = ld64(s + n - 8);
		if (n > 16) {
			uint64_t b = ld64(s + 8), y = ld64(s + n - 16);
			st64(d + 8, b);
			st64(d + n - 16, y);
		}
		st64(d, a);
		st64(d + n - 8, z);
	} else if (n >= 4) {
		uint32_t a, z;
		__builtin_memcpy(&a, s, 4);
		__builtin_memcpy(&z, s + n - 4, 4);
		__builtin_memcpy(d, &a, 4);
		__builtin_memcpy(d + n - 4, &z, 4);
	} else {
		for (unsigned i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* Copies all PATCH_MAX_LEN bytes (both buffers must be that long). */
static inline void bytes_copy_all(uint8_t *d, const uint8_t *s)
{
	uint64_t a = ld64(s), b = ld64(s + 8), c = ld64(s + 16),
		 e = ld64(s + 24);
	st64(d, a);
	st64(d + 8, b);
	st64(d + 16, c);
	st64(d + 24, e);
}

static inline uint32_t ld32(const void *p)
{
	uint32_t v;
	__builtin_memcpy(&v, p, 4);
	return v;
}

/*
 * True if a[0..n) == b[0..n), for 1 <= n <= 32. Above 8 bytes, like
 * bytes_copy(): two or four word loads whose ends overlap. Up to 8 bytes,
 * one word each, masked to n: this reads up to 8 bytes from a and b,
 * which patch_init() checks every site has.
 */
static inline bool bytes_equal(const uint8_t *a, const uint8_t *b, unsigned n)
{
	if (n > 8) {
		uint64_t d =
		    (ld64(a) ^ ld64(b)) | (ld64(a + n - 8) ^ ld64(b + n - 8));
		if (n > 16)
			d |= (ld64(a + 8) ^ ld64(b + 8)) |
			     (ld64(a + n - 16) ^ ld64(b + n - 16));
		return !d;
	}
	static const uint64_t mask[9] = {
	    0,
	    0xff,
	    0xffff,
	    0xffffff,
	    0xffffffff,
	    0xffffffffff,
	    0xffffffffffff,
	    0xffffffffffffff,
	    0xffffffffffffffff,
	};
	return ((ld64(a) ^ ld64(b)) & mask[n]) == 0;
}

static inline void put32(uint8_t *p, int32_t v)
{
	__builtin_memcpy(p, &v, 4);
}

static inline int32_t get32(const uint8_t *p)
{
	int32_t v;
	__builtin_memcpy(&v, p, 4);
	return v;
}

#endif
