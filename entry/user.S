/*
 * user.S - into and out of the user task (guest/user.c), and the system
 * call entries.
 *
 * user_enter() builds an iret frame for the task's first instruction and
 * leaves through the iret_user pvop; the kernel's callee-saved registers
 * and stack pointer stay behind in user_kernel_rsp until
 * user_return_to_kernel() resumes there (the task exited or faulted), as
 * if user_enter() returned.
 *
 * A system call arrives natively at uentry_syscall_native (MSR_LSTAR: the
 * CPU left the user %rsp in place and the user GS base loaded, so the
 * first instructions are a raw swapgs and the stack switch, which no call
 * may precede), under Xen PV at uentry_syscall_xen (CALLBACKTYPE_syscall:
 * Xen has switched to the stack of HYPERVISOR_stack_switch and pushed
 * %rcx and %r11 on an iret frame). Both build a struct trap_frame (vector
 * VEC_SYSCALL), call user_syscall(frame) and return through the
 * sysret_user pvop: swapgs; sysretq natively, HYPERVISOR_iret with
 * VGCF_in_syscall under Xen.
 */
#include "asm.h"
#include "layout.h"
#include "percpu.h"
#include "pvop_asm.h"

#define VEC_SYSCALL 257 /* trap.h */

	.text

/* void user_enter(uint64_t rip, uint64_t rsp, uint64_t arg) */
FUNC(user_enter)
	push	%rbp
	mov	%rsp, %rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, user_kernel_rsp(%rip)
	pushq	user_ss(%rip)
	push	%rsi
	pushq	$0x202				/* IF: interrupts on in user mode */
	pushq	user_cs(%rip)
	push	%rdi
	mov	%rdx, %rdi
	xor	%eax, %eax
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%ebp, %ebp
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d
	PVOP_ASM_SITE(IRET_USER, CLBR_ANY)
	ud2
ENDFUNC(user_enter)

/* Back on the stack user_enter() left; returns from user_enter(). */
FUNC(user_return_to_kernel)
	mov	user_kernel_rsp(%rip), %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret
ENDFUNC(user_return_to_kernel)

FUNC(uentry_syscall_native)
	swapgs
	mov	%rsp, %gs:PERCPU_USER_RSP
	mov	%gs:PERCPU_USER_KSTACK, %rsp
	pushq	$(GDT_USER_DS | 3)
	pushq	%gs:PERCPU_USER_RSP
	push	%r11				/* the user rflags */
	pushq	$(GDT_USER_CS | 3)
	push	%rcx				/* the user rip */
	jmp	uentry_syscall_common
ENDFUNC(uentry_syscall_native)

FUNC(uentry_syscall_xen)
	pop	%rcx
	pop	%r11
	jmp	uentry_syscall_common
ENDFUNC(uentry_syscall_xen)

FUNC(uentry_syscall_common)
	/*
	 * Interrupts on while the kernel serves the call, before anything
	 * is saved: every register is live, so the site saves the rax its
	 * op may clobber. Where the inline bytes clobber nothing (native
	 * sti), the patcher drops the saves (pvop_asm.h).
	 */
	PVOP_ASM_SITE_SAVED(IRQ_ENABLE, CLBR_NONE, PVREG_RAX)
	pushq	$0
	pushq	$VEC_SYSCALL
	push	%rax
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
	mov	17 * 8(%rsp), %rax		/* user rip: a frame link */
	push	%rax
	push	%rbp
	mov	%rsp, %rbp
	call	user_syscall
	add	$16, %rsp
	/* Off again before the registers come back (and, natively, swapgs). */
	PVOP_ASM_SITE(IRQ_DISABLE, CLBR_ANY)
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
	PVOP_ASM_SITE(SYSRET_USER, PVREG_RCX | PVREG_R11)
	ud2
ENDFUNC(uentry_syscall_common)
