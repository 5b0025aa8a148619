/*
 * bench.c - the dispatch-mode benchmark (see bench.h for the modes).
 *
 * Each cell is a noinline loop function with its own call sites, pinned
 * to a dispatch mode by site flags, so one boot patches each cell as it
 * should and measures them all. Functions that hold raw privileged
 * instructions are named bench_raw_* (the build-time checker allows
 * those); the raw instructions of the `if` cells only run natively.
 */
#include "bench.h"
#include "alternative.h"
#include "bench_select.h"
#include "cmdline.h"
#include "kernel.h"
#include "ktest.h"
#include "mm.h"
#include "platform.h"
#include "pvop_backend.h"
#include "smp.h"
#include "spinlock.h"
#include "timer.h"
#include "trap.h"
#include "user.h"
#include "xen.h"

uint64_t boot_tsc_entry, boot_tsc_ready;

const char *const bench_mode_names[BENCH_MODE_NR] = {
    [BENCH_RAW] = "raw",
    [BENCH_INDIRECT] = "indirect",
    [BENCH_CALL] = "call",
    [BENCH_INLINE] = "inline",
    [BENCH_IF] = "if",
    [BENCH_RETPOLINE] = "retpoline",
    [BENCH_PAD_NOPS] = "pad-nops",
    [BENCH_PAD_NOP1] = "pad-nop1",
    [BENCH_PAD_JMP] = "pad-jmp",
    [BENCH_PAD_SINGLE] = "pad-single",
    [BENCH_PAD_PREFIX] = "pad-prefix",
};

#define BENCH_MSR 0xc0000102 /* KERNEL_GS_BASE: cheap, unused by tinypv */

static volatile int bench_native; /* the `if` cells' platform variable */
static uint8_t bench_page[4096] __attribute__((aligned(4096)));

/* A retpoline-style call: a direct call to a per-op thunk (bench_thunks.S)
 * that jumps to pv_ops[op] by `ret`, trapping speculation in a loop. */
#define BENCH_RETPOLINE_ASM "call bench_retpoline_%c[pv_op]\n\t"

/* ---- op bodies: (call-site text, site flags) ---- */

#define BODY_irq_disable(A, F) PVOP_V_RAX_ASM(A, IRQ_DISABLE, F)
#define BODY_irq_enable(A, F) PVOP_V_RAX_ASM(A, IRQ_ENABLE, F)
#define BODY_save_fl(A, F)                                                     \
	do {                                                                   \
		unsigned long v;                                               \
		PVOP_R_RAX_ASM(A, SAVE_FL, F, v);                              \
	} while (0)
#define BODY_restore_fl(A, F) PVOP_W_RDI_ASM(A, RESTORE_FL, F, 0UL)
#define BODY_read_cr2(A, F)                                                    \
	do {                                                                   \
		unsigned long v;                                               \
		PVOP_R_RAX_ASM(A, READ_CR2, F, v);                             \
	} while (0)
#define BODY_read_cr3(A, F)                                                    \
	do {                                                                   \
		unsigned long v;                                               \
		PVOP_R_RAX_ASM(A, READ_CR3, F, v);                             \
	} while (0)
#define BODY_flush_tlb_one(A, F)                                               \
	PVOP_W_RDI_ASM(A, FLUSH_TLB_ONE, F, (unsigned long)bench_page)
#define BODY_io_delay(A, F) PVOP_V_RAX_ASM(A, IO_DELAY, F)
#define BODY_read_msr(A, F)                                                    \
	do {                                                                   \
		uint32_t lo, hi;                                               \
		PVOP_READ_MSR_ASM(A, F, BENCH_MSR, lo, hi);                    \
	} while (0)
#define BODY_cpuid(A, F)                                                       \
	do {                                                                   \
		struct cpuid_regs r = {0, 0, 0, 0};                            \
		PVOP_CPUID_ASM(A, F, r);                                       \
	} while (0)
#define BODY_clock_read(A, F)                                                  \
	do {                                                                   \
		uint64_t v;                                                    \
		PVOP_R_RAX_ASM(A, CLOCK_READ, F, v);                           \
	} while (0)

