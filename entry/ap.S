/*
 * ap.S - how an application processor (AP) gets from its start-up IPI to
 * C: the real-mode trampoline, and the 64-bit AP boot heads.
 *
 * Native and KVM. ap_trampoline .. ap_trampoline_end is data here: the
 * boot CPU copies it to AP_TRAMPOLINE_PA (below 1 MiB, layout.h), fills in
 * ap_trampoline_params and sends INIT-SIPI-SIPI with vector
 * AP_TRAMPOLINE_PA >> 12 (guest/smp_native.c). The AP starts in real mode
 * at CS = 0x800, IP = 0, and goes
 *
 *   16-bit: lgdt (the trampoline's own GDT), CR0.PE, far jump
 *   32-bit: CR4.PAE, CR3 = the trampoline tables (the kernel's PML4 plus
 *           an identity map of the first 2 MiB: mmu_trampoline_tables),
 *           EFER.LME (and NXE when the kernel uses NX), CR0.PG|WP
 *   64-bit: still at the low copy; its stack, percpu and the kernel's CR3
 *           from the parameters, then an absolute jump to pvh_ap_start64.
 *
 * pvh_ap_start64 (kernel text, higher half) loads the boot GDT through its
 * virtual address and reloads the segments (the trampoline's GDT is about
 * to vanish), switches to the kernel's page tables (no identity map from
 * here on), points MSR_GS_BASE at the AP's struct percpu and calls
 * ap_main_native(percpu). Interrupts stay off throughout; the IDT is
 * loaded first thing in C (trap_init_cpu), so a fault in the few
 * instructions before that is a triple fault, which QEMU turns into a
 * reset of the whole machine (with -no-reboot: QEMU exits, and the harness
 * reports a guest reset, not a hang).
 *
 * Xen PV: xen_ap_start is where VCPUOP_initialise points a new vCPU: the
 * context Xen loads already has the stack, %rdi = percpu and the GS base.
 */
#include "asm.h"
#include "layout.h"

/* A trampoline label's address in the low copy. */
#define TR(x) (AP_TRAMPOLINE_PA + ((x) - ap_trampoline))
#define TR_CS32 0x08
#define TR_DS 0x10
#define TR_CS64 0x18

	.section .rodata.ap_trampoline, "a"
	.balign 16
	.code16
GLOBAL(ap_trampoline)
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	(tr_gdt_ptr - ap_trampoline)
	/* An explicit CR0, not INIT's: that one has CD and NW set, which
	 * would leave the AP running uncached on real hardware. */
	mov	$1, %eax			/* PE */
	mov	%eax, %cr0
	ljmpl	$TR_CS32, $TR(tr_32)

	.code32
tr_32:
	mov	$TR_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax			/* PAE */
	mov	%eax, %cr4
	mov	TR(tr_cr3), %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx		/* EFER */
	rdmsr
	or	TR(tr_efer), %eax		/* LME, maybe NXE */
	wrmsr
	mov	%cr0, %eax
	or	$0x80010001, %eax		/* PG | WP | PE */
	mov	%eax, %cr0
	ljmp	$TR_CS64, $TR(tr_64)

	.code64
tr_64:
	mov	tr_stack(%rip), %rsp
	mov	tr_percpu(%rip), %rdi
	mov	tr_kernel_cr3(%rip), %rsi
	jmp	*tr_entry(%rip)

	.balign 8
tr_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff		/* 0x08: 32-bit code */
	.quad	0x00cf92000000ffff		/* 0x10: data */
	.quad	0x00af9a000000ffff		/* 0x18: 64-bit code */
tr_gdt_end:
tr_gdt_ptr:
	.word	tr_gdt_end - tr_gdt - 1
	.long	TR(tr_gdt)

	/* struct ap_trampoline_params (guest/smp_native.c), in this order. */
	.balign 8
GLOBAL(ap_trampoline_params)
tr_cr3:		.quad	0	/* the trampoline tables, below 4 GiB */
tr_efer:	.quad	0	/* EFER bits to set */
tr_kernel_cr3:	.quad	0
tr_stack:	.quad	0
tr_percpu:	.quad	0
tr_entry:	.quad	0	/* pvh_ap_start64 */
GLOBAL(ap_trampoline_end)

	.section .text.entry, "ax"
/* %rdi = struct percpu, %rsi = the kernel's CR3, %rsp = the AP's stack. */
FUNC(pvh_ap_start64)
	lgdt	boot_gdt_ptr64(%rip)
	pushq	$GDT_KERNEL_CS
	lea	1f(%rip), %rax
	push	%rax
	lretq
1:	mov	$GDT_KERNEL_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%rsi, %cr3
	mov	$0xc0000101, %ecx		/* MSR_GS_BASE */
	mov	%rdi, %rax
	mov	%rdi, %rdx
	shr	$32, %rdx
	wrmsr
	xor	%ebp, %ebp
	call	ap_main_native
	ud2
ENDFUNC(pvh_ap_start64)

/* Xen PV: a new vCPU, %rdi = struct percpu, stack and GS base set. */
FUNC(xen_ap_start)
	cld
	xor	%ebp, %ebp
	call	xen_ap_main
	ud2
ENDFUNC(xen_ap_start)
