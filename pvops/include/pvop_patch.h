/*
 * pvop_patch.h - the patcher's pure core: what bytes a site should hold.
 *
 * Nothing here writes kernel text or depends on the platform, so the host
 * tests (tests/host/test_patch.c) compile and run exactly this code. The
 * kernel side (pvops/apply.c) validates each site's current bytes, calls
 * pvop_site_plan() and writes the result through text_poke().
 *
 * Decision rules, in order (doc/pvops.md):
 *   1. mode INDIRECT (or a site pinned to it): the original indirect call.
 *   2. the op does nothing on this backend, mode INLINE: NOPs.
 *   3. mode INLINE, a template exists, fits the slot and clobbers nothing
 *      the site does not allow: the template, relocated, then NOPs.
 *   4. otherwise: call rel32 to the backend's function, then NOPs, if that
 *      function's clobbers fit the site; else the plan fails.
 */
#ifndef TINYPV_PVOP_PATCH_H
#define TINYPV_PVOP_PATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvops.h"

/* How a site's spare bytes are filled (pvpad= option, benchmarks). */
enum pvop_pad {
	PVOP_PAD_NOPS,	 /* fewest NOPs of at most 9 bytes (the SDM's forms) */
	PVOP_PAD_NOP1,	 /* one-byte 0x90s: the naive way, for comparison */
	PVOP_PAD_JMP,	 /* a short jmp over the spare bytes when > 2 */
	PVOP_PAD_SINGLE, /* one NOP of up to 15 bytes, else a short jmp */
	PVOP_PAD_PREFIX, /* prefixes on a one-insn template, rest as SINGLE */
	PVOP_PAD_NR,
};

/* The default, chosen from the measurements in doc/benchmarks.md. */
#define PVOP_PAD_DEFAULT PVOP_PAD_SINGLE
extern const char *const pvop_pad_names[PVOP_PAD_NR];

#define PVOP_MAX_SLOT 32
#define NOP_MAX_LEN 9	/* the longest NOP form without extra prefixes */
#define INSN_MAX_LEN 15 /* the architectural limit on instruction length */

/* Writes n bytes of NOPs in the given style. */
void nops_fill(uint8_t *p, size_t n, enum pvop_pad style);

/* Length of the NOP instruction at p (at most n bytes), or 0 if none. */
size_t nop_insn_len(const uint8_t *p, size_t n);

/* True if p[0..n) is entirely NOP instructions (any encoding we know). */
bool nops_valid(const uint8_t *p, size_t n);

/* The bytes of an unpatched site, as the assembler emitted them. */
void pvop_site_original(const struct pvop_site *s, uint64_t pv_ops_addr,
			uint8_t *out);

/* True if cur holds an unpatched site: the indirect call, then NOPs. */
bool pvop_site_is_original(const struct pvop_site *s, uint64_t pv_ops_addr,
			   const uint8_t *cur);

/*
 * Computes into out[0..s->len) what the site should hold. Returns the
 * pvop_kind, or -1 with *why set when the site cannot be served.
 */
int pvop_site_plan(const struct pvop_site *s, const struct pvop_impl *impl,
		   enum pvop_mode mode, enum pvop_pad pad, uint64_t pv_ops_addr,
		   uint8_t *out, const char **why);

#endif
