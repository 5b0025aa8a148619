/*
 * pvop_abi.h - the pvop ABI: op numbers, slot sizes, register masks, site
 * flags and the template records. Sites themselves are patch-engine records
 * of kind PATCH_KIND_PVOP (patch/include/patch_abi.h). Shared by C,
 * assembly, the host tests and (by name) scripts/check_sites.py.
 *
 * Register convention of a site (doc/pvops.md tells the full story):
 *   - Inputs and outputs sit in fixed registers chosen per op (below).
 *   - A site may destroy only the registers in its clobber mask; every
 *     other register, including the other caller-saved ones, survives.
 *     Out-of-line C implementations are reached through register-saving
 *     thunks (pvops/thunks.S) so they keep that promise.
 *   - Flags and memory are always clobbered.
 *
 * Op             in              out          site clobbers
 * irq_*          restore_fl:rdi  save_fl:rax  rax
 * halts          -               -            rax
 * read_cr2/3     -               rax          rax
 * write_cr3      rdi             -            rax
 * flush_tlb_one  rdi (va)        -            rax
 * io_delay       -               -            rax
 * read_msr       ecx             edx:eax      rax rdx
 * write_msr      ecx, edx:eax    -            rax rdx
 * cpuid          eax, ecx        eax..edx     rax rbx rcx rdx
 * apic_eoi       -               -            rax
 * clock_read     -               rax (ns)     rax
 * send_ipi       rdi (cpu<<8|vec) -           rax
 * send_ipi_mask  rdi (mask<<8|vec) -          rax
 * flush_tlb_others rdi (va), rsi (mask) -     rax
 * lock_wait      rdi (ptr), rsi (val) -       rax
 * lock_kick      rdi (cpu)       -            rax
 * set_pte..pgd   rdi (entry), rsi (value) -   rax
 * make_pte       rdi (pa|flags)  rax (machine) rax
 * pte_val        rdi (machine)   rax (pa|flags) rax
 * alloc_pt       rdi (pa), rsi (level) -      rax
 * release_pt     rdi (pa), rsi (level) -      rax
 * lazy_mmu_*     -               -            rax
 * The entry ops (entry/user.S, entry/traps.S; sites in assembly):
 * swapgs         -               -            - (CLBR_NONE)
 * iret_user      iret frame at rsp (does not return)   -
 * sysret_user    iret frame at rsp (does not return)   rcx r11
 * load_sp0       rdi (stack top) -            rax
 *
 * The slot of an op is the number of bytes every site of that op occupies:
 * the 6-byte indirect call padded with NOPs to the longest inline template
 * of any backend. The assembler checks each template against its slot.
 */
#ifndef TINYPV_PVOP_ABI_H
#define TINYPV_PVOP_ABI_H

/* Op numbers, usable from assembly. Names: pvop_names[] in pvops/ops.c. */
#define PVOP_IRQ_DISABLE 0
#define PVOP_IRQ_ENABLE 1
#define PVOP_SAVE_FL 2
#define PVOP_RESTORE_FL 3
#define PVOP_SAFE_HALT 4
#define PVOP_HALT 5
#define PVOP_READ_CR2 6
#define PVOP_READ_CR3 7
#define PVOP_WRITE_CR3 8
#define PVOP_FLUSH_TLB_ONE 9
#define PVOP_IO_DELAY 10
#define PVOP_READ_MSR 11
#define PVOP_WRITE_MSR 12
#define PVOP_CPUID 13
#define PVOP_APIC_EOI 14
#define PVOP_CLOCK_READ 15
#define PVOP_SEND_IPI 16
#define PVOP_SEND_IPI_MASK 17
#define PVOP_FLUSH_TLB_OTHERS 18
#define PVOP_LOCK_WAIT 19
#define PVOP_LOCK_KICK 20
#define PVOP_SET_PTE 21
#define PVOP_SET_PMD 22
#define PVOP_SET_PUD 23
#define PVOP_SET_PGD 24
#define PVOP_MAKE_PTE 25
#define PVOP_PTE_VAL 26
#define PVOP_ALLOC_PT 27
#define PVOP_RELEASE_PT 28
#define PVOP_LAZY_MMU_ENTER 29
#define PVOP_LAZY_MMU_LEAVE 30
#define PVOP_SWAPGS 31
#define PVOP_IRET_USER 32
#define PVOP_SYSRET_USER 33
#define PVOP_LOAD_SP0 34
#define PVOP_NR 35

