/*
 * user.c - the user task under Xen PV.
 *
 * A 64-bit PV kernel runs in ring 3 like its user mode, so Xen keeps the
 * two apart by page tables: while the vCPU is in user mode Xen loads the
 * user L4 (MMUEXT_NEW_USER_BASEPTR), which here maps only the task's
 * slot; the kernel's L4 maps that slot too (the same L3), so the kernel
 * reads the task's memory directly. A syscall from user mode is bounced
 * by Xen to the CALLBACKTYPE_syscall entry on the stack given to
 * HYPERVISOR_stack_switch (the load_sp0 pvop); the way back is
 * HYPERVISOR_iret (the iret_user and sysret_user pvops). Xen also swaps
 * the GS bases itself when it changes mode: swapgs is nothing here.
 */
#include "user.h"
#include "hypercall.h"
#include "kernel.h"
#include "layout.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "xen.h"

extern char uentry_syscall_xen[];

const uint64_t *xen_user_l4;
static uint64_t *ul3, *ul2, *ul1;

#define SLOT(va, level) (((va) >> (12 + 9 * ((level)-1))) & 511)

static uint64_t *new_table(void)
{
	uint64_t pa = pmm_alloc();
	if (!pa)
		panic("xen: no memory for the user page tables");
	return phys_to_virt(pa);
}

static uint64_t entry_of(const void *table, uint64_t flags)
{
	return xen_virt_to_mfn(table) << PAGE_SHIFT | flags;
}

uint64_t xen_load_sp0(uint64_t top)
{
	if (xen_hypercall2(__HYPERVISOR_stack_switch, FLAT_KERNEL_SS, top))
		panic("xen: stack_switch to %lx refused", top);
	return 0;
}

void xen_user_init(void)
{
	struct callback_register cb = {
	    .type = CALLBACKTYPE_syscall,
	    .flags = CALLBACKF_mask_events,
	    .address = (unsigned long)uentry_syscall_xen,
	};
	if (HYPERVISOR_callback_op(CALLBACKOP_register, &cb))
		panic("xen: cannot register the syscall callback");
	user_cs = FLAT_USER_CS64;
	user_ss = FLAT_USER_SS64;
	ul3 = new_table();
	ul2 = new_table();
	ul1 = new_table();
	ul3[SLOT(USER_BASE, 3)] = entry_of(ul2, PTE_P | PTE_W | PTE_U | PTE_A);
	ul2[SLOT(USER_BASE, 2)] = entry_of(ul1, PTE_P | PTE_W | PTE_U | PTE_A);
}

/* Before xen_user_activate() only: the L1 is still an ordinary page. */
void xen_user_map(uint64_t va, const void *kva, bool writable, bool exec)
{
	BUG_ON(xen_user_l4 || va < USER_BASE ||
	       va >= USER_BASE + LARGE_PAGE_SIZE);
	ul1[SLOT(va, 1)] = entry_of(kva, PTE_P | PTE_U | PTE_A |
					     (writable ? PTE_W | PTE_D : 0) |
					     (exec ? 0 : mmu_nx_bit()));
}

static struct multicall_entry read_only(const void *table)
{
	return (struct multicall_entry){
	    .op = __HYPERVISOR_update_va_mapping,
	    .args = {(unsigned long)table,
		     entry_of(table, PTE_P | PTE_A | mmu_nx_bit()),
		     UVMF_INVLPG},
	};
}

/*
 * The tables become page tables (read-only), the kernel L4 gets the
 * task's slot (mmu_update: the L4 is Xen's, pinned), the user L4 is
 * pinned and installed, all in one multicall.
 */
void xen_user_activate(void)
{
	uint64_t *l4 = new_table();
	uint64_t kl4_ma = read_cr3() & PTE_ADDR;
	uint64_t slot_entry = entry_of(ul3, PTE_P | PTE_W | PTE_U | PTE_A);

	l4[SLOT(USER_BASE, 4)] = slot_entry;
	struct mmu_update upd = {
	    .ptr = (kl4_ma + 8 * SLOT(USER_BASE, 4)) | MMU_NORMAL_PT_UPDATE,
	    .val = slot_entry,
	};
	struct mmuext_op ops[2] = {
	    {.cmd = MMUEXT_PIN_L4_TABLE, .arg1.mfn = xen_virt_to_mfn(l4)},
	    {.cmd = MMUEXT_NEW_USER_BASEPTR, .arg1.mfn = xen_virt_to_mfn(l4)},
	};
	struct multicall_entry calls[7] = {
	    read_only(ul1),
	    read_only(ul2),
	    read_only(ul3),
	    read_only(l4),
	    {.op = __HYPERVISOR_mmu_update,
	     .args = {(unsigned long)&upd, 1, 0, DOMID_SELF}},
	    {.op = __HYPERVISOR_mmuext_op,
	     .args = {(unsigned long)&ops[0], 1, 0, DOMID_SELF}},
	    {.op = __HYPERVISOR_mmuext_op,
	     .args = {(unsigned long)&ops[1], 1, 0, DOMID_SELF}},
	};
	static const char *const what[7] = {
	    "map the user L1 read-only",
	    "map the user L2 read-only",
	    "map the user L3 read-only",
	    "map the user L4 read-only",
	    "add the task's slot to the kernel L4",
	    "pin the user L4",
	    "install the user L4 (MMUEXT_NEW_USER_BASEPTR)"};
	long rc = HYPERVISOR_multicall(calls, 7);
	if (rc)
		panic("xen: user tables: multicall failed: %ld (%s)", rc,
		      xen_errno_name(rc));
	for (int i = 0; i < 7; i++) {
		long r = (long)calls[i].result;
		if (r)
			panic("xen: cannot %s: %ld (%s)", what[i], r,
			      xen_errno_name(r));
	}
	xen_user_l4 = l4;
}
