/*
 * kvm.c - the KVM backend: native, except where KVM offers better.
 *
 *   io_delay   nothing, when KVM_FEATURE_NOP_IO_DELAY is offered;
 *   apic_eoi   PV EOI (a bit in shared memory) when KVM_FEATURE_PV_EOI;
 *   clock_read kvmclock (the pvclock reader shared with Xen) when
 *              KVM_FEATURE_CLOCKSOURCE2.
 * The feature bits come from CPUID 0x40000001 eax; guest/kvm.c sets up
 * the shared memory before this backend is patched in.
 */
#include "kvm.h"
#include "pvop_backend.h"

void pvop_backend_kvm(struct pvop_backend *b, uint32_t features)
{
	pvop_backend_native(b);
	b->name = "kvm";
	b->id = PVOP_BACKEND_KVM;
	if (features & KVM_FEATURE_NOP_IO_DELAY)
		b->op[PVOP_IO_DELAY] = PVOP_IMPL_NOP;
	if (features & KVM_FEATURE_PV_EOI)
		b->op[PVOP_APIC_EOI] = PVOP_IMPL_THUNK(kvm_apic_eoi_thunk);
	if (features & KVM_FEATURE_CLOCKSOURCE2)
		b->op[PVOP_CLOCK_READ] = PVOP_IMPL_THUNK(kvm_clock_read_thunk);
}
