/*
 * ops.c - op names and the pv_ops table the unpatched sites call through.
 *
 * pv_ops starts out pointing at the native stubs, so a native kernel works
 * before (and without) patching. Xen PV start-up repoints it before the
 * first pvop runs (guest/xen/start.c).
 */
#include "pvop_backend.h"

const char *const pvop_names[PVOP_NR] = {
    [PVOP_IRQ_DISABLE] = "irq_disable",
    [PVOP_IRQ_ENABLE] = "irq_enable",
    [PVOP_SAVE_FL] = "save_fl",
    [PVOP_RESTORE_FL] = "restore_fl",
    [PVOP_SAFE_HALT] = "safe_halt",
    [PVOP_HALT] = "halt",
    [PVOP_READ_CR2] = "read_cr2",
    [PVOP_READ_CR3] = "read_cr3",
    [PVOP_WRITE_CR3] = "write_cr3",
    [PVOP_FLUSH_TLB_ONE] = "flush_tlb_one",
    [PVOP_IO_DELAY] = "io_delay",
    [PVOP_READ_MSR] = "read_msr",
    [PVOP_WRITE_MSR] = "write_msr",
    [PVOP_CPUID] = "cpuid",
    [PVOP_APIC_EOI] = "apic_eoi",
    [PVOP_CLOCK_READ] = "clock_read",
    [PVOP_SEND_IPI] = "send_ipi",
    [PVOP_SEND_IPI_MASK] = "send_ipi_mask",
    [PVOP_FLUSH_TLB_OTHERS] = "flush_tlb_others",
    [PVOP_LOCK_WAIT] = "lock_wait",
    [PVOP_LOCK_KICK] = "lock_kick",
    [PVOP_SWAPGS] = "swapgs",
    [PVOP_IRET_USER] = "iret_user",
    [PVOP_SYSRET_USER] = "sysret_user",
    [PVOP_LOAD_SP0] = "load_sp0",
};

const uint8_t pvop_slots[PVOP_NR] = {
    [PVOP_IRQ_DISABLE] = PVOP_SLOT_IRQ_DISABLE,
    [PVOP_IRQ_ENABLE] = PVOP_SLOT_IRQ_ENABLE,
    [PVOP_SAVE_FL] = PVOP_SLOT_SAVE_FL,
    [PVOP_RESTORE_FL] = PVOP_SLOT_RESTORE_FL,
    [PVOP_SAFE_HALT] = PVOP_SLOT_SAFE_HALT,
    [PVOP_HALT] = PVOP_SLOT_HALT,
    [PVOP_READ_CR2] = PVOP_SLOT_READ_CR2,
    [PVOP_READ_CR3] = PVOP_SLOT_READ_CR3,
    [PVOP_WRITE_CR3] = PVOP_SLOT_WRITE_CR3,
    [PVOP_FLUSH_TLB_ONE] = PVOP_SLOT_FLUSH_TLB_ONE,
    [PVOP_IO_DELAY] = PVOP_SLOT_IO_DELAY,
    [PVOP_READ_MSR] = PVOP_SLOT_READ_MSR,
    [PVOP_WRITE_MSR] = PVOP_SLOT_WRITE_MSR,
    [PVOP_CPUID] = PVOP_SLOT_CPUID,
    [PVOP_APIC_EOI] = PVOP_SLOT_APIC_EOI,
    [PVOP_CLOCK_READ] = PVOP_SLOT_CLOCK_READ,
    [PVOP_SEND_IPI] = PVOP_SLOT_SEND_IPI,
    [PVOP_SEND_IPI_MASK] = PVOP_SLOT_SEND_IPI_MASK,
    [PVOP_FLUSH_TLB_OTHERS] = PVOP_SLOT_FLUSH_TLB_OTHERS,
    [PVOP_LOCK_WAIT] = PVOP_SLOT_LOCK_WAIT,
    [PVOP_LOCK_KICK] = PVOP_SLOT_LOCK_KICK,
    [PVOP_SWAPGS] = PVOP_SLOT_SWAPGS,
    [PVOP_IRET_USER] = PVOP_SLOT_IRET_USER,
    [PVOP_SYSRET_USER] = PVOP_SLOT_SYSRET_USER,
    [PVOP_LOAD_SP0] = PVOP_SLOT_LOAD_SP0,
};