#define PVOP_SLOT_IRQ_DISABLE 9
#define PVOP_SLOT_IRQ_ENABLE 25
#define PVOP_SLOT_SAVE_FL 15
#define PVOP_SLOT_RESTORE_FL 6
#define PVOP_SLOT_SAFE_HALT 6
#define PVOP_SLOT_HALT 6
#define PVOP_SLOT_READ_CR2 9
#define PVOP_SLOT_READ_CR3 9
#define PVOP_SLOT_WRITE_CR3 6
#define PVOP_SLOT_FLUSH_TLB_ONE 6
#define PVOP_SLOT_IO_DELAY 6
#define PVOP_SLOT_READ_MSR 6
#define PVOP_SLOT_WRITE_MSR 6
#define PVOP_SLOT_CPUID 7
#define PVOP_SLOT_APIC_EOI 6
#define PVOP_SLOT_CLOCK_READ 6
#define PVOP_SLOT_SEND_IPI 6
#define PVOP_SLOT_SEND_IPI_MASK 6
#define PVOP_SLOT_FLUSH_TLB_OTHERS 6
#define PVOP_SLOT_LOCK_WAIT 6
#define PVOP_SLOT_LOCK_KICK 6
#define PVOP_SLOT_SET_PTE 6
#define PVOP_SLOT_SET_PMD 6
#define PVOP_SLOT_SET_PUD 6
#define PVOP_SLOT_SET_PGD 6
#define PVOP_SLOT_MAKE_PTE 6
#define PVOP_SLOT_PTE_VAL 6
#define PVOP_SLOT_ALLOC_PT 6
#define PVOP_SLOT_RELEASE_PT 6
#define PVOP_SLOT_LAZY_MMU_ENTER 6
#define PVOP_SLOT_LAZY_MMU_LEAVE 6
#define PVOP_SLOT_SWAPGS 6
#define PVOP_SLOT_IRET_USER 7
#define PVOP_SLOT_SYSRET_USER 14
#define PVOP_SLOT_LOAD_SP0 6

/* The unpatched site: call *pv_ops+8*op(%rip), ff 15 disp32. */
#define PVOP_INDIRECT_CALL_LEN 6
#define PVOP_DIRECT_CALL_LEN 5

/* Register mask bits, in the hardware encoding order. */
#define PVREG_RAX (1 << 0)
#define PVREG_RCX (1 << 1)
#define PVREG_RDX (1 << 2)
#define PVREG_RBX (1 << 3)
#define PVREG_RSP (1 << 4)
#define PVREG_RBP (1 << 5)
#define PVREG_RSI (1 << 6)
#define PVREG_RDI (1 << 7)
#define PVREG_R8 (1 << 8)
#define PVREG_R9 (1 << 9)
#define PVREG_R10 (1 << 10)
#define PVREG_R11 (1 << 11)
#define PVREG_ALL 0xfef /* every mask bit but rsp */

/*
 * The clobber mask every site of an op carries (the table above). The build
 * checker and the boot refuse a site record with any other mask.
 */
