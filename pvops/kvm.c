/*
 * kvm.c - the KVM backend: native, except where KVM offers better.
 *
 *   io_delay   nothing, when KVM_FEATURE_NOP_IO_DELAY is offered;
 *   apic_eoi   PV EOI (a bit in shared memory) when KVM_FEATURE_PV_EOI;
 *   clock_read kvmclock (the pvclock reader shared with Xen) when
 *              KVM_FEATURE_CLOCKSOURCE2;
 *   send_ipi, send_ipi_mask  KVM_HC_SEND_IPI when KVM_FEATURE_PV_SEND_IPI
 *              is offered: the C half (guest/kvm.c) uses the hypercall
 *              only once a probe after SMP bring-up saw it deliver, and
 *              the native ICR otherwise.
 *   flush_tlb_others  when KVM_FEATURE_PV_TLB_FLUSH is offered: the C half
 *              sets KVM_VCPU_FLUSH_TLB in the steal-time area of each
 *              vCPU the host marked preempted and IPIs only the others,
 *              once it saw the host write every vCPU's steal time; the
 *              native IPI path for all otherwise.
 * The platform code (guest/native.c) decides from CPUID 0x40000001 eax
 * what is on offer, and guest/kvm.c sets up the shared memory before this
 * backend is patched in.
 */
#include "pvop_backend.h"

void pvop_backend_kvm(struct pvop_backend *b, const struct pvop_kvm_caps *c)
{
	pvop_backend_native(b);
	b->name = "kvm";
	b->id = PVOP_BACKEND_KVM;
	if (c->nop_io_delay)
		b->op[PVOP_IO_DELAY] = PVOP_IMPL_NOP;
	if (c->pv_eoi)
		b->op[PVOP_APIC_EOI] = PVOP_IMPL_THUNK(kvm_apic_eoi_thunk);
	if (c->kvmclock)
		b->op[PVOP_CLOCK_READ] = PVOP_IMPL_THUNK(kvm_clock_read_thunk);
	if (c->pv_send_ipi) {
		b->op[PVOP_SEND_IPI] = PVOP_IMPL_THUNK(kvm_send_ipi_thunk);
		b->op[PVOP_SEND_IPI_MASK] =
		    PVOP_IMPL_THUNK(kvm_send_ipi_mask_thunk);
	}
	if (c->pv_tlb_flush)
		b->op[PVOP_FLUSH_TLB_OTHERS] =
		    PVOP_IMPL_THUNK(kvm_flush_tlb_others_thunk);
}
