/*
 * pvop_thunk.h - PVOP_THUNK(name, cfunc) for assembly files: a function
 * with a pvop's register convention that calls the C function cfunc.
 *
 * A pvop site promises the compiler that only its clobber mask
 * (pvop_abi.h) is destroyed, while a C function may destroy every
 * caller-saved register. The thunk saves rcx, rdx, rsi, rdi, r8-r11 around
 * the call, so it destroys only %rax (the return value): its
 * call_clobbers are PVREG_RAX. The first argument arrives in %rdi as the C
 * function expects. The stack is realigned, since a site may sit anywhere.
 */
#ifndef TINYPV_PVOP_THUNK_H
#define TINYPV_PVOP_THUNK_H

#include "patch_seam.h"

/* clang-format off */
#define PVOP_THUNK(name, cfunc)			\
	.text;					\
	.balign 16;				\
FUNC(name)					\
	push	%rbp;				\
	mov	%rsp, %rbp;			\
	push	%rcx;				\
	push	%rdx;				\
	push	%rsi;				\
	push	%rdi;				\
	push	%r8;				\
	push	%r9;				\
	push	%r10;				\
	push	%r11;				\
	and	$-16, %rsp;			\
	call	cfunc;				\
	lea	-64(%rbp), %rsp;		\
	pop	%r11;				\
	pop	%r10;				\
	pop	%r9;				\
	pop	%r8;				\
	pop	%rdi;				\
	pop	%rsi;				\
	pop	%rdx;				\
	pop	%rcx;				\
	pop	%rbp;				\
	ret;					\
ENDFUNC(name)
/* clang-format on */

#endif
