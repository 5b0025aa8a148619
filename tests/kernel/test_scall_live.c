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
#include "bench.h"
#include "cmdline.h"
#include "ktest.h"
#include "live_stress.h"
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
/* One tail site (a function's first instruction, so its rel32 lies in
 * one aligned word) and the trampoline: every rel32 single-storable. */
DEFINE_STATIC_CALL(ktest_live_w, live_t0);

struct caller_books {
	uint64_t calls, reached, null;
	uint64_t seen[NTARGET + 1]; /* calls that found each target, NULL */
	/* Calls begun after the last update had returned, and those of them
	 * that reached anything but its target (live_t0): a static call
	 * update is over, for every CPU, when it returns. */
	uint64_t after, after_wrong;
};
static struct caller_books books[NR_CPUS_MAX];
static volatile unsigned live_stop, live_running, live_final;

__attribute__((noinline)) static void call_plain(void)
{
	static_call(ktest_live)();
	asm volatile("" ::: "memory");
}

__attribute__((noinline)) static void call_tail(void)
{
	static_call(ktest_live)();
}

__attribute__((noinline, aligned(16))) static void call_tail_w(void)
{
	static_call(ktest_live_w)();
}

__attribute__((noinline)) static void call_cs(void)
{
	static_call_cs_void(ktest_live_cs);
}

/* Books the last call; returns the target it reached (NTARGET: NULL). */
static unsigned account(struct caller_books *b, unsigned c, uint64_t before[])
{
	unsigned got = NTARGET;

	b->calls++;
	if (!ktest_live_reached[c]) {
		b->null++;
		b->seen[NTARGET]++;
		return got;
	}
	ktest_live_reached[c] = 0;
	b->reached++;
	for (unsigned n = 0; n < NTARGET; n++)
		if (ktest_live_hits[c][n] != before[n]) {
			b->seen[n]++;
			got = n;
		}
	return got;
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
		bool after = __atomic_load_n(&live_final, __ATOMIC_ACQUIRE);
		for (unsigned n = 0; n < NTARGET; n++)
			before[n] = ktest_live_hits[c][n];
		site();
		unsigned got = account(b, c, before);
		if (after) {
			b->after++;
			b->after_wrong += got != 0;
		}
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
	live_final = 0;
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

/* Calls each caller must make after the last update, before the stop. */
#define CALLS_AFTER 1000

/*
 * The last update has returned: let every caller make CALLS_AFTER calls
 * (or time out: check_books() says who did not), then stop them all.
 */
static bool stop_callers(struct ktest_ctx *t, uint64_t *seq)
{
	bool ok = true;
	__atomic_store_n(&live_final, 1, __ATOMIC_RELEASE);
	uint64_t end = clock_read() + SMP_CALL_TIMEOUT_NS;
	for (unsigned c = 1; c < smp_online; c++)
		while (READ_ONCE(books[c].after) < CALLS_AFTER &&
		       clock_read() < end)
			asm volatile("pause");
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

/*
 * The books of every caller must balance, each saw every form (NULL only
 * if it was among them), and every call begun after the last update had
 * returned reached the last target.
 */
static void check_books(struct ktest_ctx *t, const char *what, bool null)
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
		for (unsigned n = 0; n < NTARGET; n++)
			KT_EXPECT(t, b->seen[n] > 0,
				  "%s: cpu %u never saw target %u", what, c, n);
		if (null)
			KT_EXPECT(t, b->seen[NTARGET] > 0,
				  "%s: cpu %u never saw NULL", what, c);
		else
			KT_EXPECT(t, b->null == 0,
				  "%s: cpu %u: %lu calls found NULL, never a "
				  "target here",
				  what, c, (unsigned long)b->null);
		KT_EXPECT(t, b->after >= CALLS_AFTER,
			  "%s: cpu %u made %lu calls after the last update, "
			  "not %u",
			  what, c, (unsigned long)b->after, CALLS_AFTER);
		KT_EXPECT(t, b->after_wrong == 0,
			  "%s: cpu %u: %lu of %lu calls begun after the last "
			  "update returned reached an older target",
			  what, c, (unsigned long)b->after_wrong,
			  (unsigned long)b->after);
	}
}

