/*
 * smp.c - bringing up the other CPUs, the per-CPU mailbox, stopping the
 * other CPUs for text writes (smp.h). Platform-neutral: the platform lists
 * and starts CPUs (struct platform: cpus_list, cpu_start).
 */
#include "smp.h"
#include "cmdline.h"
#include "kernel.h"
#include "layout.h"
#include "platform.h"
#include "pvops.h"
#include "timer.h"
#include "trap.h"

unsigned smp_online = 1;
unsigned smp_present = 1;
struct percpu *smp_cpus[NR_CPUS_MAX] = {&percpu0};

/*
 * Each AP's stack, by percpu slot, with a guard page below it that the
 * platform unmaps (platform->guard_page), so an overflow faults. Natively
 * the fault on delivering that fault is a #DF on the CPU's own IST stack,
 * whose report names the CPU (trap.c: smp_stack_guard_slot); under Xen PV
 * Xen cannot deliver it and kills the domain, naming the vCPU itself.
 */
#define AP_GUARD_SIZE PAGE_SIZE
static uint8_t ap_stacks[NR_CPUS_MAX][AP_GUARD_SIZE + AP_STACK_SIZE]
    __attribute__((aligned(4096)));
static bool guarded[NR_CPUS_MAX];

int smp_stack_guard_slot(uint64_t va)
{
	uint64_t lo = (uint64_t)ap_stacks;

	if (va < lo || va >= lo + sizeof(ap_stacks))
		return -1;
	unsigned slot = (va - lo) / sizeof(ap_stacks[0]);
	bool in_guard = (va - lo) % sizeof(ap_stacks[0]) < AP_GUARD_SIZE;
	return in_guard && guarded[slot] ? (int)slot : -1;
}

/* A CPU being started (cpu_start until online or abandoned). */
static struct percpu *volatile smp_starting;

static void tlb_ipi(void);
static void sync_ipi(void);

/*
 * How many CPUs the options allow: nosmp = 1; maxcpus=N; else all.
 * maxcpus=0 means the boot CPU only, as nosmp (and as in Linux), and says
 * so: no CPU at all cannot be what was meant.
 */
static unsigned cpu_limit(void)
{
	unsigned long n;

	if (opts.nosmp)
		return 1;
	if (!opts.maxcpus || !cmdline_number("maxcpus", opts.maxcpus, 4096, &n))
		return NR_CPUS_MAX;
	if (!n) {
		printk("warning: maxcpus=0: the boot CPU only, as nosmp\n");
		return 1;
	}
	return n < NR_CPUS_MAX ? (unsigned)n : NR_CPUS_MAX;
}

static bool wait_online(struct percpu *p)
{
	uint64_t end = clock_read() + SMP_START_TIMEOUT_NS;

	while (!READ_ONCE(p->online))
		if (clock_read() > end)
			return false;
		else
			asm volatile("pause");
	return true;
}

/* What a CPU's platform id is called in messages. */
static const char *id_kind(void)
{
	return platform->id == PLATFORM_XEN_PV ? "vcpu" : "apic id";
}

/* inject=ap-hang: the first AP stops before it is up, for good. */
static volatile bool inject_never;

static bool inject_hang(void)
{
	static bool done;

	if (!opts.inject || strcmp(opts.inject, "ap-hang") || done)
		return false;
	done = true;
	return true;
}

/* inject=ap-fault: the last CPU takes an exception its report must name. */
static void inject_fault(void *arg)
{
	(void)arg;
	asm volatile("ud2");
}

/*
 * inject=ap-stack-overflow: recurse until the guard page stops it (the
 * bound is far beyond any stack, and keeps the compiler's recursion check
 * quiet).
 */
static unsigned __attribute__((noinline)) stack_eater(unsigned depth)
{
	volatile uint8_t pad[512];

	pad[0] = (uint8_t)depth;
	if (depth < 1000000)
		pad[1] = (uint8_t)stack_eater(depth + 1); /* not a tail call */
	return pad[0] ^ pad[1];
}

