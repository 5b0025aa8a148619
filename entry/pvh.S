/*
 * pvh.S - native boot head: PVH entry from QEMU's -kernel loader.
 *
 * Entered in 32-bit flat protected mode, paging off, at the physical
 * address of pvh_start32, with %ebx = physical address of struct
 * hvm_start_info. We zero .bss, build boot page tables (identity and
 * PHYS_MAP_BASE: 4 GiB in 2 MiB pages; KERNEL_VBASE: the first GiB), enter
 * long mode and jump to the higher half, then call start_pvh(start_info).
 * guest/mmu.c later replaces the kernel mapping with 4 KiB pages and
 * removes the identity map.
 */
#include "asm.h"
#include "layout.h"

#define PA(x) ((x) - KERNEL_VBASE)

	.section .text.entry, "ax"
	.code32
FUNC(pvh_start32)
	cld
	cli
	mov	%ebx, %esi

	mov	$PA(__bss_start), %edi
	mov	$PA(__bss_end), %ecx
	sub	%edi, %ecx
	xor	%eax, %eax
	rep stosb

	mov	$PA(boot_stack_top), %esp

	/* 2048 large pages: 0..4 GiB. */
	mov	$PA(boot_pd), %edi
	mov	$0x83, %eax			/* present, writable, 2 MiB */
	mov	$2048, %ecx
1:	mov	%eax, (%edi)
	add	$LARGE_PAGE_SIZE, %eax
	add	$8, %edi
	loop	1b

	mov	$PA(boot_pdpt_low), %edi
	mov	$(PA(boot_pd) + 3), %eax
	mov	$4, %ecx
2:	mov	%eax, (%edi)
	add	$PAGE_SIZE, %eax
	add	$8, %edi
	loop	2b

	movl	$(PA(boot_pd) + 3), PA(boot_pdpt_high) + 510 * 8
	movl	$(PA(boot_pdpt_low) + 3), PA(boot_pml4)
	movl	$(PA(boot_pdpt_low) + 3), PA(boot_pml4) + 256 * 8
	movl	$(PA(boot_pdpt_high) + 3), PA(boot_pml4) + 511 * 8

	mov	%cr4, %eax
	or	$0x20, %eax			/* PAE */
	mov	%eax, %cr4
	mov	$PA(boot_pml4), %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx		/* EFER */
	rdmsr
	or	$0x100, %eax			/* LME */
	wrmsr
	mov	%cr0, %eax
	or	$0x80010001, %eax		/* PG | WP | PE */
	mov	%eax, %cr0

	lgdt	PA(boot_gdt_ptr32)
	ljmp	$GDT_KERNEL_CS, $PA(3f)

	.code64
3:	movabs	$4f, %rax
	jmp	*%rax
4:	mov	$GDT_KERNEL_DS, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	lgdt	boot_gdt_ptr64(%rip)
	lea	boot_stack_top(%rip), %rsp
	xor	%ebp, %ebp
	mov	%esi, %edi
	call	start_pvh
	ud2
ENDFUNC(pvh_start32)

/*
 * Xen PV entry: 64-bit, paging on (Xen's page tables), ring 3,
 * %rsi = start_info. Nothing native may run before start_xen_pv knows it
 * is a PV guest.
 */
FUNC(xen_start)
	cld
	lea	boot_stack_top(%rip), %rsp
	xor	%ebp, %ebp
	mov	%rsi, %rdi
	call	start_xen_pv
	ud2
ENDFUNC(xen_start)

	.section .data.page_aligned, "aw"
	.balign 16
GLOBAL(boot_gdt)
	.quad	0
	.quad	0x00af9a000000ffff		/* 0x08: 64-bit code, DPL 0 */
	.quad	0x00cf92000000ffff		/* 0x10: data, DPL 0 */
GLOBAL(boot_gdt_tss)
	.quad	0, 0				/* 0x18: TSS (each CPU's own GDT, guest/desc.c) */
boot_gdt_end:
	.balign 8
boot_gdt_ptr32:
	.word	boot_gdt_end - boot_gdt - 1
	.long	PA(boot_gdt)
	.balign 8
GLOBAL(boot_gdt_ptr64)
	.word	boot_gdt_end - boot_gdt - 1
	.quad	boot_gdt

	.section .bss.page_aligned, "aw", @nobits
	.balign PAGE_SIZE
GLOBAL(boot_pml4)
	.skip	PAGE_SIZE
GLOBAL(boot_pdpt_low)
	.skip	PAGE_SIZE
GLOBAL(boot_pdpt_high)
	.skip	PAGE_SIZE
GLOBAL(boot_pd)
	.skip	4 * PAGE_SIZE
GLOBAL(boot_stack)
	.skip	BOOT_STACK_SIZE
GLOBAL(boot_stack_top)
