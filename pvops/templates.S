/*
 * templates.S - the inline bytes of every backend, one template per op.
 *
 * TPL_BEGIN/TPL_END wrap the bytes of one template. They become:
 *   pvstub_<backend>_<op>: the bytes followed by `ret`, a function with the
 *                          op's register convention (pvops=off/noinline);
 *   pvtpl_<backend>_<op>:  a struct pvop_template record in
 *                          .pvop.templates (address, length, clobbers).
 * The assembler refuses a template longer than its op's slot, and an
 * empty one. TPL_END1 marks a single-instruction template that may take
 * redundant prefixes. Branches and RIP-relative operands that leave a
 * template are found by the engine's decoder and re-aimed at each site.
 */
#include "patch_seam.h"
#include "pvop_abi.h"
/* The Xen public headers hide their C parts behind __ASSEMBLY__. */
#ifndef __ASSEMBLY__
#define __ASSEMBLY__
#endif
#include <xen/xen.h>

/* clang-format off */
/* A fault here, when called as a stub, returns to the caller. */
#define EXTABLE_RET(insn, end) EXTABLE_ASM(insn, end, insn, EXT_RET)

#define TPL_BEGIN(b, name)						\
	.pushsection .pvop.text, "ax";					\
	.balign 16;							\
	.globl pvstub_##b##_##name;					\
	.type pvstub_##b##_##name, @function;				\
pvstub_##b##_##name:

