/*
 * asm.h - helpers shared by the assembly files and inline asm.
 *
 * ELFNOTE() emits one Xen ELF note into .note.tinypv, which the linker
 * script places both in the read-only segment and in the PT_NOTE segment
 * that QEMU's PVH loader and Xen's PV builder read.
 */
#ifndef TINYPV_ASM_H
#define TINYPV_ASM_H

/* GLOBAL, FUNC, ENDFUNC and the fixup-record macros (EXTABLE_*). */
#include "patch_seam.h"

#ifdef __ASSEMBLER__

/* clang-format off */
#define ELFNOTE(type, desctype, descdata)			\
	.pushsection .note.tinypv, "a";				\
	.balign 4;						\
	.long 2f - 1f;						\
	.long 4f - 3f;						\
	.long type;						\
1:	.asciz "Xen";						\
2:	.balign 4;						\
3:	desctype descdata;					\
4:	.balign 4;						\
	.popsection
/* clang-format on */

#endif /* __ASSEMBLER__ */

#endif
