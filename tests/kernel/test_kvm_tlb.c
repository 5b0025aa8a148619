/*
 * test_kvm_tlb.c - KVM's PV TLB flush and the shared memory it rests on
 * (guest/kvm.c): the decision that skips a preempted vCPU, each vCPU's
 * steal-time area, each vCPU's kvmclock, and a real deferred flush when
 * the host marks a vCPU preempted. Suite smp. The decision test runs on
 * every platform (it works on fake areas); the others SKIP, saying why,
 * off KVM or with one CPU.
 */
#include "kernel.h"
#include "ktest.h"
#include "kvm.h"
#include "mm.h"
#include "platform.h"
#include "pvclock.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"

/* The decision on fake areas: no host involved, so exact. */
KTEST(smp, kvm_tlb_defer_skips_preempted_vcpus)
{
	static struct kvm_steal_time fake[4] __attribute__((aligned(64)));
	struct kvm_steal_time *areas[NR_CPUS_MAX] = {0};

	for (unsigned c = 0; c < 4; c++) {
		fake[c] = (struct kvm_steal_time){0};
		areas[c] = &fake[c];
	}
	fake[1].preempted = KVM_VCPU_PREEMPTED;
	fake[2].preempted = 0; /* running: it needs the IPI */
	fake[3].preempted = KVM_VCPU_PREEMPTED | KVM_VCPU_FLUSH_TLB;
	areas[0] = NULL; /* no area registered: always the IPI */

	uint64_t ipi = kvm_tlb_defer_preempted(0xf, areas);
	KT_EXPECT(t, ipi == 0x5, "IPI mask %#lx, want 0x5 (cpus 0 and 2)", ipi);
	KT_EXPECT(
	    t, fake[1].preempted == (KVM_VCPU_PREEMPTED | KVM_VCPU_FLUSH_TLB),
	    "cpu 1's preempted byte is %#x", fake[1].preempted);
	KT_EXPECT(t, fake[2].preempted == 0, "cpu 2's byte became %#x",
		  fake[2].preempted);
	KT_EXPECT(
	    t, fake[3].preempted == (KVM_VCPU_PREEMPTED | KVM_VCPU_FLUSH_TLB),
	    "cpu 3's byte became %#x", fake[3].preempted);
	/* Only CPUs in the mask are looked at. */
	fake[1].preempted = KVM_VCPU_PREEMPTED;
	ipi = kvm_tlb_defer_preempted(0x4, areas);
	KT_EXPECT(t, ipi == 0x4 && fake[1].preempted == KVM_VCPU_PREEMPTED,
		  "mask 0x4: IPI %#lx, cpu 1's byte %#x", ipi,
		  fake[1].preempted);
	/* The host ran the vCPU again (cleared the byte): an IPI again. */
	fake[1].preempted = 0;
	ipi = kvm_tlb_defer_preempted(0x2, areas);
	KT_EXPECT(t, ipi == 0x2 && fake[1].preempted == 0,
		  "after the host cleared it: IPI %#lx, byte %#x", ipi,
		  fake[1].preempted);
}

#define NEED_KVM_SMP(t)                                                        \
	do {                                                                   \
		if (platform->id != PLATFORM_KVM)                              \
			KT_SKIP(t, "not a KVM guest");                         \
		if (smp_online < 2)                                            \
			KT_SKIP(t, "only one CPU online");                     \
	} while (0)

static void nothing(void *arg)
{
	(void)arg;
}

/*
 * Every online CPU's steal-time area is registered and written by the
 * host: a version, and a later one after the vCPU has been woken (the host
 * updates it each time it puts the vCPU back on a host CPU).
 */
KTEST(smp, kvm_steal_time_registered_and_updated)
{
	NEED_KVM_SMP(t);
	if (!KVM_HAS(STEAL_TIME))
		KT_SKIP(t, "KVM does not offer steal time");
	for (unsigned c = 0; c < smp_online; c++) {
		struct kvm_steal_time *st = kvm_steal_area(smp_cpus[c]);
		KT_ASSERT(t, st, "cpu %u: no steal-time area registered", c);
		KT_EXPECT(t, ((uint64_t)st & 63) == 0,
			  "cpu %u: area %p not 64-byte aligned", c, st);
		uint32_t v0 = READ_ONCE(st->version);
		KT_EXPECT(t, v0, "cpu %u: the host never wrote its area", c);
		if (!c)
			continue;
		uint64_t end = clock_read() + 2 * SMP_CALL_TIMEOUT_NS;
		unsigned calls = 0;
		while (READ_ONCE(st->version) == v0 && clock_read() < end) {
			KT_ASSERT(
			    t,
			    smp_call_on(c, nothing, NULL, SMP_CALL_TIMEOUT_NS),
			    "cpu %u: no answer", c);
			calls++;
		}
		KT_EXPECT(t, READ_ONCE(st->version) != v0,
			  "cpu %u: version stayed %u over %u wake-ups", c, v0,
			  calls);
		if (c == 1)
			printk("    # smp.kvm_steal: cpu 1: version %u -> %u "
			       "after %u wake-up(s), steal %lu ns\n",
			       v0, READ_ONCE(st->version), calls,
			       (uint64_t)READ_ONCE(st->steal));
	}
}

