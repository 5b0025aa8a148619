/*
 * alternative.h - instructions and functions chosen at boot by CPU feature.
 *
 * An alternative site holds instructions that work on every CPU (the
 * original) and records one or two replacements, each keyed on a feature
 * bit (cpufeature.h: CPUID bits, and the synthetic platform bits xen_pv
 * and kvm). At boot alt_apply_all() has the patch engine (patch/) rewrite
 * each site with the replacement its CPU's features call for; with
 * `noalternatives` every site keeps its original, which must therefore be
 * correct everywhere. Each site is padded at assembly time to the longest
 * of its forms, so a replacement can never be longer than its site.
 *
 *   asm volatile(ALTERNATIVE("lfence; rdtsc", "rdtscp",
 *                            X86_FEATURE_RDTSCP) : "=a"(lo), "=d"(hi),
 *                "=c"(aux));   // every form's outputs and clobbers
 *   asm volatile(ALTERNATIVE_2("clflush %0", "clflushopt %0",
 *                X86_FEATURE_CLFLUSHOPT, "clwb %0", X86_FEATURE_CLWB)...);
 *
 * ALTERNATIVE_2: the second replacement wins when both features are
 * present (Linux's order). Replacements are copied to the site by the
 * engine, which relocates their rel32 branches and RIP-relative operands
 * (patch_reloc_scan()); a rel8 branch out of a replacement is refused.
 *
 * Function-level selection (the seed's hyp_alternate_select, on x86-64):
 *
 *   ALTERNATIVE_SELECT(clear_page_fn, clear_page_stosq, clear_page_stosb,
 *                      X86_FEATURE_ERMS);
 *   clear_page_fn()(page);
 *
 * defines `static inline T *clear_page_fn(void)`, T the type of both
 * functions (different types do not compile). Both addresses are PC-
 * relative constants in the instruction stream (two lea), and the choice
 * is one 3-byte site: a NOP (keep orig) or `mov alt, result`, written at
 * boot. No data is loaded to choose.
 *
 * Records (patch_abi.h, kind PATCH_KIND_ALT): payload -> struct alt_desc
 * (.alt.desc), flags = number of replacements (1 or 2), arg and arg2 = the
 * replacements' features. The original and the replacement bytes are in
 * .alt.repl (read-only data, never executed there). doc/patching.md has
 * the rules; scripts/check_sites.py checks every record at build time.
 */
#ifndef TINYPV_ALTERNATIVE_H
#define TINYPV_ALTERNATIVE_H

#include "cpufeature.h"
#include "patch_abi.h"

#define ALT_MAX_CHOICES 2

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>

#include "patch.h"

/* Where a site's forms are: addresses relative to the field that holds them. */
struct alt_desc {
	int32_t orig;	  /* a copy of the original instructions */
	uint8_t orig_len; /* their length (the site may be longer: NOPs) */
	uint8_t len[ALT_MAX_CHOICES]; /* each replacement's length */
	uint8_t reserved;
	int32_t repl[ALT_MAX_CHOICES]; /* each replacement */
};
_Static_assert(sizeof(struct alt_desc) == 16, "alt_desc is 16 bytes");

#define __ALT_STR(x) #x
#define ALT_STR(x) __ALT_STR(x)

/*
 * gas: a comparison is -1 when true, so -(a > b) * (a - b) is max(0, a-b),
 * and max(a, b) = a ^ ((a ^ b) & -(a < b)).
 */
#define ALT_MAX(a, b) "((" a ")^(((" a ")^(" b "))&-(-((" a ")<(" b ")))))"
#define ALT_OLEN "(6621b-6620b)"
/* A replacement's length: ahead of the site (f), or behind it (b). */
#define ALT_RLEN(n) "(6631" #n "f-6630" #n "f)"
#define ALT_RLEN_B(n) "(6631" #n "b-6630" #n "b)"

#define ALT_SITE(orig, longest)                                                \
	"6620:\n\t" orig "\n6621:\n\t"                                         \
	".nops -(((" longest ")-" ALT_OLEN ")>0)*((" longest ")-" ALT_OLEN     \
	")\n6622:\n\t"

#define ALT_REPL(n, repl) "6630" #n ":\n\t" repl "\n6631" #n ":\n\t"

#define ALT_DESC(nrepl, f1, f2, len2, repl2)                                   \
	".pushsection .alt.desc, \"a\"\n\t"                                    \
	".balign 4\n"                                                          \
	"6640:\n\t"                                                            \
	".long 6650b - .\n\t"                                                  \
	".byte " ALT_OLEN                                                      \
	", " ALT_RLEN_B(1) ", " len2 ", 0\n\t"                                 \
			   ".long 66301b - .\n\t"                              \
			   ".long " repl2 " - .\n\t"                           \
			   ".popsection\n\t" PATCH_RECORD_ASM(                 \
			       "6620b", "6622b", "6640b",                      \
			       ALT_STR(PATCH_KIND_ALT), nrepl, f1, f2)