#define TPL_END_ONE(b, name, B, OP, clob, one)				\
pvstub_##b##_##name##_end:						\
	ret;								\
	.size pvstub_##b##_##name, . - pvstub_##b##_##name;		\
	.if (pvstub_##b##_##name##_end - pvstub_##b##_##name) > PVOP_SLOT_##OP; \
	.error "template pvstub_" #b "_" #name " is longer than its slot"; \
	.endif;								\
	.if (pvstub_##b##_##name##_end - pvstub_##b##_##name) == 0;	\
	.error "template pvstub_" #b "_" #name " is empty";		\
	.endif;								\
	.popsection;							\
	.pushsection .pvop.templates, "a";				\
	.balign 16;							\
	.globl pvtpl_##b##_##name;					\
pvtpl_##b##_##name:							\
	.quad pvstub_##b##_##name;					\
	.byte pvstub_##b##_##name##_end - pvstub_##b##_##name, PVOP_##OP; \
	.short clob;							\
	.byte PVOP_BACKEND_##B, 0, one, 0;				\
	.popsection

#define TPL_END(b, name, B, OP, clob)					\
	TPL_END_ONE(b, name, B, OP, clob, 0)

/* A template that is one instruction with no memory operand override: it
 * may carry redundant prefixes as its padding (PATCH_PAD_PREFIX). */
#define TPL_END1(b, name, B, OP, clob)					\
	TPL_END_ONE(b, name, B, OP, clob, 1)
/* clang-format on */

/* ---------------------------------------------------------------- native */

TPL_BEGIN(native, irq_disable)
	cli
TPL_END1(native, irq_disable, NATIVE, IRQ_DISABLE, 0)

TPL_BEGIN(native, irq_enable)
	sti
TPL_END1(native, irq_enable, NATIVE, IRQ_ENABLE, 0)

TPL_BEGIN(native, save_fl)
	pushf
	pop	%rax
TPL_END(native, save_fl, NATIVE, SAVE_FL, PVREG_RAX)

TPL_BEGIN(native, restore_fl)
	push	%rdi
	popf
TPL_END(native, restore_fl, NATIVE, RESTORE_FL, 0)

TPL_BEGIN(native, safe_halt)
	sti
	hlt
TPL_END(native, safe_halt, NATIVE, SAFE_HALT, 0)

TPL_BEGIN(native, halt)
	hlt
TPL_END1(native, halt, NATIVE, HALT, 0)

TPL_BEGIN(native, read_cr2)
	mov	%cr2, %rax
TPL_END1(native, read_cr2, NATIVE, READ_CR2, PVREG_RAX)

TPL_BEGIN(native, read_cr3)
	mov	%cr3, %rax
TPL_END1(native, read_cr3, NATIVE, READ_CR3, PVREG_RAX)

TPL_BEGIN(native, write_cr3)
	mov	%rdi, %cr3
TPL_END1(native, write_cr3, NATIVE, WRITE_CR3, 0)

TPL_BEGIN(native, flush_tlb_one)
	invlpg	(%rdi)
TPL_END1(native, flush_tlb_one, NATIVE, FLUSH_TLB_ONE, 0)

TPL_BEGIN(native, io_delay)
	outb	%al, $0x80
TPL_END1(native, io_delay, NATIVE, IO_DELAY, 0)

TPL_BEGIN(native, read_msr)
1:	rdmsr
2:	EXTABLE_RET(1b, 2b)
TPL_END(native, read_msr, NATIVE, READ_MSR, PVREG_RAX | PVREG_RDX)

TPL_BEGIN(native, write_msr)
1:	wrmsr
2:	EXTABLE_RET(1b, 2b)
TPL_END(native, write_msr, NATIVE, WRITE_MSR, 0)

TPL_BEGIN(native, cpuid)
	cpuid
TPL_END1(native, cpuid, NATIVE, CPUID, PVREG_RAX | PVREG_RBX | PVREG_RCX | PVREG_RDX)

/*
 * Page tables: the entry is a plain 8-byte store; natively a pte value is
 * already what the hardware wants, so make_pte/pte_val copy it.
 */
TPL_BEGIN(native, set_pte)
	mov	%rsi, (%rdi)
TPL_END1(native, set_pte, NATIVE, SET_PTE, 0)

TPL_BEGIN(native, set_pmd)
	mov	%rsi, (%rdi)
TPL_END1(native, set_pmd, NATIVE, SET_PMD, 0)

TPL_BEGIN(native, set_pud)
	mov	%rsi, (%rdi)
TPL_END1(native, set_pud, NATIVE, SET_PUD, 0)

TPL_BEGIN(native, set_pgd)
	mov	%rsi, (%rdi)
TPL_END1(native, set_pgd, NATIVE, SET_PGD, 0)

TPL_BEGIN(native, make_pte)
	mov	%rdi, %rax
TPL_END1(native, make_pte, NATIVE, MAKE_PTE, PVREG_RAX)

TPL_BEGIN(native, pte_val)
	mov	%rdi, %rax
TPL_END1(native, pte_val, NATIVE, PTE_VAL, PVREG_RAX)

/* What "nothing" is when it must be called (pvops=off/noinline): not a
 * template, since there are no bytes to copy. */
	.pushsection .pvop.text, "ax"
	.balign 16
FUNC(pvstub_nothing)
	ret
ENDFUNC(pvstub_nothing)
	.popsection

/*
 * The entry ops (entry/user.S, entry/traps.S). iret_user and sysret_user
 * leave for user mode and never return: a site reached by a call (the
 * unpatched indirect call, pvops=noinline) runs the *_call entry point
 * instead of the stub, which first drops the return address the call
 * pushed, so the iret frame is on top again. At the site %rsp points at
 * an iret frame (rip, cs, rflags, rsp, ss) and every other register
 * already holds its user value.
 */
TPL_BEGIN(native, swapgs)
	swapgs
TPL_END(native, swapgs, NATIVE, SWAPGS, 0)

TPL_BEGIN(native, iret_user)
	swapgs
	iretq
TPL_END(native, iret_user, NATIVE, IRET_USER, 0)

/* The frame's rip and rflags into rcx and r11, its rsp into rsp. */
TPL_BEGIN(native, sysret_user)
	pop	%rcx
	add	$8, %rsp
	pop	%r11
	pop	%rsp
	swapgs
	sysretq
TPL_END(native, sysret_user, NATIVE, SYSRET_USER, PVREG_RCX | PVREG_R11)

	.pushsection .pvop.text, "ax"
GLOBAL(pvstub_native_iret_user_call)
	lea	8(%rsp), %rsp
	swapgs
	iretq
GLOBAL(pvstub_native_sysret_user_call)
	lea	8(%rsp), %rsp
	pop	%rcx
	add	$8, %rsp
	pop	%r11
	pop	%rsp
	swapgs
	sysretq
	.popsection

/* ---------------------------------------------------------------- xen-pv */

/* The event mask is the interrupt flag: one byte in this CPU's vcpu_info. */
TPL_BEGIN(xen, irq_disable)
	movb	$1, %gs:PERCPU_VCPU_MASK
TPL_END(xen, irq_disable, XEN, IRQ_DISABLE, 0)

/*
 * Unmask, then if an event arrived while masked, have Xen deliver it now.
 * The call leaves the template: the engine's decoder finds it and re-aims
 * it at each site; the jz stays inside and moves with the bytes.
 */
TPL_BEGIN(xen, irq_enable)
	movb	$0, %gs:PERCPU_VCPU_MASK
	testb	$0xff, %gs:PERCPU_VCPU_PENDING
	/* jz 1f, spelled out so the template has a length the .if sees */
	.byte	0x74, 1f - 2f
2:	call	xen_force_upcall_thunk
1:
TPL_END(xen, irq_enable, XEN, IRQ_ENABLE, PVREG_RAX)

/*
 * IF (bit 9) = !mask, the other bits zero, in three instructions. The
 * mask byte is only ever 0 or 1 (this kernel writes 1, Xen writes 1 when
 * it delivers an event).
 */
TPL_BEGIN(xen, save_fl)
	movzbl	%gs:PERCPU_VCPU_MASK, %eax
	xor	$1, %eax
	shl	$9, %eax
TPL_END(xen, save_fl, XEN, SAVE_FL, PVREG_RAX)

TPL_BEGIN(xen, read_cr2)
	mov	%gs:PERCPU_VCPU_CR2, %rax
TPL_END(xen, read_cr2, XEN, READ_CR2, PVREG_RAX)

TPL_BEGIN(xen, read_cr3)
	mov	%gs:PERCPU_CR3, %rax
TPL_END(xen, read_cr3, XEN, READ_CR3, PVREG_RAX)

/* Xen's forced-emulation prefix: CPUID as Xen's policy says, not the host. */
TPL_BEGIN(xen, cpuid)
	ud2
	.ascii	"xen"
	cpuid
TPL_END(xen, cpuid, XEN, CPUID, PVREG_RAX | PVREG_RBX | PVREG_RCX | PVREG_RDX)

/*
 * Back to user mode through HYPERVISOR_iret (xen/arch-x86/xen-x86_64.h):
 * the hypercall page's iret stub pushes r11, rcx and rax, we push the
 * flags word under them. VGCF_in_syscall asks Xen for its sysret path,
 * which restores rax, rip, rflags and rsp and discards rcx and r11.
 * The *_call entry points overwrite the return address with the flags.
 */
#define XEN_IRET_STUB (hypercall_page + __HYPERVISOR_iret * 32)
/* jmp rel32, spelled out so the template has a length the .if sees */
#define JMP_IRET_STUB .byte 0xe9; .long XEN_IRET_STUB - . - 4

TPL_BEGIN(xen, iret_user)
	pushq	$0
	JMP_IRET_STUB
TPL_END(xen, iret_user, XEN, IRET_USER, 0)

TPL_BEGIN(xen, sysret_user)
	pushq	$VGCF_in_syscall
	JMP_IRET_STUB
TPL_END(xen, sysret_user, XEN, SYSRET_USER, PVREG_RCX | PVREG_R11)

	.pushsection .pvop.text, "ax"
GLOBAL(pvstub_xen_iret_user_call)
	movq	$0, (%rsp)
	jmp	XEN_IRET_STUB
GLOBAL(pvstub_xen_sysret_user_call)
	movq	$VGCF_in_syscall, (%rsp)
	jmp	XEN_IRET_STUB
	.popsection

/*
 * Never executed: scratch text for the text_poke tests. The linker script
 * places it so that it straddles a page boundary 32 bytes in, so a write
 * through the poke mapping crosses a page.
 */
	.section .pvop.scratch, "ax"
GLOBAL(pvop_poke_scratch)
	.fill	64, 1, 0xcc