const uint16_t pvop_clobbers[PVOP_NR] = {
    [PVOP_IRQ_DISABLE] = PVOP_CLOB_IRQ_DISABLE,
    [PVOP_IRQ_ENABLE] = PVOP_CLOB_IRQ_ENABLE,
    [PVOP_SAVE_FL] = PVOP_CLOB_SAVE_FL,
    [PVOP_RESTORE_FL] = PVOP_CLOB_RESTORE_FL,
    [PVOP_SAFE_HALT] = PVOP_CLOB_SAFE_HALT,
    [PVOP_HALT] = PVOP_CLOB_HALT,
    [PVOP_READ_CR2] = PVOP_CLOB_READ_CR2,
    [PVOP_READ_CR3] = PVOP_CLOB_READ_CR3,
    [PVOP_WRITE_CR3] = PVOP_CLOB_WRITE_CR3,
    [PVOP_FLUSH_TLB_ONE] = PVOP_CLOB_FLUSH_TLB_ONE,
    [PVOP_IO_DELAY] = PVOP_CLOB_IO_DELAY,
    [PVOP_READ_MSR] = PVOP_CLOB_READ_MSR,
    [PVOP_WRITE_MSR] = PVOP_CLOB_WRITE_MSR,
    [PVOP_CPUID] = PVOP_CLOB_CPUID,
    [PVOP_APIC_EOI] = PVOP_CLOB_APIC_EOI,
    [PVOP_CLOCK_READ] = PVOP_CLOB_CLOCK_READ,
    [PVOP_SEND_IPI] = PVOP_CLOB_SEND_IPI,
    [PVOP_SEND_IPI_MASK] = PVOP_CLOB_SEND_IPI_MASK,
    [PVOP_FLUSH_TLB_OTHERS] = PVOP_CLOB_FLUSH_TLB_OTHERS,
    [PVOP_LOCK_WAIT] = PVOP_CLOB_LOCK_WAIT,
    [PVOP_LOCK_KICK] = PVOP_CLOB_LOCK_KICK,
    [PVOP_SWAPGS] = PVOP_CLOB_SWAPGS,
    [PVOP_IRET_USER] = PVOP_CLOB_IRET_USER,
    [PVOP_SYSRET_USER] = PVOP_CLOB_SYSRET_USER,
    [PVOP_LOAD_SP0] = PVOP_CLOB_LOAD_SP0,
};

const char *const pvop_kind_names[PVOP_KIND_NR] = {
    [PVOP_KIND_INDIRECT] = "indirect",
    [PVOP_KIND_CALL] = "call",
    [PVOP_KIND_INLINE] = "inline",
    [PVOP_KIND_NOP] = "nop",
};

#define STUB(op) ((void *)pvstub_native_##op)

/* Not const: Xen PV start-up and pvop_install_table() rewrite it. */
struct pv_ops pv_ops = {
    .fn =
	{
	    [PVOP_IRQ_DISABLE] = STUB(irq_disable),
	    [PVOP_IRQ_ENABLE] = STUB(irq_enable),
	    [PVOP_SAVE_FL] = STUB(save_fl),
	    [PVOP_RESTORE_FL] = STUB(restore_fl),
	    [PVOP_SAFE_HALT] = STUB(safe_halt),
	    [PVOP_HALT] = STUB(halt),
	    [PVOP_READ_CR2] = STUB(read_cr2),
	    [PVOP_READ_CR3] = STUB(read_cr3),
	    [PVOP_WRITE_CR3] = STUB(write_cr3),
	    [PVOP_FLUSH_TLB_ONE] = STUB(flush_tlb_one),
	    [PVOP_IO_DELAY] = STUB(io_delay),
	    [PVOP_READ_MSR] = STUB(read_msr),
	    [PVOP_WRITE_MSR] = STUB(write_msr),
	    [PVOP_CPUID] = STUB(cpuid),
	    [PVOP_APIC_EOI] = (void *)native_apic_eoi_thunk,
	    [PVOP_CLOCK_READ] = (void *)native_clock_read_thunk,
	    [PVOP_SEND_IPI] = (void *)native_send_ipi_thunk,
	    [PVOP_SEND_IPI_MASK] = (void *)native_send_ipi_mask_thunk,
	    [PVOP_FLUSH_TLB_OTHERS] = (void *)native_flush_tlb_others_thunk,
	    [PVOP_LOCK_WAIT] = (void *)native_lock_wait_thunk,
	    [PVOP_LOCK_KICK] = (void *)pvstub_nothing,
	    [PVOP_SWAPGS] = STUB(swapgs),
	    [PVOP_IRET_USER] = (void *)pvstub_native_iret_user_call,
	    [PVOP_SYSRET_USER] = (void *)pvstub_native_sysret_user_call,
	    [PVOP_LOAD_SP0] = (void *)native_load_sp0_thunk,
	},
};
