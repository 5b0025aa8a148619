/*
 * cache.h - writing a cache line back and out of the caches.
 *
 * flush_cache_line(p): `clflush` exists on every x86-64 CPU; `clflushopt`
 * (where CPUID has it) is the same flush without clflush's ordering
 * against other flushes, so a run of them can overlap. Callers that need
 * the flush done before a later access fence it (mfence), which is right
 * for both forms. An alternative (alt/):
 *
 *   flush_cache_line(&var);
 *   asm volatile("mfence" ::: "memory");
 */
#ifndef TINYPV_CACHE_H
#define TINYPV_CACHE_H

#include "alternative.h"

static inline void flush_cache_line(const volatile void *p)
{
	asm volatile(
	    ALTERNATIVE("clflush %0", "clflushopt %0", X86_FEATURE_CLFLUSHOPT)
	    : "+m"(*(volatile char *)p)::"memory");
}

#endif
