/*
 * nops.h - multi-byte NOPs: filling a site's spare bytes in one of several
 * styles, and recognising NOPs (any encoding an assembler or the engine
 * writes) when a site is validated.
 */
#ifndef TINYPV_NOPS_H
#define TINYPV_NOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How spare bytes are filled (the pvpad= option, the benchmarks). */
enum patch_pad {
	PATCH_PAD_NOPS,	  /* fewest NOPs of at most 9 bytes (the SDM's forms) */
	PATCH_PAD_NOP1,	  /* one-byte 0x90s: the naive way, for comparison */
	PATCH_PAD_JMP,	  /* a short jmp over the spare bytes when > 2 */
	PATCH_PAD_SINGLE, /* one NOP of up to 15 bytes, else a short jmp */
	PATCH_PAD_PREFIX, /* prefixes on a one-insn template, rest as SINGLE */
	PATCH_PAD_NR,
};

/* The default, chosen from the measurements in doc/benchmarks.md. */
#define PATCH_PAD_DEFAULT PATCH_PAD_SINGLE
extern const char *const patch_pad_names[PATCH_PAD_NR];

#define NOP_MAX_LEN 9	    /* the longest NOP form without extra prefixes */
#define NOP_INSN_MAX_LEN 15 /* the architectural limit on instruction length */

/* Writes n bytes of NOPs in the given style. */
void nops_fill(uint8_t *p, size_t n, enum patch_pad style);

/*
 * Length of the NOP instruction at p (at most n bytes), or 0 if none. An
 * instruction is at most 15 bytes, prefixes included: a longer "NOP"
 * raises #UD and is refused. A short jmp over NOPs counts as padding.
 */
size_t nop_insn_len(const uint8_t *p, size_t n);

/* True if p[0..n) is entirely NOP instructions. */
bool nops_valid(const uint8_t *p, size_t n);

#endif