/* Each CPU reads the kvmclock kvm.c chose for it, and it is live. */
struct clock_seen {
	const volatile struct vcpu_time_info *area;
	uint32_t version;
	uint64_t now;
};
static struct clock_seen clock_slot;

static void read_clock_area(void *arg)
{
	struct clock_seen *s = arg;
	s->area = kvmclock_area(this_cpu());
	s->version = s->area->version;
	s->now = clock_read();
}

KTEST(smp, kvmclock_per_cpu_unless_stable)
{
	NEED_KVM_SMP(t);
	if (!KVM_HAS(CLOCKSOURCE2))
		KT_SKIP(t, "KVM does not offer kvmclock");
	const volatile struct vcpu_time_info *boot = kvmclock_area(&percpu0);
	for (unsigned c = 1; c < smp_online; c++) {
		clock_slot = (struct clock_seen){0};
		uint64_t before = clock_read();
		KT_ASSERT(t,
			  smp_call_on(c, read_clock_area, &clock_slot,
				      SMP_CALL_TIMEOUT_NS),
			  "cpu %u: no answer", c);
		uint64_t after = clock_read();
		if (kvmclock_shared)
			KT_EXPECT(t, clock_slot.area == boot,
				  "cpu %u reads %p, not the shared %p", c,
				  clock_slot.area, boot);
		else
			KT_EXPECT(t, clock_slot.area != boot,
				  "cpu %u reads the boot CPU's kvmclock "
				  "without the stable bit",
				  c);
		KT_EXPECT(t, clock_slot.version,
			  "cpu %u: its kvmclock was never written", c);
		KT_EXPECT(t,
			  clock_slot.now + 1000000 >= before &&
			      clock_slot.now <= after + 1000000,
			  "cpu %u: clock %lu outside [%lu, %lu] +- 1 ms", c,
			  clock_slot.now, before, after);
	}
	printk("    # smp.kvmclock: %s\n",
	       kvmclock_shared ? "shared (stable bit)" : "per CPU");
}

/*
 * With the PV path on, the flush_tlb_others pvop reaches
 * kvm_flush_tlb_others (the KVM backend's thunk), which counts each call
 * and sends the IPI to every target it did not defer.
 */
static uint8_t page[PAGE_SIZE] __attribute__((aligned(4096)));

KTEST(smp, kvm_flush_tlb_others_takes_the_pv_path)
{
	NEED_KVM_SMP(t);
	if (!kvm_pv_tlb_on)
		KT_SKIP(t, "the PV TLB flush is not in use (see the boot "
			   "report's kvm pv tlb flush: line)");
	struct kvm_tlb_stats before = kvm_tlb_stats;
	flush_tlb_others(smp_online_mask(), (unsigned long)page);
	struct kvm_tlb_stats after = kvm_tlb_stats;
	KT_EXPECT(t, after.calls == before.calls + 1,
		  "flush_tlb_others did not reach kvm_flush_tlb_others");
	KT_EXPECT(t,
		  (after.ipis - before.ipis) +
			  (after.deferred - before.deferred) ==
		      smp_online - 1,
		  "%lu IPIs + %lu deferred for %u other CPUs",
		  after.ipis - before.ipis, after.deferred - before.deferred,
		  smp_online - 1);
	printk("    # smp.kvm_tlb: so far %lu PV flushes: %lu targets "
	       "deferred to the host, %lu sent IPIs\n",
	       after.calls, after.deferred, after.ipis);
}

/*
 * The real thing: CPU 1 spins reading a window (interrupts off, so an
 * IPI would not be taken) while CPU 0 remaps it without flushing CPU 1,
 * then watches CPU 1's preempted byte. When the host has descheduled
 * CPU 1 (on this 2-core, shared host it happens), the decision sets
 * KVM_VCPU_FLUSH_TLB instead of sending an IPI; CPU 1 must then see the
 * new frame, and the host must have consumed the flag (the byte is
 * cleared as the vCPU runs again). If the host never marks CPU 1
 * preempted in 3 s of polling, SKIP, saying how often it looked and how
 * much steal time (runnable, not running) CPU 1 accrued meanwhile.
 */
static uint8_t frames[2][PAGE_SIZE] __attribute__((aligned(4096)));
static uint8_t window[PAGE_SIZE] __attribute__((aligned(4096)));
static volatile uint64_t seen, reads;
static volatile bool stop;