/* The original's copy, then the replacements, in .alt.repl. */
#define ALT_BYTES(orig, repls)                                                 \
	".pushsection .alt.repl, \"a\"\n"                                      \
	"6650:\n\t" orig "\n\t" repls ".popsection\n\t"

#define ALTERNATIVE(orig, repl, feature)                                       \
	ALT_SITE(orig, ALT_RLEN(1))                                            \
	ALT_BYTES(orig, ALT_REPL(1, repl))                                     \
	ALT_DESC("1", ALT_STR(feature), "0", "0", "66301b")

#define ALTERNATIVE_2(orig, repl1, feature1, repl2, feature2)                  \
	ALT_SITE(orig, ALT_MAX(ALT_RLEN(1), ALT_RLEN(2)))                      \
	ALT_BYTES(orig, ALT_REPL(1, repl1) ALT_REPL(2, repl2))                 \
	ALT_DESC("2", ALT_STR(feature1), ALT_STR(feature2), ALT_RLEN_B(2),     \
		 "66302b")

/*
 * ALTERNATIVE_SELECT(fname, orig, alt, cond): see the top of this file.
 * The asm is not volatile: the choice is a constant, so the compiler may
 * share one site's result between calls (hoist it out of a loop).
 * ALTERNATIVE_SELECT_EACH_CALL makes it volatile, so that every call
 * executes the site: what the select benchmark measures.
 */
#define __ALTERNATIVE_SELECT(fname, orig, alt, cond, qual)                     \
	static inline __typeof__(&(orig)) fname(void)                          \
	{                                                                      \
		_Static_assert(__builtin_types_compatible_p(                   \
				   __typeof__(&(orig)), __typeof__(&(alt))),   \
			       "ALTERNATIVE_SELECT(" #fname "): " #orig        \
			       " and " #alt " have different types");          \
		__typeof__(&(orig)) __f, __a;                                  \
		asm qual("lea %c[o](%%rip), %[f]\n\t"                          \
			 "lea %c[al](%%rip), %[a]\n\t" ALTERNATIVE(            \
			     "", "mov %[a], %[f]", cond)                       \
			 : [f] "=r"(__f), [a] "=r"(__a)                        \
			 : [o] "i"(orig), [al] "i"(alt));                      \
		return __f;                                                    \
	}
#define ALTERNATIVE_SELECT(fname, orig, alt, cond)                             \
	__ALTERNATIVE_SELECT(fname, orig, alt, cond, )
#define ALTERNATIVE_SELECT_EACH_CALL(fname, orig, alt, cond)                   \
	__ALTERNATIVE_SELECT(fname, orig, alt, cond, volatile)

static inline const struct alt_desc *alt_desc_of(const struct patch_site *r)
{
	return (const struct alt_desc *)patch_site_payload(r);
}
static inline const uint8_t *alt_orig_bytes(const struct alt_desc *d)
{
	return (const uint8_t *)((uintptr_t)&d->orig + (intptr_t)d->orig);
}
static inline const uint8_t *alt_repl_bytes(const struct alt_desc *d,
					    unsigned i)
{
	return (const uint8_t *)((uintptr_t)&d->repl[i] + (intptr_t)d->repl[i]);
}

/* ---- the client (alt/alt.c) ---- */

/* Registers PATCH_KIND_ALT with the engine (before patch_init()). */
void alt_register_kind(void);
/*
 * Which form the features call for: 0 the original, i + 1 replacement i.
 * The last replacement whose feature is present wins.
 */
unsigned alt_choice(const struct patch_site *r);
/*
 * Patches every alternative site to alt_choice() (or, with keep, back
 * to its original), in one batch; a site that already holds its form is
 * only checked.
 */
void alt_apply_all(bool keep);
/* The bytes site r gets for form c (0 original), relocated to it. */
void alt_form_bytes(const struct patch_site *r, unsigned c, uint8_t *out);

#define for_each_alt_site(r) for_each_patch_site_of(PATCH_KIND_ALT, r)

struct alt_stats {
	unsigned sites, patched, kept; /* of the last alt_apply_all() */
	unsigned writes;	       /* sites it wrote */
	bool disabled;		       /* noalternatives */
};
extern struct alt_stats alt_stats;
/* "alternatives: ..." and one line per feature in the boot report. */
void alt_report(void);
#endif

#endif
