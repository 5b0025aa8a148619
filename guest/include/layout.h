/*
 * layout.h - the virtual and physical memory map, shared by C, assembly and
 * the linker script.
 *
 *   0xffffffff80000000  KERNEL_VBASE: the kernel image. Physical 0 maps
 *                       here, so the image loaded at 1 MiB runs at
 *                       KERNEL_VBASE + 1 MiB. Xen PV uses the same base
 *                       (XEN_ELFNOTE_VIRT_BASE), so one link serves both.
 *   0xffff800000000000  PHYS_MAP_BASE (native only): all RAM below 4 GiB,
 *                       2 MiB pages, read/write, no-execute. Not present
 *                       under Xen PV (Xen's own range, its M2P table is
 *                       there): all of dom0's memory is at KERNEL_VBASE +
 *                       pa instead, Xen's mapping extended at boot
 *                       (guest/xen/start.c).
 *
 *   0xffffffff00000000  MMU_TEST_BASE: 1 GiB the MMU tests and benchmarks
 *                       map and unmap through the MMU pvops (tests/kernel/
 *                       test_mmu.c, guest/bench.c); in the top PML4 slot,
 *                       which every platform already has, so the tables
 *                       below it are shared with the poke tables' copy.
 *
 *   0x0000008000000000  POKE_BASE: the writable alias of kernel text, present
 *                       only in the private poke page tables that the patch
 *                       engine loads while it writes (guest/patch_seam.c);
 *                       no other page table maps anything here.
 *
 * Low memory seen natively: 0x0-0x100000 is firmware/BIOS, the image starts
 * at KERNEL_PBASE. One page of it, AP_TRAMPOLINE_PA, receives a copy of the
 * AP start-up trampoline (entry/ap.S) while the other CPUs are started: a
 * start-up IPI can only point below 1 MiB, at a page boundary.
 */
#ifndef TINYPV_LAYOUT_H
#define TINYPV_LAYOUT_H

#ifdef __ASSEMBLER__
#define _UL(x) x
#else
#define _UL(x) x##UL
#endif

#define PAGE_SHIFT 12
#define PAGE_SIZE _UL(4096)
#define LARGE_PAGE_SIZE _UL(0x200000)

#define KERNEL_VBASE _UL(0xffffffff80000000)
#define KERNEL_PBASE _UL(0x100000)
#define PHYS_MAP_BASE _UL(0xffff800000000000)
#define PHYS_MAP_SIZE _UL(0x100000000)
#define POKE_BASE _UL(0x0000008000000000)
#define MMU_TEST_BASE _UL(0xffffffff00000000)
#define POKE_MAX_SIZE _UL(0x200000) /* one page table: text up to 2 MiB */

/*
 * The user task's address space (guest/user.c): PML4 slot 2, away from
 * the poke slot (1) and the AP trampoline's identity slot (0). One code
 * page, one data page, an unmapped page (the tests' unmapped pointer and
 * the benchmark's handled fault), one stack page.
 */
#define USER_BASE _UL(0x0000010000000000)
#define USER_CODE_VA USER_BASE
#define USER_DATA_VA (USER_BASE + 0x1000)
#define USER_HOLE_VA (USER_BASE + 0x2000)
#define USER_STACK_VA (USER_BASE + 0x3000)
#define USER_END_VA (USER_BASE + 0x4000)

#define BOOT_STACK_SIZE (4 * 4096)

#define AP_TRAMPOLINE_PA _UL(0x8000) /* start-up IPI vector 0x08 */

/* GDT selectors of the native boot GDT (entry/pvh.S). */
#define GDT_KERNEL_CS 0x08
#define GDT_KERNEL_DS 0x10
#define GDT_TSS 0x18 /* two entries */
/* User segments, in the order sysret needs: STAR[63:48] = GDT_USER_BASE. */
#define GDT_USER_BASE 0x28 /* 32-bit user code (never used) */
#define GDT_USER_DS 0x30
#define GDT_USER_CS 0x38

/* isa-debug-exit: QEMU exits with (code << 1) | 1. */
#define DEBUG_EXIT_PORT 0xf4
#define EXIT_PASS 0x10	/* QEMU status 33 */
#define EXIT_FAIL 0x11	/* QEMU status 35 */
#define EXIT_PANIC 0x12 /* QEMU status 37 */

#endif