/* Retarget key forms times in turn among the targets (and NULL if
 * forms is 4), while every other CPU calls site; then check the books. */
static void retarget_loop(struct ktest_ctx *t, const char *what,
			  void (*site)(void), struct static_call_key *key,
			  unsigned updates, unsigned forms)
{
	uint64_t seq[NR_CPUS_MAX];
	uint64_t b0 = patch_stats.batches, t0 = clock_read();

	if (!start_callers(t, site, seq)) {
		stop_callers(t, seq);
		KT_ASSERT(t, false, "%s: callers did not start", what);
	}
	for (unsigned i = 0; i < updates; i++) {
		__static_call_update(key, (void *)live_targets[i % forms]);
		/* Let each form run a little on the other CPUs. */
		for (volatile unsigned d = 0; d < 20; d++)
			;
	}
	__static_call_update(key, (void *)live_t0);
	uint64_t us = (clock_read() - t0) / 1000;
	bool stopped = stop_callers(t, seq);
	uint64_t calls = 0;
	for (unsigned c = 1; c < smp_online; c++)
		calls += books[c].calls;
	printk("    # scall_live: %s: %u updates, %lu batches, %lu calls on "
	       "%u other CPU(s), %lu us\n",
	       what, updates + 1, (unsigned long)(patch_stats.batches - b0),
	       (unsigned long)calls, smp_online - 1, (unsigned long)us);
	KT_ASSERT(t, stopped, "%s: a caller did not stop", what);
	check_books(t, what, forms > NTARGET);
	KT_EXPECT(t, static_call_verify(key) == 0,
		  "%s: sites differ from the last target", what);
}

/* The stress runs in the *-live rows only (livestress). */
#define NEED_LIVE(t)                                                           \
	do {                                                                   \
		if (smp_online < 2)                                            \
			KT_SKIP(t, "only one CPU online");                     \
		if (!opts.livestress)                                          \
			KT_SKIP(t, "the stress runs in the *-live rows "       \
				   "(livestress)");                            \
	} while (0)

/* The same loop through one update path of the engine (patchlive=). */
static void on_path(struct ktest_ctx *t, enum patch_live_path path,
		    const char *what, void (*site)(void),
		    struct static_call_key *key, unsigned updates,
		    unsigned forms)
{
	enum patch_live_path saved = patch_live_path;
	uint64_t st0 = patch_stats.single_stores, i0 = patch_stats.int3_sites,
		 c0 = patch_stats.bp_cs, sl0 = patch_stats.bp_stale,
		 rw0 = patch_stats.iret_rewound, r0 = patch_stats.sync_rounds;

	patch_live_path = path;
	retarget_loop(t, what, site, key, updates, forms);
	patch_live_path = saved;
	printk("    # scall_live: %s: path %s: %lu sync rounds, %lu single "
	       "stores, %lu int3 sites, %lu cs resumes, %lu stale int3s, %lu "
	       "returns rewound\n",
	       what, patch_live_names[path],
	       (unsigned long)(patch_stats.sync_rounds - r0),
	       (unsigned long)(patch_stats.single_stores - st0),
	       (unsigned long)(patch_stats.int3_sites - i0),
	       (unsigned long)(patch_stats.bp_cs - c0),
	       (unsigned long)(patch_stats.bp_stale - sl0),
	       (unsigned long)(patch_stats.iret_rewound - rw0));
}

KTEST(scall_live, call_site_int3_path)
{
	NEED_LIVE(t);
	LIVE_NEED_INT3(t);
	uint64_t s0 = patch_stats.single_stores;
	on_path(t, PATCH_LIVE_INT3, "call site", call_plain, &__SCK__ktest_live,
		live_stress_updates(), 4);
	KT_EXPECT(t, patch_stats.single_stores == s0,
		  "patchlive=int3 made single stores");
}

/* The sites of key a target-to-target update rewrites (its trampoline,
 * its inlined sites), and of those how many have their rel32 inside one
 * aligned 8-byte word (the single-store condition). */
