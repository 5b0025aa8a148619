/*
 * pvop_asm.h - pvop sites in hand-written assembly (.S files).
 *
 * The C wrappers (pvops.h) tell the compiler what a site clobbers through
 * asm operands. Hand-written entry code has no compiler to tell: the
 * author states, at each site, which registers the surrounding code lets
 * the site destroy (Linux's CLBR_NONE / CLBR_ANY annotations). The
 * assembler refuses a site whose op may destroy more than that, and the
 * annotation is kept in a second record (.pvop.asm, struct pvop_asm_site)
 * that scripts/check_sites.py checks against the op's mask.
 *
 *   #include "pvop_asm.h"
 *   	testb	$3, 24(%rsp)
 *   	jz	1f
 *   	PVOP_ASM_SITE(SWAPGS, CLBR_NONE)
 *   1:
 *
 * The site itself is exactly a C site: the indirect call through pv_ops,
 * NOPs to the op's slot, a PATCH_KIND_PVOP record carrying the op's mask.
 */
#ifndef TINYPV_PVOP_ASM_H
#define TINYPV_PVOP_ASM_H

#include "patch_abi.h"
#include "pvop_abi.h"

/* What a hand-written site may destroy: nothing, rax, or any register. */
#define CLBR_NONE 0
#define CLBR_RAX PVREG_RAX
#define CLBR_ANY PVREG_ALL

/* struct pvop_asm_site, below. */
#define PVOP_ASM_RECORD_SIZE 16

#ifdef __ASSEMBLER__
/* clang-format off */
/*
 * One site. nr, slot and clob are the op's PVOP_*, PVOP_SLOT_*,
 * PVOP_CLOB_* (numbers: gas cannot see cpp names inside a .macro).
 * The .pvop.asm record: site (relative), annotation mask, op, then
 * reserved bytes, 16 in all.
 */
.macro pvop_asm_site nr:req, slot:req, clob:req, annot:req
	.if ((\clob) & ~(\annot)) != 0
	.error "pvop site: the op may clobber registers its annotation keeps"
	.endif
771:	call	*pv_ops+8*(\nr)(%rip)
	.nops	(\slot) - (. - 771b)
773:
	.pushsection .patch.sites, "a"
	.balign 16
	.long	771b - .
	.long	pv_ops+8*(\nr) - .
	.byte	PATCH_KIND_PVOP, 773b - 771b, 0, 0
	.short	(\nr), (\clob)
	.popsection
	.pushsection .pvop.asm, "a"
	.balign 16
	.long	771b - .
	.short	(\annot), (\nr)
	.quad	0
	.popsection
.endm

#define PVOP_ASM_SITE(op, annot)					\
	pvop_asm_site PVOP_##op, PVOP_SLOT_##op, PVOP_CLOB_##op, annot
/* clang-format on */
#else
#include <stdint.h>

/* The annotation of one assembly site (section .pvop.asm). */
struct pvop_asm_site {
	int32_t site;	/* the site's first byte, relative to this field */
	uint16_t annot; /* PVREG_* the surrounding code lets it destroy */
	uint16_t op;
	uint64_t reserved;
};
_Static_assert(sizeof(struct pvop_asm_site) == PVOP_ASM_RECORD_SIZE,
	       "asm site record is 16 bytes");
#endif

#endif
