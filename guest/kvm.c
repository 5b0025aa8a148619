/*
 * kvm.c - KVM paravirtual features: kvmclock and PV EOI.
 */
#include "kvm.h"
#include "kernel.h"
#include "layout.h"
#include "percpu.h"
#include "pvclock.h"
#include "pvops.h"
#include "timer.h"

uint32_t kvm_features;

static struct vcpu_time_info kvmclock __attribute__((aligned(64)));
static uint64_t kvmclock_base;
static uint64_t pv_eoi_skipped;

static uint64_t kernel_pa(const volatile void *p)
{
	return (uint64_t)p - KERNEL_VBASE;
}

void kvm_init(void)
{
	kvm_features = cpuid(KVM_CPUID_FEATURES, 0).eax;
	if (kvm_features & KVM_FEATURE_CLOCKSOURCE2) {
		write_msr(MSR_KVM_SYSTEM_TIME_NEW, kernel_pa(&kvmclock) | 1);
		kvmclock_base = pvclock_read_system(&kvmclock);
		/* The host's figure beats our 10 ms PIT estimate. */
		tsc_khz = pvclock_tsc_khz(&kvmclock);
	}
	kvm_init_cpu();
}

/*
 * Per CPU: the PV EOI word (each vCPU's own, in its struct percpu). The
 * kvmclock page stays the boot CPU's: with KVM's stable bit every vCPU
 * may read it (pvclock_read_system uses no per-vCPU state).
 */
void kvm_init_cpu(void)
{
	if (kvm_features & KVM_FEATURE_PV_EOI)
		write_msr(MSR_KVM_PV_EOI_EN,
			  kernel_pa(&this_cpu()->pv_eoi_word) | 1);
}

uint64_t kvmclock_read(void)
{
	return pvclock_read_system(&kvmclock) - kvmclock_base;
}

/*
 * KVM sets bit 0 when it injected an interrupt whose EOI it can take
 * without an exit: clearing the bit is the EOI. Otherwise, a real one.
 */
uint64_t kvm_pv_eoi(void)
{
	uint8_t was_set;
	asm volatile("lock btrq $0, %0; setc %1"
		     : "+m"(this_cpu()->pv_eoi_word), "=q"(was_set)
		     :
		     : "memory", "cc");
	if (was_set) {
		__atomic_fetch_add(&pv_eoi_skipped, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return native_apic_eoi();
}

void kvm_report(void)
{
	printk("kvm features: %#x%s%s%s\n", kvm_features,
	       kvm_features & KVM_FEATURE_CLOCKSOURCE2 ? " kvmclock" : "",
	       kvm_features & KVM_FEATURE_NOP_IO_DELAY ? " nop-io-delay" : "",
	       kvm_features & KVM_FEATURE_PV_EOI ? " pv-eoi" : "");
	if (kvm_features & KVM_FEATURE_CLOCKSOURCE2)
		printk("kvmclock tsc: %lu kHz\n", pvclock_tsc_khz(&kvmclock));
}
