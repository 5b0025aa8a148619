/*
 * user_prog.S - the user task's program: one page of position-independent
 * code in its own section (.user.text), which guest/user.c maps, user
 * accessible, at USER_CODE_VA. It runs in ring 3 (natively and on KVM) or
 * in Xen PV user mode, and reaches the kernel only by `syscall`:
 * number in %rax, arguments in %rdi, %rsi, %rdx, result in %rax (the
 * CPU's syscall destroys %rcx and %r11; everything else survives).
 *
 * Each uprog_* is one program; the kernel starts it with %rdi = its
 * argument. Nothing here may name a kernel address: the code runs at
 * another address than it was linked at (only %rip-relative references
 * inside the section).
 */
#include "asm.h"
#include "layout.h"
#include "user.h"

	.section .user.text, "ax"
	.balign 4096
GLOBAL(__user_text_start)

#define SYSCALL(nr) mov $(nr), %eax; syscall
#define EXIT(status) mov $(status), %edi; SYSCALL(SYS_EXIT)

/*
 * Every system call once, checking its result and that the registers the
 * ABI keeps survived; exits with arg + 7, or USER_BAD_STATUS.
 */
GLOBAL(uprog_syscalls)
	mov	%rdi, %r12
	mov	$0x1111, %ebx
	mov	$0x2222, %ebp
	mov	$0x8888, %r8d
	mov	$0x9999, %r9d
	mov	$0xaaaa, %r10d
	mov	$0x3333, %r13d
	mov	$0x4444, %r14d
	mov	$0x5555, %r15d
	SYSCALL(SYS_NOP)
	test	%rax, %rax
	jnz	1f
	mov	$1, %edi
	mov	$2, %esi
	mov	$40, %edx
	SYSCALL(SYS_ADD)
	cmp	$43, %rax
	jne	1f
	cmp	$1, %rdi
	jne	1f
	cmp	$2, %rsi
	jne	1f
	cmp	$40, %rdx
	jne	1f
	lea	hello(%rip), %rdi
	mov	$hello_end - hello, %esi
	SYSCALL(SYS_WRITE)
	cmp	$hello_end - hello, %rax
	jne	1f
	/* the stack works: push, call, pop */
	push	%r12
	call	2f
	pop	%rax
	cmp	%rax, %r12
	jne	1f
	cmp	$0x1111, %ebx
	jne	1f
	cmp	$0x2222, %ebp
	jne	1f
	cmp	$0x8888, %r8
	jne	1f
	cmp	$0x9999, %r9
	jne	1f
	cmp	$0xaaaa, %r10
	jne	1f
	cmp	$0x3333, %r13
	jne	1f
	cmp	$0x4444, %r14
	jne	1f
	cmp	$0x5555, %r15
	jne	1f
	lea	7(%r12), %rdi
	SYSCALL(SYS_EXIT)
1:	EXIT(USER_BAD_STATUS)
2:	ret
hello:	.ascii	"hello from ring 3"
hello_end:

/* A privileged instruction: must fault (#GP). */
GLOBAL(uprog_cli)
	cli
	EXIT(0)

/* Reads the word at arg (a kernel address): must fault (#PF). */
GLOBAL(uprog_read)
	mov	(%rdi), %rax
	EXIT(0)

/* Writes its own code page (mapped read-only): #PF. */
GLOBAL(uprog_write_code)
	lea	uprog_write_code(%rip), %rax
	movb	$0xcc, (%rax)
	EXIT(0)

GLOBAL(uprog_ud2)
	ud2
	EXIT(0)

/* A non-canonical address: #GP. */
GLOBAL(uprog_noncanonical)
	movabs	$0x8000000000000000, %rax
	mov	(%rax), %rax
	EXIT(0)

GLOBAL(uprog_bad_syscall)
	SYSCALL(SYS_NR + 1000)
	EXIT(0)

/* write(arg, 8): arg is a pointer the kernel must refuse. */
GLOBAL(uprog_bad_pointer)
	mov	$8, %esi
	SYSCALL(SYS_WRITE)
	EXIT(0)

/* int $0x80 (no DPL-3 gate): #GP with error code 0x80 << 3 | 2. */
GLOBAL(uprog_int80)
	int	$0x80
	EXIT(0)

/*
 * Spins until the kernel says it took an interrupt from user mode
 * (user_shared.irqs_from_user, in the data page), at most arg times.
 * This one and uprog_fault_loop end with a ud2 at a named place instead
 * of SYS_EXIT, so they need no system call (see test_user.c: KVM here).
 */
GLOBAL(uprog_wait_irq)
	mov	$USER_DATA_VA, %rax
1:	cmpq	$0, USER_SHARED_IRQS(%rax)
	jne	uprog_wait_irq_seen
	dec	%rdi
	jnz	1b
	ud2
GLOBAL(uprog_wait_irq_seen)
	ud2

/* SYS_WAIT_TICK, then exit with its result. */
GLOBAL(uprog_wait_tick)
	SYSCALL(SYS_WAIT_TICK)
	mov	%rax, %rdi
	SYSCALL(SYS_EXIT)

/* arg empty system calls, then exit 0 (the benchmark). */
GLOBAL(uprog_syscall_loop)
	mov	%rdi, %r12
1:	SYSCALL(SYS_NOP)
	dec	%r12
	jnz	1b
	EXIT(0)

/*
 * arg page faults that the kernel handles and returns from: a load from
 * USER_HOLE_VA, which the kernel answers by skipping the 3-byte load
 * (user.c, USER_PROBE_INSN) with %rax = USER_PROBE_VALUE.
 */
GLOBAL(uprog_fault_loop)
	mov	%rdi, %r12
	mov	$USER_HOLE_VA, %rsi
1:	xor	%eax, %eax
	mov	(%rsi), %rax			/* 48 8b 06 */
	cmp	$USER_PROBE_VALUE, %rax
	jne	2f
	dec	%r12
	jnz	1b
GLOBAL(uprog_fault_loop_done)
	ud2
2:	ud2

	.balign 4096
GLOBAL(__user_text_end)