static unsigned rewritten_sites(const struct static_call_key *key,
				unsigned *in_word)
{
	unsigned n = 0;

	*in_word = 0;
	for (unsigned i = 0; i <= key->nsites; i++) {
		const struct patch_site *r =
		    i ? &key->sites[i - 1] : key->tramp;
		uintptr_t rel =
		    patch_site_addr(r) + 1 + (r->flags == PATCH_SCALL_CS);
		if (i && !static_call_site_inlined(r))
			continue;
		n++;
		*in_word += (rel & 7) <= 4;
	}
	return n;
}

static bool all_in_word(const struct static_call_key *key)
{
	unsigned w, n = rewritten_sites(key, &w);
	return w == n;
}

KTEST(scall_live, call_site_single_store_path)
{
	NEED_LIVE(t);
	LIVE_NEED_INT3(t); /* NULL <-> target is an int3 batch */
	/* Target to target changes only the rel32: where it lies inside one
	 * aligned word, that is one store and one sync round. */
	uint64_t s0 = patch_stats.single_stores;
	unsigned in_word;
	rewritten_sites(&__SCK__ktest_live, &in_word);
	on_path(t, PATCH_LIVE_STORE, "call site", call_plain,
		&__SCK__ktest_live, live_stress_updates(), 4);
	if (in_word)
		KT_EXPECT(t, patch_stats.single_stores > s0,
			  "no single store, though %u rel32(s) lie in one word",
			  in_word);
}

KTEST(scall_live, targets_only_single_stores)
{
	NEED_LIVE(t);
	/*
	 * Three targets and no NULL: every update changes rel32s only, so
	 * where each lies inside one word the whole stress runs without an
	 * int3 (one store per site, one sync round per update). The only
	 * stress this host's KVM can run.
	 */
	if (!all_in_word(&__SCK__ktest_live_w))
		KT_SKIP(t, "a site of the key has its rel32 across an 8-byte "
			   "word: its updates need the int3 protocol");
	uint64_t i0 = patch_stats.int3_sites, s0 = patch_stats.single_stores;
	unsigned n = live_stress_updates(), in_word;
	unsigned sites = rewritten_sites(&__SCK__ktest_live_w, &in_word);
	/* Updates that change the target (retarget_loop()'s sequence, the
	 * key at live_t0 before and after): each is one store per site. */
	void (*cur)(void) = __SCK__ktest_live_w.func, (*prev)(void) = cur;
	unsigned changes = 0;
	for (unsigned i = 0; i <= n; i++, prev = cur) {
		cur = i < n ? live_targets[i % NTARGET] : live_t0;
		changes += cur != prev;
	}
	on_path(t, PATCH_LIVE_STORE, "tail site, targets only", call_tail_w,
		&__SCK__ktest_live_w, n, NTARGET);
	KT_EXPECT(t, patch_stats.int3_sites == i0,
		  "%lu int3 sites in a rel32-only stress",
		  (unsigned long)(patch_stats.int3_sites - i0));
	KT_EXPECT(
	    t, patch_stats.single_stores - s0 == (uint64_t)changes * sites,
	    "%lu single stores for %u changes of %u site(s)",
	    (unsigned long)(patch_stats.single_stores - s0), changes, sites);
}

KTEST(scall_live, tail_site_under_updates)
{
	NEED_LIVE(t);
	LIVE_NEED_INT3(t);
	on_path(t, PATCH_LIVE_STORE, "tail site", call_tail, &__SCK__ktest_live,
		live_stress_updates(), 4);
}

KTEST(scall_live, cs_site_cs_prefix_path)
{
	NEED_LIVE(t);
	LIVE_NEED_INT3(t);
	uint64_t c0 = patch_stats.bp_cs;
	on_path(t, PATCH_LIVE_INT3, "cs site", call_cs, &__SCK__ktest_live_cs,
		live_stress_updates(), 4);
	/* Callers hit the prefix's int3 and resume after it (seed 003). */
	KT_EXPECT(t, patch_stats.bp_cs > c0,
		  "no caller resumed after a cs prefix");
}

/* ---- two CPUs updating at once ---- */

#define RACE_UPDATES 500
static volatile unsigned race_go, race_ready;

