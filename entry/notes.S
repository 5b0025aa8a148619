/*
 * notes.S - the ELF notes that make one image bootable two ways.
 *
 * PHYS32_ENTRY is what QEMU's -kernel loader needs for an ELF64 (PVH boot).
 * The rest are Xen's PV notes: where to enter, where the image lives, where
 * Xen should write the hypercall page. Values come from xen/elfnote.h.
 */
#include <xen/elfnote.h>
#include "asm.h"
#include "layout.h"

ELFNOTE(XEN_ELFNOTE_PHYS32_ENTRY, .long, pvh_start32 - KERNEL_VBASE)
ELFNOTE(XEN_ELFNOTE_GUEST_OS, .asciz, "tinypv")
ELFNOTE(XEN_ELFNOTE_GUEST_VERSION, .asciz, "0.1")
ELFNOTE(XEN_ELFNOTE_XEN_VERSION, .asciz, "xen-3.0")
ELFNOTE(XEN_ELFNOTE_LOADER, .asciz, "generic")
ELFNOTE(XEN_ELFNOTE_VIRT_BASE, .quad, KERNEL_VBASE)
ELFNOTE(XEN_ELFNOTE_PADDR_OFFSET, .quad, 0)
ELFNOTE(XEN_ELFNOTE_ENTRY, .quad, xen_start)
ELFNOTE(XEN_ELFNOTE_HYPERCALL_PAGE, .quad, hypercall_page)
