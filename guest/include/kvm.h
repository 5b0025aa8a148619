/*
 * kvm.h - the KVM paravirtual interfaces tinypv uses: kvmclock, PV EOI,
 * PV send-IPI, steal time and the PV TLB flush (guest/kvm.c).
 *
 * The ABI (feature bit numbers, MSRs, struct kvm_steal_time, hypercall
 * numbers) comes from the Linux UAPI headers, <asm/kvm_para.h> and
 * <linux/kvm_para.h> (linux-libc-dev, linked into build/include like the
 * Xen headers). Their KVM_FEATURE_* are bit numbers; test them with
 * KVM_HAS(FEATURE):
 *
 *   if (KVM_HAS(PV_EOI))
 *           write_msr(MSR_KVM_PV_EOI_EN, pa | KVM_MSR_ENABLED);
 */
#ifndef TINYPV_KVM_H
#define TINYPV_KVM_H

#include <stdbool.h>
#include <stdint.h>

#include <asm/kvm_para.h>
#include <linux/kvm_para.h>

struct percpu;

/* The layout tinypv relies on (Documentation/virt/kvm/x86/msr.rst). */
_Static_assert(sizeof(struct kvm_steal_time) == 64, "kvm_steal_time");
_Static_assert(__builtin_offsetof(struct kvm_steal_time, version) == 8,
	       "kvm_steal_time");
_Static_assert(__builtin_offsetof(struct kvm_steal_time, preempted) == 16,
	       "kvm_steal_time");

/* The features CPUID 0x40000001 eax offers. */
extern uint32_t kvm_features;
#define KVM_HAS(f) ((kvm_features >> KVM_FEATURE_##f) & 1)

/* guest/kvm.c */
void kvm_init(void);
void kvm_init_cpu(void); /* each CPU: PV EOI word, steal-time area */
uint64_t kvm_pv_eoi(void);
uint64_t kvmclock_read(void);
void kvm_report(void);
/* The PV send-IPI hypercall, once the probe saw it work; else native. */
uint64_t kvm_send_ipi(uint64_t arg);
uint64_t kvm_send_ipi_mask(uint64_t arg);
void kvm_smp_ready(void); /* the probes, after SMP bring-up */

/*
 * flush_tlb_others on KVM: the vCPUs the host marked preempted get
 * KVM_VCPU_FLUSH_TLB in their steal-time area instead of an IPI (the host
 * flushes their whole TLB before they next run); the others the native
 * IPI path. Native only, when the PV path is not in use (kvm_report says
 * which and why).
 */
uint64_t kvm_flush_tlb_others(unsigned long va, uint64_t mask);

/*
 * The decision, on any array of NR_CPUS_MAX steal-time areas indexed by
 * CPU number (tests pass fakes; NULL: none registered, an IPI): for
 * each CPU in mask whose area says KVM_VCPU_PREEMPTED, set
 * KVM_VCPU_FLUSH_TLB with a compare-and-exchange (so a host that has just
 * cleared the byte for the vCPU's next entry is not missed) and drop it
 * from the mask. Returns the CPUs still to be sent an IPI.
 */
uint64_t kvm_tlb_defer_preempted(uint64_t mask,
				 struct kvm_steal_time *const *areas);

/* What the PV TLB flush did (tests, report). */
struct kvm_tlb_stats {
	uint64_t calls;	   /* kvm_flush_tlb_others with the PV path on */
	uint64_t deferred; /* CPUs given FLUSH_TLB instead of an IPI */
	uint64_t ipis;	   /* CPUs sent the native IPI */
};
extern struct kvm_tlb_stats kvm_tlb_stats;
extern bool kvm_pv_tlb_on; /* the PV path is in use */

/*
 * kvmclock: every CPU reads the boot CPU's when kvmclock_shared (the
 * host's stable bit), else its own; kvmclock_area() is the one p reads.
 */
struct vcpu_time_info;
extern bool kvmclock_shared;
const volatile struct vcpu_time_info *kvmclock_area(const struct percpu *p);

/* A CPU's steal-time area (NULL when not registered). */
struct kvm_steal_time *kvm_steal_area(const struct percpu *p);

#endif
