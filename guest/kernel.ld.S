/*
 * kernel.ld.S - link map of tinypv (run through cpp for layout.h).
 *
 * One image, three ways in: QEMU's PVH loader reads the PHYS32_ENTRY note
 * and enters pvh_start32 at its physical address; Xen's PV builder maps the
 * image at KERNEL_VBASE + physical and enters xen_start (also e_entry).
 * Text, read-only data and data live in separate page-aligned segments so
 * that text can be mapped read-only and everything else no-execute.
 */
#include "layout.h"
#include "patch_abi.h"

/* struct patch_state (patch/include/patch.h asserts the same size). */
#define PATCH_STATE_SIZE 64

OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(xen_start)

PHDRS
{
	text PT_LOAD FLAGS(5);
	user PT_LOAD FLAGS(5);
	rodata PT_LOAD FLAGS(4);
	data PT_LOAD FLAGS(6);
	note PT_NOTE FLAGS(4);
}

SECTIONS
{
	. = KERNEL_VBASE + KERNEL_PBASE;
	_kernel_start = .;

	.text : AT(ADDR(.text) - KERNEL_VBASE) {
		_text_start = .;
		*(.text.entry)
		*(.text .text.*)
		/* Inline templates are copied into sites, never executed here
		 * (only through the pvops=off/noinline call stubs). */
		*(.pvop.text)
		/* 64 bytes of scratch that cross a page boundary at +32. */
		. = ALIGN(. + 32, PAGE_SIZE) - 32;
		*(.pvop.scratch)
		. = ALIGN(PAGE_SIZE);
		/* Xen writes its hypercall stubs here while loading the image. */
		hypercall_page = .;
		. += PAGE_SIZE;
		_text_end = .;
	} :text

	/* The user task's program (guest/user_prog.S), one page mapped
	 * user-accessible at USER_CODE_VA; never executed where it is. */
	. = ALIGN(PAGE_SIZE);
	.user.text : AT(ADDR(.user.text) - KERNEL_VBASE) {
		*(.user.text)
	} :user

	. = ALIGN(PAGE_SIZE);
	.rodata : AT(ADDR(.rodata) - KERNEL_VBASE) {
		_rodata_start = .;
		*(.rodata .rodata.*)
	} :rodata

	/* Patch-site records of every kind (patch/include/patch_abi.h), read
	 * at boot and by scripts/check_sites.py. */
	.patch.sites : AT(ADDR(.patch.sites) - KERNEL_VBASE) ALIGN(16) {
		__patch_sites_start = .;
		KEEP(*(.patch.sites))
		KEEP(*(SORT(.patch.sites.*)))
		__patch_sites_end = .;
	} :rodata
	.pvop.templates : AT(ADDR(.pvop.templates) - KERNEL_VBASE) ALIGN(16) {
		__pvop_templates_start = .;
		KEEP(*(.pvop.templates))
		__pvop_templates_end = .;
	} :rodata
	/* CPU-feature alternatives (alt/): each site's descriptor, and the
	 * original and replacement bytes the engine copies from (never run
	 * here: read-only data). */
	.alt.desc : AT(ADDR(.alt.desc) - KERNEL_VBASE) ALIGN(4) {
		__alt_desc_start = .;
		KEEP(*(.alt.desc))
		__alt_desc_end = .;
	} :rodata
	.alt.repl : AT(ADDR(.alt.repl) - KERNEL_VBASE) {
		KEEP(*(.alt.repl))
	} :rodata
	.ktest.cases : AT(ADDR(.ktest.cases) - KERNEL_VBASE) ALIGN(8) {
		__ktest_start = .;
		KEEP(*(.ktest.cases))
		__ktest_end = .;
	} :rodata
	.pvop.asm : AT(ADDR(.pvop.asm) - KERNEL_VBASE) ALIGN(16) {
		__pvop_asm_start = .;
		KEEP(*(.pvop.asm))
		__pvop_asm_end = .;
	} :rodata
	.extable : AT(ADDR(.extable) - KERNEL_VBASE) ALIGN(8) {
		__extable_start = .;
		KEEP(*(.extable))
		__extable_end = .;
	} :rodata

	.notes : AT(ADDR(.notes) - KERNEL_VBASE) {
		KEEP(*(.note.tinypv))
	} :rodata :note

	. = ALIGN(PAGE_SIZE);
	_rodata_end = .;

	.data : AT(ADDR(.data) - KERNEL_VBASE) {
		_data_start = .;
		*(.data.page_aligned)
		*(.data .data.*)
	} :data

	.bss : AT(ADDR(.bss) - KERNEL_VBASE) {
		. = ALIGN(PAGE_SIZE);
		__bss_start = .;
		*(.bss.page_aligned)
		*(.bss .bss.*)
		*(COMMON)
		/* The engine's state of each site: one entry per record. */
		. = ALIGN(8);
		__patch_state_start = .;
		. += (__patch_sites_end - __patch_sites_start) / PATCH_RECORD_SIZE * PATCH_STATE_SIZE;
		__patch_state_end = .;
		. = ALIGN(PAGE_SIZE);
		__bss_end = .;
	} :data
	_kernel_end = .;

	/DISCARD/ : {
		*(.comment) *(.eh_frame) *(.note.GNU-stack) *(.note.gnu.property)
	}
}

/* What the code relies on. */
ASSERT(_text_start == KERNEL_VBASE + KERNEL_PBASE, "text must start at KERNEL_PBASE")
ASSERT((hypercall_page & (PAGE_SIZE - 1)) == 0, "hypercall page must be page aligned")
ASSERT(((pvop_poke_scratch + 32) & (PAGE_SIZE - 1)) == 0, "poke scratch must straddle a page")
ASSERT((_rodata_start & (PAGE_SIZE - 1)) == 0, "rodata must start on a page")
ASSERT((_data_start & (PAGE_SIZE - 1)) == 0, "data must start on a page")
ASSERT(_kernel_end - KERNEL_VBASE < 0x40000000, "image must fit the first GiB")
ASSERT((__patch_sites_end - __patch_sites_start) % PATCH_RECORD_SIZE == 0, "patch site records are 16 bytes")
ASSERT(__patch_sites_end > __patch_sites_start, "no patch sites: the records were dropped")
ASSERT(_text_end - _text_start <= POKE_MAX_SIZE, "text must fit the poke mapping's one page table")
ASSERT((__pvop_templates_end - __pvop_templates_start) % 16 == 0, "pvop template records are 16 bytes")
ASSERT((__alt_desc_end - __alt_desc_start) % 16 == 0, "alternative descriptors are 16 bytes")
ASSERT((__ktest_end - __ktest_start) % 24 == 0, "ktest records are 24 bytes")
ASSERT(__user_text_end - __user_text_start == PAGE_SIZE, "the user program is one page")
ASSERT((__pvop_asm_end - __pvop_asm_start) % 16 == 0, "pvop asm site records are 16 bytes")
ASSERT((__extable_end - __extable_start) % 16 == 0, "extable records are 16 bytes")
