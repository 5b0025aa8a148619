/*
 * kvm.c - KVM paravirtual features: kvmclock, PV EOI, PV send-IPI.
 */
#include "kvm.h"
#include "kernel.h"
#include "layout.h"
#include "percpu.h"
#include "platform.h"
#include "pvclock.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"
#include "trap.h"

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

/* ---- PV send-IPI ---- */

/* What the probe found, for the report. */
static const char *pv_ipi_state = "not offered";
static bool pv_ipi_ok;
static long pv_ipi_probe_rc;

/*
 * A KVM hypercall, with vmmcall (AMD) or vmcall (Intel). KVM, asked with
 * the other vendor's instruction, rewrites it in guest memory and that
 * write faults on tinypv's read-only text; any fault (#UD, #PF) is fixed
 * up and reported in %rax with EXT_FAULTED set.
 */
static bool hc_vmmcall;

static long kvm_hypercall4(unsigned long nr, unsigned long a0, unsigned long a1,
			   unsigned long a2, unsigned long a3)
{
	long ret = (long)nr;

	if (hc_vmmcall)
		asm volatile(
		    "1: vmmcall\n2:\n\t" EXTABLE_REPORT("1b", "2b", "2b", "0")
		    : "+a"(ret)
		    : "b"(a0), "c"(a1), "d"(a2), "S"(a3)
		    : "memory");
	else
		asm volatile(
		    "1: vmcall\n2:\n\t" EXTABLE_REPORT("1b", "2b", "2b", "0")
		    : "+a"(ret)
		    : "b"(a0), "c"(a1), "d"(a2), "S"(a3)
		    : "memory");
	return ret;
}

/* One hypercall per 128 consecutive APIC ids (bitmap low, high, min). */
static void pv_ipi(uint64_t mask, unsigned vector)
{
	uint64_t bits[2] = {0, 0};
	uint32_t min = 0;
	bool any = false;

	for (; mask; mask &= mask - 1) {
		unsigned cpu = __builtin_ctzll(mask);
		if (cpu >= smp_online)
			break;
		uint32_t id = smp_cpus[cpu]->apic_id;
		if (any && (id < min || id - min >= 128)) {
			kvm_hypercall4(KVM_HC_SEND_IPI, bits[0], bits[1], min,
				       vector);
			any = false;
		}
		if (!any) {
			bits[0] = bits[1] = 0;
			min = id;
			any = true;
		}
		bits[(id - min) / 64] |= 1ULL << ((id - min) % 64);
	}
	if (any)
		kvm_hypercall4(KVM_HC_SEND_IPI, bits[0], bits[1], min, vector);
}

uint64_t kvm_send_ipi(uint64_t arg)
{
	if (!pv_ipi_ok)
		return native_send_ipi(arg);
	pv_ipi(1ULL << (arg >> 8), arg & 0xff);
	return 0;
}

uint64_t kvm_send_ipi_mask(uint64_t arg)
{
	if (!pv_ipi_ok)
		return native_send_ipi_mask(arg);
	pv_ipi(arg >> 8, arg & 0xff);
	return 0;
}

/*
 * KVM_FEATURE_PV_SEND_IPI only says KVM claims it. Before the send_ipi
 * pvops use it, send CPU 1 one VEC_IPI_PING through the hypercall and wait
 * (200 ms: this host's KVM is slow) for CPU 1 to count it. Anything else
 * (an error code, a fault, no delivery) keeps the native ICR.
 */
static long probe_once(struct percpu *p)
{
	long rc =
	    kvm_hypercall4(KVM_HC_SEND_IPI, 1, 0, p->apic_id, VEC_IPI_PING);
	if ((uint64_t)rc & EXT_FAULTED)
		printk("kvm pv send-ipi: %s faulted: vector %lu, error %#lx at "
		       "rip %#lx, cr2 %#lx\n",
		       hc_vmmcall ? "vmmcall" : "vmcall", (uint64_t)rc & 0xff,
		       ((uint64_t)rc >> 8) & 0xffffffff, last_fault.rip,
		       last_fault.cr2);
	return rc;
}

void kvm_smp_ready(void)
{
	if (!(kvm_features & KVM_FEATURE_PV_SEND_IPI))
		return;
	if (smp_online < 2) {
		pv_ipi_state = "offered, not probed (one CPU)";
		return;
	}
	struct percpu *p = smp_cpus[1];
	volatile uint64_t *got = &p->ipi_received[VEC_IPI_PING - VEC_IPI_BASE];
	uint64_t before = *got, t0 = clock_read(), t1;
	/* The CPU vendor's instruction first; if it faults, the other. */
	hc_vmmcall = !strcmp(cpu_vendor(), "AuthenticAMD");
	pv_ipi_probe_rc = probe_once(p);
	if ((uint64_t)pv_ipi_probe_rc & EXT_FAULTED) {
		hc_vmmcall = !hc_vmmcall;
		pv_ipi_probe_rc = probe_once(p);
	}
	while (*got == before && clock_read() < t0 + 200000000ULL)
		asm volatile("pause");
	t1 = clock_read();
	if ((uint64_t)pv_ipi_probe_rc & EXT_FAULTED)
		pv_ipi_state = "offered, but both hypercall instructions fault";
	else if (pv_ipi_probe_rc != 1)
		pv_ipi_state = "offered, but the hypercall failed";
	else if (*got == before)
		pv_ipi_state = "offered, but the probe IPI never arrived";
	else {
		pv_ipi_state = "works";
		pv_ipi_ok = true;
	}
	printk("kvm pv send-ipi: %s (probe with %s: returned %#lx, cpu 1 "
	       "counted %lu in %lu us)%s\n",
	       pv_ipi_state, hc_vmmcall ? "vmmcall" : "vmcall", pv_ipi_probe_rc,
	       *got - before, (t1 - t0) / 1000,
	       pv_ipi_ok ? "" : "; using the native ICR");
}

void kvm_report(void)
{
	printk("kvm features: %#x%s%s%s\n", kvm_features,
	       kvm_features & KVM_FEATURE_CLOCKSOURCE2 ? " kvmclock" : "",
	       kvm_features & KVM_FEATURE_NOP_IO_DELAY ? " nop-io-delay" : "",
	       kvm_features & KVM_FEATURE_PV_EOI ? " pv-eoi" : "");
	printk("kvm pv send-ipi: %s\n", pv_ipi_state);
	if (kvm_features & KVM_FEATURE_CLOCKSOURCE2)
		printk("kvmclock tsc: %lu kHz\n", pvclock_tsc_khz(&kvmclock));
}