static void inject_overflow(void *arg)
{
	(void)arg;
	stack_eater(0);
}

static bool inject_is(const char *what)
{
	return opts.inject && !strcmp(opts.inject, what);
}

void smp_boot(void)
{
	uint32_t ids[NR_CPUS_MAX];
	unsigned limit = cpu_limit();
	unsigned n =
	    platform->cpus_list ? platform->cpus_list(ids, NR_CPUS_MAX) : 0;

	percpu0.online = true;
	smp_ipi_register(VEC_IPI_TLB, tlb_ipi);
	smp_ipi_register(VEC_IPI_SYNC, sync_ipi);
	if (n)
		percpu0.apic_id = ids[0];
	if (n && platform->ipi_init_cpu) {
		platform->ipi_init_cpu(&percpu0);
		percpu0.ipi_ready = true;
	}
	printk("cpu 0: up (%s %u, the boot CPU)\n", id_kind(), percpu0.apic_id);
	if (!n)
		return; /* the platform said why */
	smp_present = n;
	if (n > NR_CPUS_MAX)
		printk("warning: %u CPUs present, this kernel supports %u; "
		       "starting %u\n",
		       n, NR_CPUS_MAX, MIN(limit, NR_CPUS_MAX));
	unsigned want = MIN(MIN(n, limit), NR_CPUS_MAX);
	for (unsigned i = 1, area = 1; i < want && area < NR_CPUS_MAX; i++) {
		struct percpu *p = &percpu_area[area];
		p->self = p;
		p->cpu = smp_online;
		p->apic_id = ids[i];
		p->stack_top = (uint64_t)ap_stacks[area] + sizeof(ap_stacks[0]);
		if (platform->guard_page && !guarded[area]) {
			platform->guard_page((uintptr_t)ap_stacks[area]);
			guarded[area] = true;
		}
		area++;
		smp_starting = p;
		bool started = platform->cpu_start(p);
		if (started && inject_is("stop-during-start"))
			smp_stop_others();
		if (!started || !wait_online(p)) {
			printk("warning: cpu %lu did not come up (%s %u)\n",
			       p->cpu, id_kind(), ids[i]);
			/*
			 * Stop it; its area and stack are never reused
			 * (under Xen its vcpu_info stays registered there).
			 */
			platform->cpu_abandon(p);
			p->cpu = ~0UL;
			smp_starting = NULL;
			continue;
		}
		smp_cpus[smp_online++] = p;
		smp_starting = NULL;
	}
	if (platform->smp_ready)
		platform->smp_ready();
	if (inject_is("ap-fault") && smp_online > 1)
		smp_call_on(smp_online - 1, inject_fault, NULL,
			    SMP_CALL_TIMEOUT_NS);
	if (inject_is("ap-stack-overflow") && smp_online > 1)
		smp_call_on(smp_online - 1, inject_overflow, NULL,
			    SMP_CALL_TIMEOUT_NS);
}

void smp_report(void)
{
	printk("cpus: %u online (of %u present)\n", smp_online, smp_present);
}

/* ---- the mailbox ---- */

static void ap_run_mail(struct percpu *p)
{
	uint64_t seq = __atomic_load_n(&p->call_seq, __ATOMIC_ACQUIRE);

	if (seq == p->call_done)
		return;
	p->call_fn(p->call_arg);
	__atomic_store_n(&p->call_done, seq, __ATOMIC_RELEASE);
}

static __attribute__((noreturn)) void smp_ap_idle(struct percpu *p)
{
	for (;;) {
		irq_disable();
		smp_sync_serve(); /* an IPI that woke us may be served already */
		if (READ_ONCE(p->call_seq) != READ_ONCE(p->call_done)) {
			ap_run_mail(p);
			continue;
		}
		safe_halt(); /* interrupts on; the tick wakes us */
	}
}

