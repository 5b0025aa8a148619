/*
 * kvm.c - KVM paravirtual features: kvmclock, PV EOI, PV send-IPI, steal
 * time and the PV TLB flush (kvm.h).
 */
#include "kvm.h"
#include "cmdline.h"
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

/*
 * Shared memory the host writes, one of each per struct percpu slot
 * (percpu_slot(): the area, never the CPU number, which an abandoned AP
 * may have held too). KVM wants 64-byte alignment for steal time; both
 * must not cross a page, which 64-byte slots never do.
 */
static struct vcpu_time_info kvmclocks[NR_CPUS_MAX]
    __attribute__((aligned(64)));
static struct kvm_steal_time steal[NR_CPUS_MAX] __attribute__((aligned(64)));
static bool steal_registered[NR_CPUS_MAX];
_Static_assert(sizeof(struct vcpu_time_info) <= 64, "one kvmclock per slot");

static uint64_t kvmclock_base;
static uint64_t pv_eoi_skipped;
/*
 * Every CPU may read the boot CPU's kvmclock only when the host says the
 * TSCs agree: KVM_FEATURE_CLOCKSOURCE_STABLE_BIT offered and
 * PVCLOCK_TSC_STABLE_BIT (Xen's name: the same ABI) set in its flags.
 * Otherwise each CPU registers and reads its own.
 */
bool kvmclock_shared;
static const char *kvmclock_why = "";

static uint64_t kernel_pa(const volatile void *p)
{
	return (uint64_t)p - KERNEL_VBASE;
}

static bool inject_is(const char *what)
{
	return opts.inject && !strcmp(opts.inject, what);
}

void kvm_init(void)
{
	kvm_features = cpuid(KVM_CPUID_FEATURES, 0).eax;
	if (KVM_HAS(CLOCKSOURCE2)) {
		write_msr(MSR_KVM_SYSTEM_TIME_NEW,
			  kernel_pa(&kvmclocks[0]) | KVM_MSR_ENABLED);
		kvmclock_base = pvclock_read_system(&kvmclocks[0]);
		/* The host's figure beats our 10 ms PIT estimate. */
		tsc_khz = pvclock_tsc_khz(&kvmclocks[0]);
		bool stable = KVM_HAS(CLOCKSOURCE_STABLE_BIT) &&
			      (kvmclocks[0].flags & XEN_PVCLOCK_TSC_STABLE_BIT);
		if (inject_is("kvmclock-percpu"))
			kvmclock_why =
			    "per CPU (forced by inject=kvmclock-percpu)";
		else if (!stable)
			kvmclock_why = "per CPU (the host does not set the "
				       "stable bit)";
		else {
			kvmclock_shared = true;
			kvmclock_why =
			    "the boot CPU's, shared (stable bit set)";
		}
	}
	kvm_init_cpu();
}

/*
 * Per CPU: the PV EOI word (in its struct percpu), its own kvmclock
 * unless the boot CPU's is shared, and its steal-time area (the host
 * writes the preempted flag there, which the PV TLB flush reads).
 */
void kvm_init_cpu(void)
{
	struct percpu *p = this_cpu();
	unsigned slot = percpu_slot(p);

	if (KVM_HAS(PV_EOI))
		write_msr(MSR_KVM_PV_EOI_EN,
			  kernel_pa(&p->pv_eoi_word) | KVM_MSR_ENABLED);
	if (KVM_HAS(CLOCKSOURCE2) && slot && !kvmclock_shared)
		write_msr(MSR_KVM_SYSTEM_TIME_NEW,
			  kernel_pa(&kvmclocks[slot]) | KVM_MSR_ENABLED);
	if (KVM_HAS(STEAL_TIME)) {
		write_msr(MSR_KVM_STEAL_TIME,
			  kernel_pa(&steal[slot]) | KVM_MSR_ENABLED);
		steal_registered[slot] = true;
	}
}

struct kvm_steal_time *kvm_steal_area(const struct percpu *p)
{
	unsigned slot = percpu_slot(p);
	return slot < NR_CPUS_MAX && steal_registered[slot] ? &steal[slot]
							    : NULL;
}

const volatile struct vcpu_time_info *kvmclock_area(const struct percpu *p)
{
	const volatile struct vcpu_time_info *t =
	    &kvmclocks[kvmclock_shared ? 0 : percpu_slot(p)];
	/* An AP reads the boot CPU's until the host has filled its own. */
	return t->version ? t : &kvmclocks[0];
}