#define PVOP_CLOB_IRQ_DISABLE PVREG_RAX
#define PVOP_CLOB_IRQ_ENABLE PVREG_RAX
#define PVOP_CLOB_SAVE_FL PVREG_RAX
#define PVOP_CLOB_RESTORE_FL PVREG_RAX
#define PVOP_CLOB_SAFE_HALT PVREG_RAX
#define PVOP_CLOB_HALT PVREG_RAX
#define PVOP_CLOB_READ_CR2 PVREG_RAX
#define PVOP_CLOB_READ_CR3 PVREG_RAX
#define PVOP_CLOB_WRITE_CR3 PVREG_RAX
#define PVOP_CLOB_FLUSH_TLB_ONE PVREG_RAX
#define PVOP_CLOB_IO_DELAY PVREG_RAX
#define PVOP_CLOB_READ_MSR (PVREG_RAX | PVREG_RDX)
#define PVOP_CLOB_WRITE_MSR (PVREG_RAX | PVREG_RDX)
#define PVOP_CLOB_CPUID (PVREG_RAX | PVREG_RBX | PVREG_RCX | PVREG_RDX)
#define PVOP_CLOB_APIC_EOI PVREG_RAX
#define PVOP_CLOB_CLOCK_READ PVREG_RAX
#define PVOP_CLOB_SEND_IPI PVREG_RAX
#define PVOP_CLOB_SEND_IPI_MASK PVREG_RAX
#define PVOP_CLOB_FLUSH_TLB_OTHERS PVREG_RAX
#define PVOP_CLOB_LOCK_WAIT PVREG_RAX
#define PVOP_CLOB_LOCK_KICK PVREG_RAX
#define PVOP_CLOB_SET_PTE PVREG_RAX
#define PVOP_CLOB_SET_PMD PVREG_RAX
#define PVOP_CLOB_SET_PUD PVREG_RAX
#define PVOP_CLOB_SET_PGD PVREG_RAX
#define PVOP_CLOB_MAKE_PTE PVREG_RAX
#define PVOP_CLOB_PTE_VAL PVREG_RAX
#define PVOP_CLOB_ALLOC_PT PVREG_RAX
#define PVOP_CLOB_RELEASE_PT PVREG_RAX
#define PVOP_CLOB_LAZY_MMU_ENTER PVREG_RAX
#define PVOP_CLOB_LAZY_MMU_LEAVE PVREG_RAX
#define PVOP_CLOB_SWAPGS 0
#define PVOP_CLOB_IRET_USER 0
#define PVOP_CLOB_SYSRET_USER (PVREG_RCX | PVREG_R11)
#define PVOP_CLOB_LOAD_SP0 PVREG_RAX

/*
 * Site flags: benchmark sites pin their dispatch mode and may pin their
 * padding style (PVOP_SITE_PAD(style), style + 1 in bits 4-6).
 */
#define PVOP_SITE_FORCE_INDIRECT 0x1
#define PVOP_SITE_FORCE_CALL 0x2
#define PVOP_SITE_FORCE_INLINE 0x4
#define PVOP_SITE_FORCE_MASK 0x7
#define PVOP_SITE_PAD_SHIFT 4
#define PVOP_SITE_PAD_MASK 0x70
#define PVOP_SITE_PAD(style) (((style) + 1) << PVOP_SITE_PAD_SHIFT)

/* Backends, as recorded in template records. */
#define PVOP_BACKEND_NATIVE 0
#define PVOP_BACKEND_KVM 1
#define PVOP_BACKEND_XEN 2
#define PVOP_BACKEND_NR 3

#ifndef __ASSEMBLER__
#include <stdint.h>

/*
 * One record per inline template, in section .pvop.templates (16 bytes).
 * The template's bytes are followed by a `ret`, so the same bytes are also
 * a function with the op's register convention (what pvops=off and
 * pvops=noinline call).
 */
struct pvop_template {
	uint64_t addr;
	uint8_t len; /* bytes copied into a site (without the ret) */
	uint8_t op;
	uint16_t clobbers; /* PVREG_* the bytes destroy */
	uint8_t backend;   /* PVOP_BACKEND_* */
	uint8_t reserved;  /* 0 (relocation is found by decoding) */
	uint8_t
	    one_insn; /* one instruction that may take prefixes as padding */
	uint8_t reserved2;
};

_Static_assert(sizeof(struct pvop_template) == 16,
	       "template record is 16 bytes");
#endif

#endif
