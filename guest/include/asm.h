/*
 * asm.h - helpers shared by the assembly files and inline asm.
 *
 * ELFNOTE() emits one Xen ELF note into .note.tinypv, which the linker
 * script places both in the read-only segment and in the PT_NOTE segment
 * that QEMU's PVH loader and Xen's PV builder read.
 */
#ifndef TINYPV_ASM_H
#define TINYPV_ASM_H

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

#define GLOBAL(name)                                                           \
	.globl name;                                                           \
	name:

#define FUNC(name)                                                             \
	.globl name;                                                           \
	.type name, @function;                                                 \
	name:

#define ENDFUNC(name) .size name, .- name

#endif /* __ASSEMBLER__ */

/*
 * Exception-fixup records (guest/include/trap.h), from inline asm or .S:
 * a fault in [insn, end) resumes at fixup (EXT_JUMP) or returns to the
 * caller (EXT_RET). Arguments are label names as strings, e.g. "1b".
 */
#define EXTABLE_JUMP(insn, end, fixup)                                         \
	".pushsection .extable, \"a\"\n\t.balign 8\n\t.quad " insn             \
	"\n\t.long " fixup " - " insn "\n\t.short " end " - " insn             \
	", 0\n\t.popsection\n\t"

#endif