void smp_ap_online(struct percpu *p)
{
	if (inject_hang())
		while (!inject_never)
			asm volatile("pause");
	if (platform->ipi_init_cpu) {
		platform->ipi_init_cpu(p);
		p->ipi_ready = true;
	}
	printk("cpu %lu: up (%s %u)\n", p->cpu, id_kind(), p->apic_id);
	__atomic_store_n(&p->online, true, __ATOMIC_RELEASE);
	smp_ap_idle(p);
}

/* A mailbox frees up once its CPU has finished the last request. */
static bool wait_free(struct percpu *p, uint64_t timeout_ns)
{
	uint64_t end = clock_read() + timeout_ns;

	while (READ_ONCE(p->call_seq) != READ_ONCE(p->call_done)) {
		if (clock_read() > end)
			return false;
		smp_serve_pending();
		asm volatile("pause");
	}
	return true;
}

/* Post a request and wake the CPU with an IPI (its tick, if it cannot). */
static bool post(struct percpu *p, void (*fn)(void *), void *arg, uint64_t *seq)
{
	if (READ_ONCE(p->call_seq) != READ_ONCE(p->call_done))
		return false; /* a request that timed out is still running */
	p->call_fn = fn;
	p->call_arg = arg;
	*seq = p->call_seq + 1;
	__atomic_store_n(&p->call_seq, *seq, __ATOMIC_SEQ_CST);
	if (READ_ONCE(p->ipi_ready))
		send_ipi((unsigned)p->cpu, VEC_IPI_CALL);
	return true;
}

static bool wait_done(struct percpu *p, uint64_t seq, uint64_t timeout_ns)
{
	uint64_t end = clock_read() + timeout_ns;

	while (__atomic_load_n(&p->call_done, __ATOMIC_ACQUIRE) != seq) {
		if (clock_read() > end)
			return false;
		smp_serve_pending();
		asm volatile("pause");
	}
	return true;
}

bool smp_post(unsigned cpu, void (*fn)(void *), void *arg, uint64_t *seq)
{
	if (cpu == smp_cpu() || cpu >= smp_online)
		return false;
	return post(smp_cpus[cpu], fn, arg, seq);
}

bool smp_wait(unsigned cpu, uint64_t seq, uint64_t timeout_ns)
{
	return cpu < smp_online && wait_done(smp_cpus[cpu], seq, timeout_ns);
}

bool smp_call_on(unsigned cpu, void (*fn)(void *), void *arg,
		 uint64_t timeout_ns)
{
	uint64_t seq;

	if (cpu == smp_cpu()) {
		unsigned long fl = irq_save();
		fn(arg);
		irq_restore(fl);
		return true;
	}
	/*
	 * Only APs poll a mailbox (CPU 0 never idles in smp_ap_idle), and
	 * only CPU 0 posts: two posters could race for one mailbox. Refuse
	 * both now rather than lose a request; IPIs will lift the limits.
	 */
	if (cpu >= smp_online || cpu == 0 || smp_cpu() != 0)
		return false;
	struct percpu *p = smp_cpus[cpu];
	return post(p, fn, arg, &seq) && wait_done(p, seq, timeout_ns);
}

/* ---- IPIs ---- */

static void (*ipi_handlers[SMP_IPI_NR])(void);

void smp_ipi_register(unsigned vector, void (*fn)(void))
{
	BUG_ON(vector < VEC_IPI_BASE || vector >= VEC_IPI_BASE + SMP_IPI_NR);
	ipi_handlers[vector - VEC_IPI_BASE] = fn;
}

void smp_ipi_handle(unsigned vector)
{
	unsigned i = vector - VEC_IPI_BASE;

	if (i >= SMP_IPI_NR) {
		printk("smp: cpu %u: IPI with vector %#x?\n", smp_cpu(),
		       vector);
		return;
	}
	this_cpu()->ipi_received[i]++;
	if (ipi_handlers[i])
		ipi_handlers[i]();
}

uint64_t smp_online_mask(void)
{
	return smp_online >= 64 ? ~0ULL : (1ULL << smp_online) - 1;
}

