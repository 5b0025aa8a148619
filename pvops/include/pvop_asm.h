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
 *
 * Saves that belong to the site (Jeremy Fitzhardinge's idea, 2007): where
 * the surrounding code needs registers the op may clobber, it saves them
 * around the call, and PVOP_ASM_SITE_SAVED records the pushes and pops as
 * part of the site:
 *
 *   	PVOP_ASM_SITE_SAVED(IRQ_ENABLE, CLBR_NONE, PVREG_RAX)
 *   	# = push %rax; call *pv_ops+8*IRQ_ENABLE(%rip); nops; pop %rax
 *
 * When the backend's inline bytes clobber none of the saved registers,
 * the patcher lays them over the whole range (saves included): the saves
 * go, and the site has 2 bytes per saved register more to inline into.
 * Otherwise the saves stay around whatever the site becomes. Only
 * one-byte pushes (rax, rcx, rdx, rbx, rbp, rsi, rdi). Only hand-written
 * assembly: a compiler puts no matched push/pop around a call for a
 * patcher to find (doc/pvops.md).
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
 * The .pvop.asm record: site (relative), annotation mask, op, saved
 * mask, then reserved bytes, 16 in all. With saves, the record is of
 * kind PATCH_KIND_PVOP_SAVES, starts at the first push and ends after
 * the last pop (len = slot + 2 per saved register).
 */
.macro pvop_push_mask m
	.irp r, 0, 1, 2, 3, 5, 6, 7
	.if (\m) & (1 << \r)
	.byte 0x50 + \r
	.endif
	.endr
.endm
.macro pvop_pop_mask m
	.irp r, 7, 6, 5, 3, 2, 1, 0
	.if (\m) & (1 << \r)
	.byte 0x58 + \r
	.endif
	.endr
.endm

.macro pvop_asm_site nr:req, slot:req, clob:req, annot:req, saved=0
	.if ((\clob) & ~((\annot) | (\saved))) != 0
	.error "pvop site: the op may clobber registers its annotation keeps"
	.endif
	.if ((\saved) & ~0xef) != 0
	.error "pvop site: only rax, rcx, rdx, rbx, rbp, rsi, rdi can be saved"
	.endif
770:	pvop_push_mask \saved
771:	call	*pv_ops+8*(\nr)(%rip)
	.nops	(\slot) - (. - 771b)
	pvop_pop_mask \saved
773:
	.pushsection .patch.sites, "a"
	.balign 16
	.long	770b - .
	.long	pv_ops+8*(\nr) - .
	.if (\saved)
	.byte	PATCH_KIND_PVOP_SAVES
	.else
	.byte	PATCH_KIND_PVOP
	.endif
	.byte	773b - 770b, 0, 0
	.short	(\nr), (\clob)
	.popsection
	.pushsection .pvop.asm, "a"
	.balign 16
	.long	770b - .
	.short	(\annot), (\nr), (\saved)
	.short	0
	.long	0
	.popsection
.endm

#define PVOP_ASM_SITE(op, annot)					\
	pvop_asm_site PVOP_##op, PVOP_SLOT_##op, PVOP_CLOB_##op, annot
#define PVOP_ASM_SITE_SAVED(op, annot, saved)				\
	pvop_asm_site PVOP_##op, PVOP_SLOT_##op, PVOP_CLOB_##op, annot, saved
/* clang-format on */
#else
#include <stdint.h>

/* The annotation of one assembly site (section .pvop.asm). */
struct pvop_asm_site {
	int32_t site;	/* the site's first byte, relative to this field */
	uint16_t annot; /* PVREG_* the surrounding code lets it destroy */
	uint16_t op;
	uint16_t saved; /* PVREG_* pushed before and popped after the call */
	uint16_t reserved;
	uint32_t reserved2;
};

extern const struct pvop_asm_site __pvop_asm_start[], __pvop_asm_end[];
_Static_assert(sizeof(struct pvop_asm_site) == PVOP_ASM_RECORD_SIZE,
	       "asm site record is 16 bytes");
#endif

#endif
