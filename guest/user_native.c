/*
 * user_native.c - the user task natively and on KVM: the system call
 * MSRs, and the task's pages in the kernel's own page tables (with the
 * user bit on every level; the kernel's pages have none, so the task
 * cannot touch them).
 */
#include "kernel.h"
#include "layout.h"
#include "mm.h"
#include "pvops.h"
#include "user.h"

#define MSR_EFER 0xc0000080
#define EFER_SCE (1ULL << 0)
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_FMASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
/* Cleared on syscall: TF, IF, DF, IOPL, NT, AC. */
#define SYSCALL_FMASK 0x47700

extern char uentry_syscall_native[];

void native_user_init(void)
{
	write_msr(MSR_EFER, read_msr(MSR_EFER) | EFER_SCE);
	/* syscall: CS = 0x08, SS = 0x10; sysretq: CS = base + 16, SS = base + 8 */
	write_msr(MSR_STAR, (uint64_t)(GDT_USER_BASE | 3) << 48 |
				(uint64_t)GDT_KERNEL_CS << 32);
	write_msr(MSR_LSTAR, (uint64_t)uentry_syscall_native);
	write_msr(MSR_FMASK, SYSCALL_FMASK);
	/* The task's GS base, which swapgs exchanges with the kernel's. */
	write_msr(MSR_KERNEL_GS_BASE, 0);
	user_cs = GDT_USER_CS | 3;
	user_ss = GDT_USER_DS | 3;
}

static uint64_t *user_pte(uint64_t va)
{
	uint64_t *t = phys_to_virt(read_cr3() & PTE_ADDR);

	for (int l = 4; l > 1; l--) {
		uint64_t *e = &t[(va >> (12 + 9 * (l - 1))) & 511];
		if (!(*e & PTE_P)) {
			uint64_t pa = pmm_alloc();
			if (!pa)
				panic("user: out of memory for page tables");
			*e = pa | PTE_P | PTE_W | PTE_U;
		}
		if ((*e & PTE_PS) || !(*e & PTE_U))
			panic("user: %lx lies in a kernel mapping", va);
		t = phys_to_virt(*e & PTE_ADDR);
	}
	return &t[(va >> 12) & 511];
}

void native_user_map(uint64_t va, const void *kva, bool writable, bool exec)
{
	*user_pte(va) = ((uint64_t)kva - KERNEL_VBASE) | PTE_P | PTE_U |
			(writable ? PTE_W : 0) | (exec ? 0 : mmu_nx_bit());
	flush_tlb_one(va);
}