static void race_updater(void *arg)
{
	unsigned first = (unsigned)(uintptr_t)arg;

	irq_enable(); /* the other updater's syncs reach us between updates */
	__atomic_fetch_add(&race_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&race_go, __ATOMIC_ACQUIRE))
		asm volatile("pause");
	for (unsigned i = 0; i < RACE_UPDATES; i++)
		__static_call_update(
		    &__SCK__ktest_live_w,
		    (void *)live_targets[(first + i) % NTARGET]);
	irq_disable(); /* a mailbox function returns with them off */
}

KTEST(scall_live, concurrent_updates_are_serialised)
{
	/*
	 * CPU 0 and CPU 1 retarget the same key 500 times each at once
	 * (targets only, the key whose rel32s each lie in a word, so no
	 * int3: this runs under KVM too). The update lock serialises them:
	 * every update counted, no batch begun while another was being
	 * written, and the sites hold the key's last target.
	 */
	if (smp_online < 2)
		KT_SKIP(t, "only one CPU online");
	if (!all_in_word(&__SCK__ktest_live_w) ||
	    patch_live_path != PATCH_LIVE_STORE)
		LIVE_NEED_INT3(t);
	uint64_t seq, u0 = __SCK__ktest_live_w.updates,
		      i0 = patch_stats.interleaved,
		      m0 = static_call_stats.contended;
	race_go = race_ready = 0;
	KT_ASSERT(t, smp_post(1, race_updater, (void *)1, &seq),
		  "cpu 1: mailbox busy");
	uint64_t end = clock_read() + SMP_CALL_TIMEOUT_NS;
	while (!race_ready && clock_read() < end)
		asm volatile("pause");
	KT_ASSERT(t, race_ready, "cpu 1 did not start its updater");
	unsigned long fl = irq_save();
	__atomic_store_n(&race_go, 1, __ATOMIC_RELEASE);
	race_updater((void *)0);
	irq_restore(fl);
	KT_ASSERT(t, smp_wait(1, seq, 10 * SMP_CALL_TIMEOUT_NS),
		  "cpu 1 did not finish its updates");
	KT_EXPECT(t, __SCK__ktest_live_w.updates - u0 == 2 * RACE_UPDATES,
		  "%lu updates counted, not %u",
		  (unsigned long)(__SCK__ktest_live_w.updates - u0),
		  2 * RACE_UPDATES);
	/* They met: an update found the other CPU's in flight (else this
	 * test would have proved nothing about serialising them). */
	KT_EXPECT(t, static_call_stats.contended > m0,
		  "the two updaters never met at the update lock");
	KT_EXPECT(t, patch_stats.interleaved == i0,
		  "%lu batches begun while another was written",
		  (unsigned long)(patch_stats.interleaved - i0));
	printk("    # scall_live: concurrent updates: %u + %u, %lu met "
	       "another in flight\n",
	       RACE_UPDATES, RACE_UPDATES,
	       (unsigned long)(static_call_stats.contended - m0));
	KT_EXPECT(t, static_call_verify(&__SCK__ktest_live_w) == 0,
		  "sites differ from the key's last target");
	static_call_update(ktest_live_w, live_t0);
}

/* ---- 256 keys in one batch ---- */