/* ---- native flush_tlb_others: IPI, invlpg there, acknowledge ---- */

static volatile int tlb_lock;

void smp_tlb_serve(void)
{
	struct percpu *p = this_cpu();
	uint64_t seq = __atomic_load_n(&p->tlb_seq, __ATOMIC_ACQUIRE);

	if (seq == p->tlb_done)
		return;
	flush_tlb_one(p->tlb_va);
	__atomic_store_n(&p->tlb_done, seq, __ATOMIC_RELEASE);
}

static void tlb_ipi(void)
{
	smp_tlb_serve();
}

/*
 * One flusher at a time (the lock); each target gets the address and a
 * new sequence number, then an IPI, and the flusher waits until each has
 * acknowledged. While it waits for the lock or the acknowledgements it
 * serves its own requests, so two CPUs flushing each other never wait on
 * each other with interrupts off. A CPU that does not answer in a second
 * is a bug: panic, naming it.
 */
uint64_t native_flush_tlb_others(unsigned long va, uint64_t mask)
{
	unsigned me = smp_cpu();

	mask &= smp_online_mask() & ~(1ULL << me);
	if (!mask)
		return 0;
	while (__atomic_exchange_n(&tlb_lock, 1, __ATOMIC_ACQUIRE)) {
		smp_serve_pending();
		asm volatile("pause");
	}
	for (uint64_t m = mask; m; m &= m - 1) {
		struct percpu *p = smp_cpus[__builtin_ctzll(m)];
		p->tlb_va = va;
		__atomic_store_n(&p->tlb_seq, p->tlb_seq + 1, __ATOMIC_SEQ_CST);
	}
	send_ipi_mask(mask, VEC_IPI_TLB);
	uint64_t end = clock_read() + SMP_CALL_TIMEOUT_NS;
	for (uint64_t m = mask; m; m &= m - 1) {
		unsigned cpu = __builtin_ctzll(m);
		struct percpu *p = smp_cpus[cpu];
		while (__atomic_load_n(&p->tlb_done, __ATOMIC_ACQUIRE) !=
		       p->tlb_seq) {
			if (clock_read() > end)
				panic("smp: cpu %u did not acknowledge a TLB "
				      "flush of %#lx",
				      cpu, va);
			smp_serve_pending();
			asm volatile("pause");
		}
	}
	__atomic_store_n(&tlb_lock, 0, __ATOMIC_RELEASE);
	return 0;
}

/* ---- live patching: the sync round (patch_seam.h) ---- */

_Static_assert(SMP_IPI_NR <= ARRAY_SIZE(percpu0.ipi_port),
	       "percpu's IPI arrays hold every vector");

static volatile uint64_t sync_gen; /* rounds begun; one writer at a time */
struct smp_sync_stats smp_sync_stats;

/*
 * Serialise (raw cpuid: the writer may just have rewritten any site, the
 * cpuid pvop's included), then acknowledge the latest round. Also called
 * from every wait that runs with interrupts off (the rule, patch_seam.h).
 */
void smp_sync_serve(void)
{
	struct percpu *p = this_cpu();
	uint64_t g = __atomic_load_n(&sync_gen, __ATOMIC_ACQUIRE);

	if (p->sync_ack >= g)
		return;
	seam_serialise(); /* raw cpuid, not a site */
	__atomic_store_n(&p->sync_ack, g, __ATOMIC_RELEASE);
}

static void sync_ipi(void)
{
	smp_sync_serve();
}

/* Serve what another CPU may be waiting for from this one. */
void smp_serve_pending(void)
{
	smp_tlb_serve();
	smp_sync_serve();
}

