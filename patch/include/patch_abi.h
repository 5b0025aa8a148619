/*
 * patch_abi.h - the site record every kind of patchable site shares.
 *
 * The patch engine (patch/) rewrites kernel text at sites recorded in one
 * shared section, .patch.sites. Every record has the same 16-byte shape;
 * what the payload and the two argument fields mean belongs to the kind
 * (doc/patching.md):
 *
 *   kind              payload                 arg          arg2
 *   PATCH_KIND_PVOP   its pv_ops slot         op number    clobber mask
 *   PATCH_KIND_ALT    struct alt_desc         feature 1    feature 2
 *                     (flags: 1 or 2 replacements; alt/include/alternative.h)
 *   PATCH_KIND_SCALL  the static-call key     -            -
 *                     (flags: PATCH_SCALL_TRAMP, _CALL, _TAIL, _CS)
 *   PATCH_KIND_PCALL  promotion state         -            -
 *   PATCH_KIND_PVOP_SAVES  as PVOP: a pvop site written in assembly with
 *                     the pushes and pops around it (pvops/pvop_asm.h)
 *   PATCH_KIND_TEST   the call's target       -            -
 *
 * Addresses are relative to the field that holds them (`.long x - .`), so
 * the table needs no relocation and works wherever the image is mapped.
 * Shared by C, assembly, the host tests and scripts/check_sites.py (which
 * reads the PATCH_* values below by name).
 */
#ifndef TINYPV_PATCH_ABI_H
#define TINYPV_PATCH_ABI_H

/* Kinds. 0 is never valid, so a zeroed record is caught. */
#define PATCH_KIND_PVOP 1	/* paravirt op call site (pvops/) */
#define PATCH_KIND_ALT 2	/* CPU-feature alternative (alt/) */
#define PATCH_KIND_SCALL 3	/* static call site (scall/) */
#define PATCH_KIND_PCALL 4	/* promoted indirect call (roadmap) */
#define PATCH_KIND_PVOP_SAVES 5 /* pvop site with its push/pop saves */
#define PATCH_KIND_TEST 6	/* live-patching test sites (tests/kernel) */
#define PATCH_KIND_NR 7

/* What a static-call site is (its flags field; scall/static_call.h). */
#define PATCH_SCALL_TRAMP 1 /* the key's 8-byte trampoline */
#define PATCH_SCALL_CALL 2  /* a `call rel32` to the trampoline */
#define PATCH_SCALL_TAIL 3  /* a tail `jmp rel32` to the trampoline */
#define PATCH_SCALL_CS 4    /* a 6-byte `cs call rel32` (seed 003) */

#define PATCH_RECORD_SIZE 16
#define PATCH_MAX_LEN 32 /* longest site any kind may own */

/*
 * Emits one record from inline asm or (with plain strings) a .S file.
 * Arguments are assembler expressions as strings: the site's first byte,
 * its end, the payload address, and the kind's four small fields.
 */
#define PATCH_RECORD_ASM(site, end, payload, kind, flags, arg, arg2)           \
	PATCH_RECORD_ASM_IN(".patch.sites", site, end, payload, kind, flags,   \
			    arg, arg2)
/*
 * The same into a named input section: a kind whose records are many and
 * whose client walks only its own (static calls: .patch.sites.scall) keeps
 * them together; the linker places .patch.sites.* after .patch.sites, in
 * one table (guest/kernel.ld.S).
 */
#define PATCH_RECORD_ASM_IN(sec, site, end, payload, kind, flags, arg, arg2)   \
	".pushsection " sec ", \"a\"\n\t"                                      \
	".balign 16\n\t"                                                       \
	".long " site " - .\n\t"                                               \
	".long " payload " - .\n\t"                                            \
	".byte " kind ", " end " - " site ", " flags ", 0\n\t"                 \
	".short " arg ", " arg2 "\n\t"                                         \
	".popsection\n\t"

#ifndef __ASSEMBLER__
#include <stdint.h>

/*
 * A site that is a call made from inline asm (a pvop, a cs static call)
 * must come after its function's frame set-up, so a backtrace from inside
 * the call sees the caller: naming the stack pointer as an in/out operand
 * tells the compiler so (Linux's ASM_CALL_CONSTRAINT). One variable for
 * every kind: GCC allows one global register variable per register.
 */
register unsigned long patch_stack_pointer asm("rsp");
#define PATCH_CALL_CONSTRAINT "+r"(patch_stack_pointer)

struct patch_site {
	int32_t site;	  /* first byte of the site, relative to this field */
	int32_t payload;  /* the kind's payload, relative to this field */
	uint8_t kind;	  /* PATCH_KIND_* */
	uint8_t len;	  /* bytes the site owns */
	uint8_t flags;	  /* the kind's flags */
	uint8_t reserved; /* 0 */
	uint16_t arg;	  /* the kind's first argument */
	uint16_t arg2;	  /* the kind's second argument */
};

_Static_assert(sizeof(struct patch_site) == PATCH_RECORD_SIZE,
	       "site record is 16 bytes");

static inline uintptr_t patch_site_addr(const struct patch_site *r)
{
	return (uintptr_t)&r->site + (intptr_t)r->site;
}

static inline uintptr_t patch_site_payload(const struct patch_site *r)
{
	return (uintptr_t)&r->payload + (intptr_t)r->payload;
}
#endif

#endif