#define LMANY(n)                                                               \
	DEFINE_STATIC_CALL(ktest_lmany_##n, live_t0);                          \
	__attribute__((noinline)) static void lmany_call_##n(void)             \
	{                                                                      \
		static_call(ktest_lmany_##n)();                                \
		asm volatile("" ::: "memory");                                 \
	}
/* A tail site: the function's first instruction, its rel32 in a word. */
#define LMANYT(n)                                                              \
	DEFINE_STATIC_CALL(ktest_lmany_##n, live_t0);                          \
	__attribute__((noinline, aligned(16))) static void lmany_call_##n(     \
	    void)                                                              \
	{                                                                      \
		static_call(ktest_lmany_##n)();                                \
	}
#define LMANY4(n) LMANY(n##0) LMANYT(n##1) LMANY(n##2) LMANYT(n##3)
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

/* 40 batches of 256 key updates (10,240), then all back to live_t0. */
static void many_keys(struct ktest_ctx *t, enum patch_live_path path)
{
	enum patch_live_path saved = patch_live_path;
	uint64_t seq[NR_CPUS_MAX];
	unsigned batches = 40;
	uint64_t b0 = patch_stats.batches, t0 = clock_read(),
		 r0 = patch_stats.sync_rounds, i0 = patch_stats.int3_sites,
		 st0 = patch_stats.single_stores;

	patch_live_path = path;
	if (!start_callers(t, call_lmany, seq)) {
		stop_callers(t, seq);
		patch_live_path = saved;
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
	uint64_t us = (clock_read() - t0) / 1000;
	bool stopped = stop_callers(t, seq);
	patch_live_path = saved;
	uint64_t calls = 0;
	for (unsigned c = 1; c < smp_online; c++)
		calls += books[c].calls;
	uint64_t batches_done = patch_stats.batches - b0;
	printk("    # scall_live: 256 keys, path %s: %u batches of 256 "
	       "updates (%lu engine batches, %lu sync rounds, %lu int3 sites, "
	       "%lu single stores), %lu calls on %u other CPU(s), %lu us\n",
	       patch_live_names[path], batches + 1, (unsigned long)batches_done,
	       (unsigned long)(patch_stats.sync_rounds - r0),
	       (unsigned long)(patch_stats.int3_sites - i0),
	       (unsigned long)(patch_stats.single_stores - st0),
	       (unsigned long)calls, smp_online - 1, (unsigned long)us);
	KT_ASSERT(t, stopped, "a caller did not stop");
	KT_EXPECT(t, batches_done == batches + 1,
		  "%lu engine batches for %u batches of 256 updates",
		  (unsigned long)batches_done, batches + 1);
	KT_EXPECT(t, patch_stats.sync_rounds - r0 <= 3 * batches_done,
		  "%lu sync rounds for %lu batches: more than 3 each",
		  (unsigned long)(patch_stats.sync_rounds - r0),
		  (unsigned long)batches_done);
	check_books(t, "256 keys", true);
	unsigned bad = 0;
	for (unsigned k = 0; k < 256; k++)
		bad += static_call_verify(lmany[k].key);
	KT_EXPECT(t, bad == 0, "%u sites differ from their last target", bad);
}

KTEST(scall_live, batch_of_256_keys_int3_path)
{
	NEED_LIVE(t);
	LIVE_NEED_INT3(t);
	many_keys(t, PATCH_LIVE_INT3);
}

KTEST(scall_live, batch_of_256_keys_single_store_path)
{
	NEED_LIVE(t);
	LIVE_NEED_INT3(t); /* NULL <-> target is an int3 */
	many_keys(t, PATCH_LIVE_STORE);
}

/* ---- make bench: the cost of one static-call update (guest/bench.c) ---- */

/*
 * static_call_update() of 1, 16 and 256 keys (16 and 256 in one
 * static_call_batch_begin()/end()), target to target (t0 -> t1 -> t2 ->
 * t0: rel32s only, so the store path can take what lies in a word),
 * through the int3 and store paths, and one cs key through the int3 path
 * (the CS-prefix protocol). Timed from the first update to the end of
 * the batch; the median and minimum per batch, with the sync rounds,
 * IPIs, single stores and int3 sites per batch. The keys are the 256 of
 * the stress (half plain call sites, whose rel32 always crosses a word,
 * half tail sites) plus their trampolines. With one CPU online the live
 * path is forced (its rounds then send no IPI).
 */
/* One batch: n keys (or the cs key) re-aimed at the next target. */
static void key_batch(enum live_bench_path p, unsigned n, unsigned rep)
{
	void *to = (void *)live_targets[(rep + 1) % NTARGET];

	static_call_batch_begin();
	for (unsigned i = 0; i < n; i++)
		__static_call_update(p == LIVE_BENCH_CS ? &__SCK__ktest_live_cs
							: lmany[i].key,
				     to);
	static_call_batch_end();
}

void scall_live_bench(unsigned reps)
{
	live_bench_paths("scall_update_", reps, 1, key_batch, NULL);
	/* Back to the keys' first target, as the stress leaves them. */
	static_call_batch_begin();
	for (unsigned i = 0; i < 256; i++)
		__static_call_update(lmany[i].key, (void *)live_t0);
	__static_call_update(&__SCK__ktest_live_cs, (void *)live_t0);
	static_call_batch_end();
}