/* ---- the raw instruction, hand-written (native and KVM) ---- */

#define RAW_irq_disable() asm volatile("cli" ::: "memory")
#define RAW_irq_enable() asm volatile("sti" ::: "memory")
#define RAW_save_fl()                                                          \
	do {                                                                   \
		unsigned long v;                                               \
		asm volatile("pushf; pop %0" : "=r"(v)::"memory");             \
	} while (0)
#define RAW_restore_fl()                                                       \
	asm volatile("push %0; popf" ::"r"(0UL) : "memory", "cc")
#define RAW_read_cr2()                                                         \
	do {                                                                   \
		unsigned long v;                                               \
		asm volatile("mov %%cr2, %0" : "=r"(v)::"memory");             \
	} while (0)
#define RAW_read_cr3()                                                         \
	do {                                                                   \
		unsigned long v;                                               \
		asm volatile("mov %%cr3, %0" : "=r"(v)::"memory");             \
	} while (0)
#define RAW_flush_tlb_one()                                                    \
	asm volatile("invlpg (%0)" ::"r"(bench_page) : "memory")
#define RAW_io_delay() asm volatile("outb %%al, $0x80" ::: "memory")
#define RAW_read_msr()                                                         \
	do {                                                                   \
		uint32_t lo, hi;                                               \
		asm volatile("rdmsr"                                           \
			     : "=a"(lo), "=d"(hi)                              \
			     : "c"(BENCH_MSR)                                  \
			     : "memory");                                      \
	} while (0)