unsigned smp_sync_others(void)
{
	unsigned me = smp_cpu();
	uint64_t mask = smp_online_mask() & ~(1ULL << me);

	if (!mask)
		return 0;
	uint64_t g = __atomic_add_fetch(&sync_gen, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&this_cpu()->sync_ack, g, __ATOMIC_RELEASE);
	send_ipi_mask(mask, VEC_IPI_SYNC);
	uint64_t end = clock_read() + SMP_CALL_TIMEOUT_NS;
	unsigned sent = 0;
	for (uint64_t m = mask; m; m &= m - 1, sent++) {
		unsigned cpu = __builtin_ctzll(m);
		struct percpu *p = smp_cpus[cpu];
		while (__atomic_load_n(&p->sync_ack, __ATOMIC_ACQUIRE) < g) {
			if (clock_read() > end)
				panic("patch: cpu %u did not acknowledge text "
				      "sync round %lu in time",
				      cpu, g);
			smp_tlb_serve();
			asm volatile("pause");
		}
	}
	smp_sync_stats.rounds++;
	return sent;
}

/* ---- stopping the others while text is written ---- */

static volatile uint64_t park_gen;
static volatile unsigned parked;
static unsigned stop_depth;
struct smp_stop_stats smp_stop_stats;

/*
 * The parked loop: no pvop or other patch site may run here, since text
 * changes meanwhile, and leaving must serialise this CPU before it runs
 * any byte that changed. cpuid (raw: the cpuid pvop is itself a site)
 * does both; the build-time checker allows raw instructions in smp_parked_*.
 */
static void __attribute__((noinline)) smp_parked_loop(void *arg)
{
	uint64_t gen = (uint64_t)arg;
	uint32_t a = 0, b, c = 0, d;

	__atomic_fetch_add(&parked, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&park_gen, __ATOMIC_ACQUIRE) == gen)
		asm volatile("pause");
	asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
}

void smp_stop_others(void)
{
	unsigned me = smp_cpu();
	uint64_t seq;

	/*
	 * A CPU half-way through start-up is in no mailbox and cannot be
	 * parked, and runs kernel text: a text write now is a bug.
	 */
	if (smp_starting)
		panic("smp: cpu %lu (%s %u) is starting and cannot be stopped "
		      "for a text write",
		      smp_starting->cpu, id_kind(), smp_starting->apic_id);
	if (smp_online == 1 || stop_depth++)
		return;
	/* The others are parked through their mailboxes, which only CPU 0
	 * may post to (smp_call_on): text is written by CPU 0 only. */
	if (me != 0)
		panic("smp: cpu %u tried to write text; only cpu 0 may while "
		      "other CPUs are online",
		      me);
	parked = 0;
	unsigned want = 0;
	for (unsigned i = 0; i < smp_online; i++) {
		if (i == me)
			continue;
		/* It may still be leaving the last stop. */
		if (!wait_free(smp_cpus[i], SMP_CALL_TIMEOUT_NS) ||
		    !post(smp_cpus[i], smp_parked_loop,
			  (void *)(uint64_t)park_gen, &seq))
			panic("smp: cpu %u is busy and cannot stop for a text "
			      "write",
			      i);
		want++;
	}
	uint64_t t0 = clock_read(), end = t0 + SMP_CALL_TIMEOUT_NS;
	while (__atomic_load_n(&parked, __ATOMIC_ACQUIRE) != want) {
		if (clock_read() > end)
			panic("smp: %u of %u CPUs stopped for a text write in "
			      "time",
			      parked, want);
		asm volatile("pause");
	}
	smp_stop_stats.rounds++;
	smp_stop_stats.last_parked = want;
	smp_stop_stats.wait_ns += clock_read() - t0;
}

/*
 * Let them go, and wait until each has left its loop (its mailbox is free
 * again), so that a request right after a text write finds it ready. Under
 * -icount the CPUs take turns on one thread: without this wait the writer
 * would go on before the others had run at all.
 */
void smp_resume_others(void)
{
	unsigned me = smp_cpu();

	if (smp_online == 1 || --stop_depth)
		return;
	__atomic_fetch_add(&park_gen, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < smp_online; i++)
		if (i != me && !wait_free(smp_cpus[i], SMP_CALL_TIMEOUT_NS))
			printk("warning: smp: cpu %u did not leave its stop "
			       "after a text write\n",
			       i);
}