static void spin_reading(void *arg)
{
	(void)arg;
	uint64_t end = clock_read() + 20 * SMP_CALL_TIMEOUT_NS;
	while (!READ_ONCE(stop) && clock_read() < end) {
		seen = *(volatile uint64_t *)window;
		reads = reads + 1;
	}
}

static bool wait_for(volatile uint64_t *v, uint64_t want, uint64_t ns)
{
	uint64_t end = clock_read() + ns;
	while (READ_ONCE(*v) != want) {
		if (clock_read() > end)
			return false;
		asm volatile("pause");
	}
	return true;
}

static char skip_why[120];

KTEST(smp, kvm_pv_tlb_flush_defers_a_preempted_vcpu)
{
	uintptr_t w = (uintptr_t)window;
	uint64_t seq, samples = 0, preempted_seen = 0, steal0 = 0, steal1 = 0;
	struct kvm_steal_time *areas[NR_CPUS_MAX] = {0};
	bool deferred = false, stale = false, saw_new = false, consumed = false;

	NEED_KVM_SMP(t);
	if (!kvm_pv_tlb_on)
		KT_SKIP(t, "the PV TLB flush is not in use (see the boot "
			   "report's kvm pv tlb flush: line)");
	struct kvm_steal_time *st = kvm_steal_area(smp_cpus[1]);
	areas[1] = st;
	*(volatile uint64_t *)frames[0] = 0x1111;
	*(volatile uint64_t *)frames[1] = 0x2222;
	platform->alias_map(w, (uintptr_t)frames[0]);
	flush_tlb_one(w);
	flush_tlb_others(smp_online_mask(), w);
	stop = false;
	seen = reads = 0;
	KT_ASSERT(t, smp_post(1, spin_reading, NULL, &seq),
		  "cpu 1: mailbox busy");
	bool started = wait_for(&seen, 0x1111, SMP_CALL_TIMEOUT_NS);

	platform->alias_unmap(w);
	platform->alias_map(w, (uintptr_t)frames[1]);
	flush_tlb_one(w); /* here only */
	if (started) {
		uint64_t r = reads, end = clock_read() + SMP_CALL_TIMEOUT_NS;
		while (READ_ONCE(reads) < r + 100 && clock_read() < end)
			asm volatile("pause");
		stale = READ_ONCE(seen) == 0x1111;
		steal0 = READ_ONCE(st->steal);
		uint64_t t_end = clock_read() + 3 * SMP_CALL_TIMEOUT_NS;
		while (clock_read() < t_end) {
			samples++;
			if (READ_ONCE(st->preempted) & KVM_VCPU_PREEMPTED) {
				preempted_seen++;
				if (!kvm_tlb_defer_preempted(1ULL << 1,
							     areas)) {
					deferred = true;
					break;
				}
			}
		}
		steal1 = READ_ONCE(st->steal);
	}
	if (deferred) {
		saw_new = wait_for(&seen, 0x2222, 5 * SMP_CALL_TIMEOUT_NS);
		uint64_t end = clock_read() + 5 * SMP_CALL_TIMEOUT_NS;
		while (!(consumed = !(READ_ONCE(st->preempted) &
				      KVM_VCPU_FLUSH_TLB)) &&
		       clock_read() < end)
			asm volatile("pause");
	}
	stop = true;
	bool finished = smp_wait(1, seq, 30 * SMP_CALL_TIMEOUT_NS);
	platform->alias_unmap(w);
	flush_tlb_one(w);
	flush_tlb_others(smp_online_mask(), w);

	KT_ASSERT(t, started, "cpu 1 never read the first mapping");
	KT_ASSERT(t, finished, "cpu 1 did not stop spinning");
	/* Steal time is time the vCPU was runnable but not running. */
	printk("    # smp.kvm_tlb: cpu 1 %s the old frame after the remap; "
	       "preempted in %lu of %lu samples while its steal time grew "
	       "by %lu us%s\n",
	       stale ? "still read" : "no longer read", preempted_seen, samples,
	       (steal1 - steal0) / 1000,
	       deferred ? "; deferred its flush to the host" : "");
	if (!deferred) {
		snprintf(skip_why, sizeof(skip_why),
			 "the host did not mark cpu 1 preempted in 3 s "
			 "(%lu samples; its steal time grew %lu us)",
			 samples, (steal1 - steal0) / 1000);
		KT_SKIP(t, skip_why);
	}
	KT_EXPECT(t, saw_new,
		  "cpu 1 still reads %#lx after the host was to "
		  "flush its TLB",
		  seen);
	KT_EXPECT(t, consumed,
		  "the host left KVM_VCPU_FLUSH_TLB set (byte %#x) in 5 s",
		  READ_ONCE(st->preempted));
}