uint64_t kvmclock_read(void)
{
	const volatile struct vcpu_time_info *t = &kvmclocks[0];

	if (!kvmclock_shared)
		t = kvmclock_area(this_cpu());
	return pvclock_read_system(t) - kvmclock_base;
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

static void pv_ipi_probe(void)
{
	if (!KVM_HAS(PV_SEND_IPI))
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

/* ---- PV TLB flush through the steal-time preempted flag ---- */

static const char *pv_tlb_state = "not offered";
bool kvm_pv_tlb_on;
struct kvm_tlb_stats kvm_tlb_stats;
/* By CPU number, filled once the PV path is on. */
static struct kvm_steal_time *cpu_steal[NR_CPUS_MAX];

uint64_t kvm_tlb_defer_preempted(uint64_t mask,
				 struct kvm_steal_time *const *areas)
{
	uint64_t ipi = mask;

	for (uint64_t m = mask; m; m &= m - 1) {
		unsigned cpu = __builtin_ctzll(m);
		if (cpu >= NR_CPUS_MAX)
			break; /* no such CPU: left in the mask */
		struct kvm_steal_time *st = areas[cpu];
		if (!st)
			continue;
		uint8_t state =
		    __atomic_load_n(&st->preempted, __ATOMIC_RELAXED);
		/*
		 * The host clears the byte (an exchange) as the vCPU is about
		 * to run again, and flushes its TLB if FLUSH_TLB was set: if
		 * the exchange wins, the vCPU is running and needs the IPI.
		 */
		if ((state & KVM_VCPU_PREEMPTED) &&
		    __atomic_compare_exchange_n(
			&st->preempted, &state, state | KVM_VCPU_FLUSH_TLB,
			false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			ipi &= ~(1ULL << cpu);
	}
	return ipi;
}

/* Set bits (no libgcc: __builtin_popcountll would call it). */
static unsigned bits_set(uint64_t m)
{
	unsigned n = 0;
	for (; m; m &= m - 1)
		n++;
	return n;
}

uint64_t kvm_flush_tlb_others(unsigned long va, uint64_t mask)
{
	if (!kvm_pv_tlb_on)
		return native_flush_tlb_others(va, mask);
	mask &= smp_online_mask() & ~(1ULL << smp_cpu());
	if (!mask)
		return 0;
	uint64_t ipi = kvm_tlb_defer_preempted(mask, cpu_steal);
	__atomic_fetch_add(&kvm_tlb_stats.calls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&kvm_tlb_stats.deferred, bits_set(mask & ~ipi),
			   __ATOMIC_RELAXED);
	__atomic_fetch_add(&kvm_tlb_stats.ipis, bits_set(ipi),
			   __ATOMIC_RELAXED);
	return native_flush_tlb_others(va, ipi);
}

/*
 * The preempted flag means something only if the host writes each
 * vCPU's steal-time area: wait (200 ms: this host's KVM is slow) until
 * every online CPU's has a version, which the host bumps on each update.
 * Without that, the native IPI path for every flush.
 */
#define STEAL_WAIT_NS 200000000ULL
static char pv_tlb_buf[160];

static void pv_tlb_setup(void)
{
	if (!KVM_HAS(PV_TLB_FLUSH))
		return;
	if (!KVM_HAS(STEAL_TIME)) {
		pv_tlb_state = "offered, but steal time (which carries the "
			       "preempted flag) is not; native IPIs";
		return;
	}
	if (smp_online < 2) {
		pv_tlb_state = "offered, not set up (one CPU); native IPIs";
		return;
	}
	uint64_t t0 = clock_read(), end = t0 + STEAL_WAIT_NS;
	unsigned missing;
	for (;;) {
		missing = ~0u;
		for (unsigned c = smp_online; c-- > 0;) {
			struct kvm_steal_time *st = kvm_steal_area(smp_cpus[c]);
			if (!st || !READ_ONCE(st->version))
				missing = c;
		}
		if (missing == ~0u || clock_read() > end)
			break;
		asm volatile("pause");
	}
	for (unsigned c = 0; c < smp_online; c++) {
		struct kvm_steal_time *st = kvm_steal_area(smp_cpus[c]);
		if (st)
			printk("kvm steal time: cpu %u: version %u, steal %lu "
			       "ns, preempted %#x\n",
			       c, READ_ONCE(st->version),
			       (uint64_t)READ_ONCE(st->steal),
			       READ_ONCE(st->preempted));
	}
	if (missing != ~0u) {
		snprintf(pv_tlb_buf, sizeof(pv_tlb_buf),
			 "offered, but the host never wrote cpu %u's steal "
			 "time in %llu ms; native IPIs",
			 missing, STEAL_WAIT_NS / 1000000);
		pv_tlb_state = pv_tlb_buf;
		printk("kvm pv tlb flush: %s\n", pv_tlb_state);
		return;
	}
	for (unsigned c = 0; c < smp_online; c++)
		cpu_steal[c] = kvm_steal_area(smp_cpus[c]);
	kvm_pv_tlb_on = true;
	pv_tlb_state = "on: the host writes every vCPU's steal time; "
		       "preempted vCPUs get KVM_VCPU_FLUSH_TLB, running ones "
		       "the native IPI";
	printk("kvm pv tlb flush: %s\n", pv_tlb_state);
}

void kvm_smp_ready(void)
{
	pv_ipi_probe();
	pv_tlb_setup();
}

void kvm_report(void)
{
	printk("kvm features: %#x%s%s%s\n", kvm_features,
	       KVM_HAS(CLOCKSOURCE2) ? " kvmclock" : "",
	       KVM_HAS(NOP_IO_DELAY) ? " nop-io-delay" : "",
	       KVM_HAS(PV_EOI) ? " pv-eoi" : "");
	printk("kvm pv send-ipi: %s\n", pv_ipi_state);
	if (KVM_HAS(CLOCKSOURCE2)) {
		printk("kvmclock tsc: %lu kHz\n",
		       pvclock_tsc_khz(&kvmclocks[0]));
		printk("kvmclock: %s\n", kvmclock_why);
	}
	printk("kvm pv tlb flush: %s\n", pv_tlb_state);
	if (kvm_pv_tlb_on && kvm_tlb_stats.calls)
		printk("kvm pv tlb flush: %lu calls so far, %lu CPUs deferred "
		       "(preempted), %lu sent IPIs\n",
		       kvm_tlb_stats.calls, kvm_tlb_stats.deferred,
		       kvm_tlb_stats.ipis);
}