#define RAW_cpuid()                                                            \
	do {                                                                   \
		uint32_t a = 0, b, c = 0, d;                                   \
		asm volatile("cpuid"                                           \
			     : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");  \
	} while (0)
/* No single instruction: the native clock, called directly. */
#define RAW_clock_read() (void)tsc_clock_read()

/* ---- the loops ---- */

#define LOOP(...) BENCH_LOOP(__VA_ARGS__)

typedef uint64_t (*loop_fn)(unsigned n);

static __attribute__((noinline)) uint64_t bench_empty(unsigned n) LOOP(;)

/* The inline and call cells use the default padding whatever pvpad= says:
 * the icount tests compare them with fixed expectations. */
#define INLINE_F (PVOP_SITE_FORCE_INLINE | PVOP_SITE_PAD(PATCH_PAD_DEFAULT))
#define CALL_F (PVOP_SITE_FORCE_CALL | PVOP_SITE_PAD(PATCH_PAD_DEFAULT))
#define PAD_F(s) (PVOP_SITE_FORCE_INLINE | PVOP_SITE_PAD(PATCH_PAD_##s))

/* clang-format off */
#define BENCH_FNS(op)							\
static __attribute__((noinline)) uint64_t bench_raw_##op(unsigned n)	\
	LOOP(RAW_##op())						\
static __attribute__((noinline)) uint64_t bench_ind_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, PVOP_SITE_FORCE_INDIRECT))	\
static __attribute__((noinline)) uint64_t bench_call_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, CALL_F))		\
static __attribute__((noinline)) uint64_t bench_inl_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, INLINE_F))			\
static __attribute__((noinline)) uint64_t bench_raw_if_##op(unsigned n)	\
	LOOP(if (bench_native) RAW_##op();				\
	     else BODY_##op(PVOP_SITE_ASM, CALL_F))			\
static __attribute__((noinline)) uint64_t bench_retp_##op(unsigned n)	\
	LOOP(BODY_##op(BENCH_RETPOLINE_ASM, 0))				\
static __attribute__((noinline)) uint64_t bench_pn_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, PAD_F(NOPS)))			\
static __attribute__((noinline)) uint64_t bench_p1_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, PAD_F(NOP1)))			\
static __attribute__((noinline)) uint64_t bench_pj_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, PAD_F(JMP)))			\
static __attribute__((noinline)) uint64_t bench_ps_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, PAD_F(SINGLE)))			\
static __attribute__((noinline)) uint64_t bench_pp_##op(unsigned n)	\
	LOOP(BODY_##op(PVOP_SITE_ASM, PAD_F(PREFIX)))

#define BENCH_ROW(op, OP, maskable) {					\
	PVOP_##OP, maskable, {						\
		bench_raw_##op, bench_ind_##op, bench_call_##op,	\
		bench_inl_##op, bench_raw_if_##op, bench_retp_##op,	\
		bench_pn_##op, bench_p1_##op, bench_pj_##op,		\
		bench_ps_##op, bench_pp_##op } }
    /* clang-format on */

    BENCH_FNS(irq_disable) BENCH_FNS(irq_enable) BENCH_FNS(save_fl)
	BENCH_FNS(restore_fl) BENCH_FNS(read_cr2) BENCH_FNS(read_cr3)
	    BENCH_FNS(flush_tlb_one) BENCH_FNS(io_delay) BENCH_FNS(read_msr)
		BENCH_FNS(cpuid) BENCH_FNS(clock_read)

		    static const struct bench_row {
	int op;
	bool maskable; /* interrupts may stay masked around the batch */
	loop_fn fn[BENCH_MODE_NR];
} rows[] = {
    BENCH_ROW(irq_disable, IRQ_DISABLE, true),
    BENCH_ROW(irq_enable, IRQ_ENABLE, false),
    BENCH_ROW(save_fl, SAVE_FL, true),
    BENCH_ROW(restore_fl, RESTORE_FL, true),
    BENCH_ROW(read_cr2, READ_CR2, true),
    BENCH_ROW(read_cr3, READ_CR3, true),
    BENCH_ROW(flush_tlb_one, FLUSH_TLB_ONE, true),
    BENCH_ROW(io_delay, IO_DELAY, true),
    BENCH_ROW(read_msr, READ_MSR, true),
    BENCH_ROW(cpuid, CPUID, true),
    BENCH_ROW(clock_read, CLOCK_READ, true),
};

unsigned bench_nr_ops(void)
{
	return ARRAY_SIZE(rows);
}

int bench_op(unsigned i)
{
	return rows[i].op;
}

static bool mode_applies(enum bench_mode mode)
{
	/* Raw privileged instructions fault in a PV guest's ring 3. */
	return mode != BENCH_RAW || platform->id != PLATFORM_XEN_PV;
}

void bench_sort_u64(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

#define MAX_BATCHES 101

struct bench_result bench_measure(unsigned i, enum bench_mode mode,
				  unsigned calls, unsigned batches)
{
	struct bench_result r = {.calls = calls, .batches = batches};
	uint64_t per[MAX_BATCHES];
	loop_fn fn = rows[i].fn[mode];

	if (!mode_applies(mode) || batches > MAX_BATCHES || !calls)
		return r;
	bench_native = platform->id != PLATFORM_XEN_PV;
	for (unsigned w = 0; w < 2; w++) { /* warm-up */
		unsigned long fl = irq_save();
		fn(calls);
		bench_empty(calls);
		irq_restore(fl);
	}
	uint64_t min_c = UINT64_MAX, min_e = UINT64_MAX;
	for (unsigned b = 0; b < batches; b++) {
		unsigned long fl = irq_save();
		if (!rows[i].maskable)
			irq_enable();
		uint64_t c = fn(calls);
		irq_disable(); /* a tick in the empty loop would bias it */
		uint64_t e = bench_empty(calls);
		irq_restore(fl);
		per[b] = c > e ? (c - e) * 100 / calls : 0;
		min_c = c < min_c ? c : min_c;
		min_e = e < min_e ? e : min_e;
	}
	bench_sort_u64(per, batches);
	r.valid = true;
	/*
	 * The minimum is the least loop minus the least empty loop, not the
	 * least difference: noise in the empty loop (under Xen and icount,
	 * Xen's own timer work counts as instructions of the vCPU) would make
	 * the least difference too small, even 0.
	 */
	r.min = min_c > min_e ? (min_c - min_e) * 100 / calls : 0;
	r.median = per[batches / 2];
	r.p99 = per[(batches * 99) / 100 < batches ? (batches * 99) / 100
						   : batches - 1];
	return r;
}

void bench_print_x100(const char *key, uint64_t v)
{
	printk(" %s=%lu.%02lu", key, v / 100, v % 100);
}

/* ---- SMP cells: CPU 0 against CPU 1, which idles between them ---- */

static volatile uint64_t smp_seq, smp_ack;
static struct spinlock bench_lock;

static void bench_ping_handler(void)
{
	__atomic_store_n(&smp_ack, __atomic_load_n(&smp_seq, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

/* An IPI to CPU 1 and its acknowledgement (CPU 1 wakes from halt). */
static void smp_cell_ipi(void)
{
	uint64_t s = smp_seq + 1;
	__atomic_store_n(&smp_seq, s, __ATOMIC_SEQ_CST);
	send_ipi(1, VEC_IPI_PING);
	while (__atomic_load_n(&smp_ack, __ATOMIC_ACQUIRE) != s)
		asm volatile("pause");
}

static void smp_cell_flush_one(void)
{
	flush_tlb_others(1ULL << 1, (unsigned long)bench_page);
}

static void smp_cell_flush_all(void)
{
	flush_tlb_others(smp_online_mask(), (unsigned long)bench_page);
}

static void smp_cell_lock(void)
{
	spin_lock(&bench_lock);
	spin_unlock(&bench_lock);
}

/*
 * Contended: CPU 1 runs the same lock / increment / unlock loop as CPU 0
 * meanwhile (started through its mailbox each batch); the figure is CPU
 * 0's time per acquisition, hand-overs and slow-path waits included.
 */
static volatile uint64_t bench_counter;
static unsigned contended_calls;
static volatile unsigned contended_ready, contended_go;

static void contended_loop(void)
{
	for (unsigned i = 0; i < contended_calls; i++) {
		spin_lock(&bench_lock);
		bench_counter = bench_counter + 1;
		spin_unlock(&bench_lock);
	}
}

/* CPU 1: say it is here, wait for CPU 0's go, then contend. */
static void contended_worker(void *arg)
{
	(void)arg;
	__atomic_store_n(&contended_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&contended_go, __ATOMIC_ACQUIRE))
		asm volatile("pause");
	contended_loop();
}

/*
 * Every wait here has a pause: under icount QEMU runs the CPUs in turn,
 * and pause is what ends a spinning CPU's turn.
 *
 * The slow-path hand-over: CPU 0 holds the lock until CPU 1, asking for
 * it, has gone to lock_wait (its percpu says so); the figure is from CPU
 * 0's unlock (which lock_kick()s CPU 1) to CPU 0 seeing that CPU 1 holds
 * the lock. So every call takes lock_wait and lock_kick, on every backend.
 */
static struct spinlock handoff_lock;
static volatile uint64_t handoff_go, handoff_got;
static unsigned handoff_calls;
#define HANDOFF_TIMEOUT_NS (10 * SMP_CALL_TIMEOUT_NS)

static bool wait_value(volatile uint64_t *v, uint64_t want)
{
	uint64_t end = clock_read() + HANDOFF_TIMEOUT_NS;
	while (__atomic_load_n(v, __ATOMIC_ACQUIRE) != want) {
		if (clock_read() > end)
			return false;
		asm volatile("pause");
	}
	return true;
}

static void handoff_worker(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= handoff_calls; i++) {
		if (!wait_value(&handoff_go, i))
			return;
		spin_lock(&handoff_lock);
		__atomic_store_n(&handoff_got, i, __ATOMIC_RELEASE);
		spin_unlock(&handoff_lock);
	}
}

/*
 * One batch: CPU 0's total ticks for calls hand-overs, or 0 if stuck
 * (*why says where).
 */
static uint64_t handoff_batch(unsigned calls, const char **why)
{
	struct percpu *other = smp_cpus[1];
	uint64_t seq, total = 0;

	handoff_calls = calls;
	handoff_go = handoff_got = 0;
	*why = "its mailbox was busy";
	if (!smp_post(1, handoff_worker, NULL, &seq))
		return 0;
	*why = "it never reached the slow path";
	for (uint64_t i = 1; i <= calls; i++) {
		spin_lock(&handoff_lock);
		__atomic_store_n(&handoff_go, i, __ATOMIC_RELEASE);
		uint64_t end = clock_read() + HANDOFF_TIMEOUT_NS;
		while (READ_ONCE(other->lock_waiting) != &handoff_lock) {
			if (clock_read() > end) {
				spin_unlock(&handoff_lock);
				return 0;
			}
			asm volatile("pause");
		}
		uint64_t t0 = bench_tsc();
		spin_unlock(&handoff_lock);
		if (!wait_value(&handoff_got, i)) {
			*why = "it never took the lock after the kick";
			return 0;
		}
		total += bench_tsc() - t0;
	}
	*why = "it did not finish";
	return smp_wait(1, seq, HANDOFF_TIMEOUT_NS) ? total : 0;
}

static void bench_handoff(unsigned calls, unsigned batches)
{
	uint64_t per[64];

	handoff_lock = (struct spinlock){0};
	for (unsigned b = 0; b < batches; b++) {
		const char *why;
		uint64_t total = handoff_batch(calls, &why);
		if (!total) {
			printk("bench: warning: lock_slow_handoff: batch %u: "
			       "cpu 1: %s\n",
			       b, why);
			return;
		}
		per[b] = total * 100 / calls;
	}
	bench_sort_u64(per, batches);
	printk("bench: op=lock_slow_handoff mode=smp cpus=%u calls=%u "
	       "batches=%u slow_entries=%lu kicks=%lu",
	       smp_online, calls, batches, handoff_lock.slow_entries,
	       handoff_lock.kicks);
	bench_print_x100("min", per[0]);
	bench_print_x100("median", per[batches / 2]);
	bench_print_x100("p99", per[(batches * 99) / 100]);
	printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
}

static const struct {
	const char *name;
	void (*fn)(void);
} smp_cells[] = {
    {"ipi_roundtrip", smp_cell_ipi},
    {"flush_tlb_others_one", smp_cell_flush_one},
    {"flush_tlb_others_all", smp_cell_flush_all},
    {"lock_uncontended", smp_cell_lock},
};

/*
 * Per call, the whole operation (no empty loop subtracted: the loop is a
 * few instructions against hundreds). Interrupts stay on on CPU 0, as
 * its own flush requests and ticks need them.
 */
static void bench_smp(unsigned calls, unsigned batches)
{
	uint64_t per[64];

	smp_ipi_register(VEC_IPI_PING, bench_ping_handler);
	for (unsigned i = 0; i < ARRAY_SIZE(smp_cells); i++) {
		smp_cells[i].fn(); /* warm */
		for (unsigned b = 0; b < batches; b++) {
			uint64_t t0 = bench_tsc();
			for (unsigned c = 0; c < calls; c++)
				smp_cells[i].fn();
			per[b] = (bench_tsc() - t0) * 100 / calls;
		}
		bench_sort_u64(per, batches);
		printk("bench: op=%s mode=smp cpus=%u calls=%u batches=%u",
		       smp_cells[i].name, smp_online, calls, batches);
		bench_print_x100("min", per[0]);
		bench_print_x100("median", per[batches / 2]);
		bench_print_x100("p99", per[(batches * 99) / 100]);
		printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
	}
	smp_ipi_register(VEC_IPI_PING, NULL);

	contended_calls = calls;
	unsigned done = 0;
	for (unsigned b = 0; b < batches; b++) {
		uint64_t seq;
		contended_ready = contended_go = 0;
		if (!smp_post(1, contended_worker, NULL, &seq))
			break;
		while (!__atomic_load_n(&contended_ready, __ATOMIC_ACQUIRE))
			asm volatile("pause");
		uint64_t t0 = bench_tsc();
		__atomic_store_n(&contended_go, 1, __ATOMIC_RELEASE);
		contended_loop();
		per[b] = (bench_tsc() - t0) * 100 / calls;
		if (!smp_wait(1, seq, SMP_CALL_TIMEOUT_NS * 10))
			break;
		done++;
	}
	if (done < batches) {
		printk("bench: warning: lock_contended: cpu 1 did not take "
		       "part\n");
		bench_handoff(calls, batches);
		return;
	}
	bench_sort_u64(per, batches);
	printk("bench: op=lock_contended mode=smp cpus=%u calls=%u batches=%u "
	       "slow_entries=%lu",
	       smp_online, calls, batches, bench_lock.slow_entries);
	bench_print_x100("min", per[0]);
	bench_print_x100("median", per[batches / 2]);
	bench_print_x100("p99", per[(batches * 99) / 100]);
	printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
	bench_handoff(calls, batches);
}

/*
 * One call chosen between two functions, eight ways (bench_select.h):
 * "bench: op=select mode=<method>" lines. Methods this build lacks
 * print nothing (static calls in bench_silicon); scripts/bench.py says
 * why.
 */
static void bench_select_cells(unsigned calls, unsigned batches)
{
	uint64_t per[MAX_BATCHES];

	bench_sel_prepare();
	for (int m = 0; m < BSEL_NR; m++) {
		if (!bench_sel_available(m) || batches > MAX_BATCHES)
			continue;
		for (unsigned w = 0; w < 2; w++) {
			unsigned long fl = irq_save();
			bench_sel_once(m, calls);
			irq_restore(fl);
		}
		for (unsigned b = 0; b < batches; b++) {
			unsigned long fl = irq_save();
			per[b] = bench_sel_once(m, calls);
			irq_restore(fl);
		}
		bench_sort_u64(per, batches);
		printk("bench: op=select mode=%s calls=%u batches=%u",
		       bench_sel_names[m], calls, batches);
		bench_print_x100("min", per[0]);
		bench_print_x100("median", per[batches / 2]);
		bench_print_x100("p99", per[(batches * 99) / 100]);
		if (m == BSEL_STATIC_CALL)
			printk(" %s", bench_sel_static_call_form());
		printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
	}
}

/*
 * ---- page-table updates (the MMU pvops) ----
 *
 * Cell: n set_pte calls on consecutive entries of one existing level-1
 * table at MMU_TEST_BASE + 16 MiB, each entry flipped between two frames
 * so that every call changes it, with or without a lazy MMU section
 * around the n (lazy=1 / lazy=0). No TLB flush is timed (the caller's,
 * whatever the strategy). The figure is per cell, less the same loop
 * calling an empty cell (n = 0, no section). Under Xen every strategy runs (xenmmu= only
 * picks the boot's); natively the one "native" (plain stores).
 */
static const unsigned mmu_sizes[] = {1, 2, 4, 8, 16, 64, 512};

static __attribute__((noinline)) void mmu_cell(uint64_t *l1, unsigned n,
					       bool lazy, uint64_t v0,
					       uint64_t v1, unsigned round)
{
	uint64_t v = (round & 1) ? v1 : v0;
	if (lazy)
		lazy_mmu_enter();
	for (unsigned i = 0; i < n; i++)
		set_pte(&l1[i], v);
	if (lazy)
		lazy_mmu_leave();
}

/* The same loop with no update and no section: subtracted from each. */
static uint64_t mmu_empty_ticks(unsigned calls, unsigned batches)
{
	uint64_t best = ~0ULL;
	for (unsigned b = 0; b < batches; b++) {
		uint64_t t0 = bench_tsc();
		for (unsigned c = 0; c < calls; c++)
			mmu_cell(NULL, 0, false, 0, 0, c);
		best = MIN(best, bench_tsc() - t0);
	}
	return best;
}

static void bench_mmu_strategy(const char *name, uint64_t *l1, uint64_t v0,
			       uint64_t v1, bool slow)
{
	uint64_t per[32];
	unsigned round = 0;

	for (unsigned k = 0; k < ARRAY_SIZE(mmu_sizes); k++) {
		unsigned n = mmu_sizes[k];
		unsigned calls = n >= 64 ? 1 : (slow ? 2 : 8);
		unsigned batches = slow ? 5 : 11;
		uint64_t base = mmu_empty_ticks(calls, batches);
		for (int lazy = 0; lazy < 2; lazy++) {
			mmu_cell(l1, n, lazy, v0, v1, round++); /* warm */
			for (unsigned b = 0; b < batches; b++) {
				uint64_t t0 = bench_tsc();
				for (unsigned c = 0; c < calls; c++)
					mmu_cell(l1, n, lazy, v0, v1, round++);
				uint64_t d = bench_tsc() - t0;
				d = d > base ? d - base : 0;
				per[b] = d * 100 / calls;
			}
			bench_sort_u64(per, batches);
			printk(
			    "bench: op=mmu_map mode=%s n=%u lazy=%d calls=%u "
			    "batches=%u",
			    name, n, lazy, calls, batches);
			bench_print_x100("min", per[0]);
			bench_print_x100("median", per[batches / 2]);
			bench_print_x100("p99", per[(batches * 99) / 100]);
			printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
		}
	}
}

/*
 * 512 pages into a level-1 table that does not exist yet: mmu_map_range()
 * fills a new page, makes it a table (Xen: one pin validates the 512
 * entries) and links it. Read-only mappings of the 2 MiB at pa 2 MiB
 * (ours on every platform; read-only is legal even where one is a page
 * table). The teardown is not timed.
 */
static void bench_mmu_table(const char *name, bool slow)
{
	uint64_t va = MMU_TEST_BASE + 10 * LARGE_PAGE_SIZE;
	unsigned batches = slow ? 5 : 11;
	uint64_t per[32];

	for (unsigned b = 0; b < batches + 1; b++) {
		uint64_t t0 = bench_tsc();
		mmu_map_range(va, LARGE_PAGE_SIZE, 512, PTE_P | mmu_nx_bit());
		uint64_t d = bench_tsc() - t0;
		if (b)
			per[b - 1] = d * 100; /* the first warms */
		uint64_t *pmd = mmu_walk(va, 2, false);
		uint64_t t = pte_val(mmu_read_entry(pmd)) & PTE_ADDR;
		set_pmd(pmd, 0);
		write_cr3(read_cr3());
		release_pt(t, 1);
		pmm_free(t);
	}
	bench_sort_u64(per, batches);
	printk("bench: op=mmu_map_table mode=%s n=512 lazy=1 calls=1 "
	       "batches=%u",
	       name, batches);
	bench_print_x100("min", per[0]);
	bench_print_x100("median", per[batches / 2]);
	bench_print_x100("p99", per[(batches * 99) / 100]);
	printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
}

static void bench_mmu(bool slow)
{
	uint64_t va = MMU_TEST_BASE + 8 * LARGE_PAGE_SIZE;
	uint64_t *l1 = mmu_walk(va, 1, true);
	uint64_t a = pmm_alloc(), b = pmm_alloc();
	uint64_t f = PTE_P | PTE_W | mmu_nx_bit();

	if (!l1 || !a || !b) {
		printk("bench: warning: mmu: no memory for the cells\n");
		return;
	}
	uint64_t v0 = make_pte(a | f), v1 = make_pte(b | f);
	if (platform->id != PLATFORM_XEN_PV) {
		bench_mmu_strategy("native", l1, v0, v1, slow);
		bench_mmu_table("native", slow);
	} else {
		enum xen_mmu_strategy booted = xen_mmu_strategy;
		for (int s = 0; s < XEN_MMU_NR; s++) {
			xen_mmu_strategy = s;
			bench_mmu_strategy(xen_mmu_names[s], l1, v0, v1, slow);
			bench_mmu_table(xen_mmu_names[s], slow);
		}
		xen_mmu_strategy = booted;
	}
	lazy_mmu_enter();
	for (unsigned i = 0; i < 512; i++)
		set_pte(&l1[i], 0);
	lazy_mmu_leave();
	for (unsigned i = 0; i < 512; i++)
		flush_tlb_one(va + i * PAGE_SIZE);
	pmm_free(a);
	pmm_free(b);
}

/*
 * User-mode round trips (guest/user.c): an empty system call (user ->
 * kernel -> user) and a page fault from user mode that the kernel handles
 * and returns from. Each batch runs the task's loop n and 2n times and
 * takes the difference over n, so the task's start and end (entering,
 * the exit, clearing its data page) cancel out. pvsaves= decides whether
 * the syscall entry's register saves were patched away (saves=).
 */
static bool bench_user_cell(const char *name, const char *prog, unsigned n,
			    unsigned batches)
{
	uint64_t t1[64], t2[64], per[3];
	struct user_result r;

	user_quiet = true;
	user_run(prog, n, &r); /* warm, and see whether it works here */
	for (unsigned b = 0; b < batches && r.end != USER_SYSCALL_STAYED_USER;
	     b++) {
		uint64_t t0 = bench_tsc();
		user_run(prog, n, &r);
		t1[b] = bench_tsc() - t0;
		t0 = bench_tsc();
		user_run(prog, 2 * n, &r);
		t2[b] = bench_tsc() - t0;
	}
	user_quiet = false;
	if (r.end == USER_SYSCALL_STAYED_USER) {
		printk("bench: warning: %s: not measured: a syscall from user "
		       "mode does not enter the kernel here\n",
		       name);
		return false;
	}
	/* The same rank of both: min, median, p99 of (T(2n) - T(n)) / n. */
	bench_sort_u64(t1, batches);
	bench_sort_u64(t2, batches);
	unsigned rank[3] = {0, batches / 2, (batches * 99) / 100};
	for (int i = 0; i < 3; i++) {
		uint64_t a = t1[rank[i]], c = t2[rank[i]];
		per[i] = c > a ? (c - a) * 100 / n : 0;
	}
	printk("bench: op=%s mode=user saves=%s calls=%u batches=%u", name,
	       pvop_consume_saves ? "consume" : "keep", n, batches);
	bench_print_x100("min", per[0]);
	bench_print_x100("median", per[1]);
	bench_print_x100("p99", per[2]);
	printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
	return true;
}

static void bench_user(bool slow)
{
	const char *why;
	if (!user_supported(&why)) {
		printk("bench: warning: no user-mode cells: %s\n", why);
		return;
	}
	bench_user_cell("syscall_roundtrip", uprog_syscall_loop,
			slow ? 10 : 200, slow ? 9 : 31);
	bench_user_cell("user_fault_roundtrip", uprog_fault_loop,
			slow ? 10 : 200, slow ? 9 : 31);
}

void bench_run(void)
{
	/* Under KVM here every instruction is emulated: keep it short. */
	bool slow = platform->id == PLATFORM_KVM;
	unsigned calls = slow ? 10 : 100, batches = slow ? 15 : 51;

	printk("bench: begin platform=%s backend=%s pad=%s tsc_khz=%lu "
	       "icount=%d cpu=\"%s\"\n",
	       platform->name, pvop_current->name, patch_pad_names[pvop_pad],
	       tsc_khz, opts.icount, cpu_model());
	printk("bench: boot sites=%u patch_ticks=%lu check_ticks=%lu "
	       "alt_sites=%u alt_ticks=%lu "
	       "entry_to_patched=%lu entry_to_ready=%lu\n",
	       pvop_stats.total, boot.patch_ticks, boot.patch_check_ticks,
	       alt_stats.sites, boot.alt_ticks,
	       boot.patched_tsc - boot_tsc_entry,
	       boot_tsc_ready - boot_tsc_entry);
	/*
	 * With other CPUs online only the SMP cells run: the one-CPU cells
	 * are measured where nothing else shares the machine (under icount
	 * another CPU's instructions advance the same clock).
	 */
	live_bench(slow ? 5 : 21);
	scall_live_bench(slow ? 5 : 21);
	if (smp_online > 1) {
		bench_smp(slow ? 5 : 50, slow ? 9 : 31);
		printk("bench: end\n");
		return;
	}
	bench_user(slow);
	if (opts.benchuser) {
		printk("bench: end\n");
		return;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(rows); i++) {
		for (int m = 0; m < BENCH_MODE_NR; m++) {
			struct bench_result r =
			    bench_measure(i, m, calls, batches);
			if (!r.valid)
				continue;
			printk("bench: op=%s mode=%s calls=%u batches=%u",
			       pvop_names[rows[i].op], bench_mode_names[m],
			       r.calls, r.batches);
			bench_print_x100("min", r.min);
			bench_print_x100("median", r.median);
			bench_print_x100("p99", r.p99);
			printk(" unit=%s\n", opts.icount ? "insns" : "tsc");
		}
	}
	bench_mmu(slow);
	bench_scall(calls, batches);
	bench_select_cells(calls, batches);
	printk("bench: end\n");
}
