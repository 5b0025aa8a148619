/*
 * traps.S - the one path every exception and interrupt takes.
 *
 * Native: the IDT points at trap_stubs + 16 * vector. A stub pushes a dummy
 * error code where the CPU pushes none, then the vector, and jumps to
 * trap_common, which saves the general registers as a struct trap_frame
 * (guest/include/trap.h) and calls trap_dispatch(frame).
 *
 * Xen PV: Xen bounces exceptions and the event upcall onto the kernel
 * stack with %rcx and %r11 pushed on top of the hardware-shaped frame.
 * xen_trap_stubs pop those two, and from there the frame is the native
 * one. Returning to a PV kernel goes through the iret hypercall, which
 * also restores the event mask from the saved IF (trap_return_xen).
 *
 * From and back to the user task (guest/user.c): a frame whose CS has RPL
 * 3 (Xen too gives its user-mode frames RPL 3, its kernel-mode ones 0)
 * gets the swapgs pvop site before anything touches %gs, and leaves
 * through the iret_user site (native swapgs; iretq, Xen HYPERVISOR_iret).
 */
#include "asm.h"
#include "layout.h"
#include "pvop_asm.h"
#include <xen/xen.h>

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERRCODE(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

	.text
	.balign 16
GLOBAL(trap_stubs)
	vec = 0
	.rept 256
	.balign 16
	.if vec == 3
	jmp	bp_entry
	.else
	.if !HAS_ERRCODE(vec)
	pushq	$0
	.endif
	pushq	$vec
	jmp	trap_common
	.endif
	vec = vec + 1
	.endr

	.balign 16
GLOBAL(xen_trap_stubs)
	vec = 0
	.rept 32
	.balign 16
	pop	%rcx
	pop	%r11
	.if vec == 3
	jmp	bp_entry
	.else
	.if !HAS_ERRCODE(vec)
	pushq	$0
	.endif
	pushq	$vec
	jmp	trap_common
	.endif
	vec = vec + 1
	.endr

/*
 * #BP, natively and under Xen PV (its stub has popped %rcx and %r11, so
 * the frame is the hardware one): copy the 5-word frame 48 bytes lower
 * and handle the copy. The frame was pushed just below the interrupted
 * %rsp (aligned down to 16, on the same stack: #BP has no IST here, and
 * Xen PV has none), which is where patch_live_bp() emulates a call's push
 * of the return address; that push now lands in the dead original,
 * never in the frame iretq (or Xen's iret) will use. 8 bytes of padding
 * keep the copy 16-byte aligned like the original (doc/patching.md).
 */
FUNC(bp_entry)
	sub	$8, %rsp
	.rept 5
	pushq	40(%rsp)			/* ss, rsp, rflags, cs, rip */
	.endr
	pushq	$0
	pushq	$3
	jmp	trap_common
ENDFUNC(bp_entry)

/* Xen's event upcall: a pseudo-vector after the 256 hardware ones. */
FUNC(xen_upcall_entry)
	pop	%rcx
	pop	%r11
	pushq	$0
	pushq	$256
	jmp	trap_common
ENDFUNC(xen_upcall_entry)

FUNC(trap_common)
	/* From the user task (guest/user.c): the kernel's GS base first. */
	testb	$3, 24(%rsp)			/* the frame's cs */
	jz	1f
	PVOP_ASM_SITE(SWAPGS, CLBR_NONE)
1:	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	cld
	mov	%rsp, %rdi
	/* A frame-pointer link so backtraces walk through the trap. */
	mov	17 * 8(%rsp), %rax		/* interrupted rip */
	push	%rax
	push	%rbp
	mov	%rsp, %rbp
	call	trap_dispatch
	add	$16, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp			/* vector, error code */
	testb	$3, 8(%rsp)			/* back to the user task? */
	jnz	trap_return_user
	cmpb	$0, trap_return_via_xen(%rip)
	jne	trap_return_xen
	iretq
trap_return_xen:
	pushq	$0				/* iret flags: not in syscall */
	jmp	hypercall_page + __HYPERVISOR_iret * 32
trap_return_user:
	PVOP_ASM_SITE(IRET_USER, CLBR_ANY)
	ud2
ENDFUNC(trap_common)
