/*
 * test_live.c - live patching (patch/live.c): text rewritten while other
 * CPUs execute it. Suite live.
 *
 * The engine's own test of the live path, independent of any client
 * (the static calls' stress is test_scall_live.c), so this file brings
 * its own sites, of a test-only kind (PATCH_KIND_TEST, registered before
 * patch_init() by live_test_register_kind()): LIVE_N stubs of each form,
 *   call form:  xor %eax,%eax; call live_target0 (the site, 5 bytes); ret
 *   cs form:    xor %eax,%eax; cs call live_target0 (6 bytes);       ret
 * and a 2-byte jmp8 site. live_target<k> counts its calls per CPU and
 * returns k + 1, a NOP form returns 0, so a caller knows which form ran.
 *
 * Stress (live.stress_*): every other CPU calls the first `batch` stubs
 * in a loop, interrupts on, while CPU 0 re-patches them among the three
 * targets and a NOP, through one path (int3, single store, CS prefix).
 * Afterwards: no exception (one would have panicked), the targets'
 * counters equal what the callers saw returned, every caller saw every
 * target and the NOP, no live batch took more than 3 sync rounds, and
 * every site holds the bytes last written. The deterministic tests call
 * a site from the pass hook, on the writer, with the int3 in place.
 */
#include "bench.h"
#include "cmdline.h"
#include "kernel.h"
#include "ktest.h"
#include "live_stress.h"
#include "patch.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"

#define LIVE_N 256
#define NC NR_CPUS_MAX

/* clang-format off */
/* A record in .patch.sites.test: after the pvop client's walk (kernel.ld.S). */
#define TEST_RECORD(site, end, payload)                                        \
	".pushsection .patch.sites.test, \"a\"\n\t.balign 16\n\t"              \
	".long " site " - .\n\t.long " payload " - .\n\t"                       \
	".byte " PATCH_STR(PATCH_KIND_TEST) ", " end " - " site ", 0, 0\n\t"      \
	".short 0, 0\n\t.popsection\n\t"
#define STUB_CALL                                                              \
	".balign 16\n1: xor %eax, %eax\n2: call live_target0\n3: ret\n"       \
	TEST_RECORD("2b", "3b", "live_target0")
#define STUB_CS                                                                \
	".balign 16\n1: xor %eax, %eax\n2: .byte 0x2e\n call live_target0\n"  \
	"3: ret\n"                                                             \
	TEST_RECORD("2b", "3b", "live_target0")
#define TARGET(k)                                                              \
	".globl live_target" #k "\nlive_target" #k ":\n"                      \
	"mov %gs:" PATCH_STR(PERCPU_CPU) ", %rcx\n"                            \
	"incq live_count + " #k " * 8 * " PATCH_STR(NC) "(,%rcx,8)\n"          \
	"mov $" #k " + 1, %eax\nret\n"

asm(".pushsection .text\n"
    TARGET(0) TARGET(1) TARGET(2)
    ".balign 16\n.globl live_call_stubs\nlive_call_stubs:\n"
    ".rept " PATCH_STR(LIVE_N) "\n" STUB_CALL ".endr\n"
    ".balign 16\n.globl live_cs_stubs\nlive_cs_stubs:\n"
    ".rept " PATCH_STR(LIVE_N) "\n" STUB_CS ".endr\n"
    /* A call whose rel32 crosses an 8-byte word: never a single store. */
    ".balign 16\n.globl live_cross_stub\nlive_cross_stub:\n"
    "xor %eax, %eax\nnop; nop; nop\n2: call live_target0\n3: ret\n"
    TEST_RECORD("2b", "3b", "live_target0")
    /* A 2-byte site: nop (returns 7) or jmp +1 over the ret (returns 9). */
    ".balign 16\n.globl live_j8_stub\nlive_j8_stub:\n"
    "mov $7, %eax\n2: xchg %ax, %ax\n3: ret\nmov $9, %eax\nret\n"
    TEST_RECORD("2b", "3b", "live_target0")
    ".popsection\n");
/* clang-format on */

extern char live_target0[], live_target1[], live_target2[];
extern char live_call_stubs[], live_cs_stubs[], live_cross_stub[],
    live_j8_stub[];
volatile uint64_t live_count[3][NC];
static char *const targets[3] = {live_target0, live_target1, live_target2};

/*
 * This host's KVM is a software hypervisor (kvm_pvm) that emulates
 * every guest instruction. Executing an int3 the engine has just written
 * stops the guest there: "KVM internal error. Suberror: 1 ... emulation
 * failure", the emulator's instruction bytes a mix of old and new text
 * (0f cc e8 ...), even with one vCPU (doc/patching.md). Tests that run
 * such an int3 SKIP there, saying so; the others run.
 */

/* ---- the test kind ---- */

static bool test_is_original(const struct patch_site *r, const uint8_t *t)
{
	uintptr_t at = patch_site_addr(r), to = patch_site_payload(r);
	unsigned p = r->len == 6;

	if (r->len == 2)
		return t[0] == 0x66 && t[1] == 0x90;
	return (!p || t[0] == 0x2e) && t[p] == 0xe8 &&
	       at + r->len + get32(t + p + 1) == to;
}

static void test_original(const struct patch_site *r, uint8_t *out)
{
	uintptr_t at = patch_site_addr(r), to = patch_site_payload(r);
	unsigned p = r->len == 6;

	memset(out, 0, PATCH_MAX_LEN);
	if (r->len == 2) {
		out[0] = 0x66, out[1] = 0x90;
		return;
	}
	out[0] = 0x2e;
	out[p] = 0xe8;
	put32(out + p + 1, (int32_t)(to - (at + r->len)));
}

static const char *test_check(const struct patch_site *r)
{
	if (r->len != 2 && r->len != 5 && r->len != 6)
		return "test site is not 2, 5 or 6 bytes";
	return r->flags || r->arg || r->arg2 ? "test site has arguments" : NULL;
}

static void test_describe(const struct patch_site *r, char *buf, size_t n)
{
	snprintf(buf, n, "test site to %016lx",
		 (unsigned long)patch_site_payload(r));
}

static const struct patch_kind test_kind = {
    .name = "test",
    .check = test_check,
    .is_original = test_is_original,
    .original = test_original,
    .describe = test_describe,
};

void live_test_register_kind(void)
{
	patch_register_kind(PATCH_KIND_TEST, &test_kind);
}

/* ---- sites and forms ---- */

static const struct patch_site *site_at(uintptr_t at)
{
	for (const struct patch_site *r = __patch_sites_start;
	     r < __patch_sites_end; r++)
		if (patch_site_addr(r) == at)
			return r;
	return NULL;
}

/* The record of stub i of a form (site 2 bytes into the stub), found
 * once per form: the bench must time the engine, not this search. */
static const struct patch_site *stub_site(const char *base, unsigned i)
{
	static const struct patch_site *cache[2][LIVE_N];
	unsigned f = base == live_cs_stubs;

	if (!cache[f][i])
		cache[f][i] = site_at((uintptr_t)base + 16 * i + 2);
	return cache[f][i];
}

enum form {
	T0,
	T1,
	T2,
	NOP,
	JMP1 /* jmp live_target1 */,
	RET /* ret; int3s */
};

static void form_bytes(const struct patch_site *r, enum form f, uint8_t *b)
{
	uintptr_t at = patch_site_addr(r);
	unsigned p = r->len == 6;

	memset(b, 0, PATCH_MAX_LEN);
	if (f == RET) { /* ret, then bytes no CPU reaches */
		memset(b, 0xcc, r->len);
		b[p] = 0xc3;
		b[0] = p ? 0x2e : 0xc3;
		return;
	}
	if (f == NOP) {
		static const uint8_t n5[] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
		static const uint8_t n6[] = {0x66, 0x0f, 0x1f,
					     0x44, 0x00, 0x00};
		memcpy(b, p ? n6 : n5, r->len);
		return;
	}
	b[0] = 0x2e;
	b[p] = f == JMP1 ? 0xe9 : 0xe8;
	uintptr_t to = (uintptr_t)targets[f == JMP1 ? 1 : f];
	put32(b + p + 1, (int32_t)(to - (at + r->len)));
}

/* What calling the stub returns in form f. */
static unsigned form_result(enum form f)
{
	return f == NOP || f == RET ? 0 : f == JMP1 ? 2 : (unsigned)f + 1;
}

static void put_form(const struct patch_site *r, enum form f)
{
	uint8_t b[PATCH_MAX_LEN];
	form_bytes(r, f, b);
	patch_queue(r, b);
}

static bool holds_form(const struct patch_site *r, enum form f)
{
	uint8_t b[PATCH_MAX_LEN], cur[PATCH_MAX_LEN];
	form_bytes(r, f, b);
	patch_current(r, cur);
	return !memcmp((void *)patch_site_addr(r), b, r->len) &&
	       !memcmp(cur, b, r->len);
}

typedef unsigned (*stub_fn)(void);

static unsigned call_stub(const char *base, unsigned i)
{
	return ((stub_fn)(uintptr_t)(base + 16 * i))();
}

/* Put every stub of every form back to T0 (the assembled form). */
static void reset_all(void)
{
	for (unsigned i = 0; i < LIVE_N; i++) {
		patch_queue_original(stub_site(live_call_stubs, i));
		patch_queue_original(stub_site(live_cs_stubs, i));
	}
	patch_queue_original(site_at((uintptr_t)live_cross_stub + 5));
	patch_queue_original(site_at((uintptr_t)live_j8_stub + 5));
	patch_finish();
}

/* ---- deterministic: the #BP emulation, on the writer, in each pass ---- */

static const char *hook_base;
static unsigned hook_seen[4];
static uint64_t hook_bp[4];

static void hook_call(unsigned pass)
{
	hook_seen[pass] = call_stub(hook_base, 0);
	hook_bp[pass] = patch_stats.bp_emulated + patch_stats.bp_cs;
}

struct step {
	const char *what;
	const char *base;
	enum form from, to;
	unsigned rounds; /* sync rounds the batch must take */
};

/* One forced-live batch from -> to; the stub is called in each pass. */
static void run_step(struct ktest_ctx *t, const struct step *s)
{
	const struct patch_site *r = site_at((uintptr_t)s->base + 2);
	unsigned from = form_result(s->from), to = form_result(s->to);

	put_form(r, s->from);
	patch_finish();
	KT_EXPECT(t, call_stub(s->base, 0) == from, "%s: before: %u", s->what,
		  call_stub(s->base, 0));
	memset(hook_seen, 0xff, sizeof(hook_seen));
	hook_base = s->base;
	uint64_t bp0 = patch_stats.bp_emulated + patch_stats.bp_cs;
	patch_live_force = true;
	patch_live_hook = hook_call;
	put_form(r, s->to);
	patch_finish();
	patch_live_hook = NULL;
	patch_live_force = false;
	KT_EXPECT(t, patch_stats.last_rounds == s->rounds,
		  "%s: %u sync rounds, expected %u", s->what,
		  patch_stats.last_rounds, s->rounds);
	KT_EXPECT(t, call_stub(s->base, 0) == to, "%s: after: %u", s->what,
		  call_stub(s->base, 0));
	KT_EXPECT(t, holds_form(r, s->to), "%s: bytes differ", s->what);
	/* In every pass the int3 was in place, the new insn emulated. */
	for (unsigned p = 1; p <= 3; p++) {
		KT_EXPECT(t, hook_seen[p] == to, "%s: pass %u returned %u",
			  s->what, p, hook_seen[p]);
		if (p < 3)
			KT_EXPECT(t, hook_bp[p] > (p == 1 ? bp0 : hook_bp[1]),
				  "%s: pass %u took no #BP", s->what, p);
	}
}

KTEST(live, bp_emulates_new_insn_in_every_pass)
{
	static const struct step steps[] = {
	    {"call t0 -> call t1", live_call_stubs, T0, T1, 3},
	    {"call t1 -> nop", live_call_stubs, T1, NOP, 3},
	    {"nop -> call t2", live_call_stubs, NOP, T2, 3},
	    {"call t2 -> jmp t1", live_call_stubs, T2, JMP1, 3},
	    {"jmp t1 -> ret; int3s", live_call_stubs, JMP1, RET, 3},
	    {"ret; int3s -> call t0", live_call_stubs, RET, T0, 3},
	    {"cs nop -> cs call t2", live_cs_stubs, NOP, T2, 3},
	    {"cs call t2 -> cs nop", live_cs_stubs, T2, NOP, 3},
	};
	enum patch_live_path saved = patch_live_path;

	LIVE_NEED_INT3(t);
	patch_live_path = PATCH_LIVE_INT3;
	for (unsigned i = 0; i < ARRAY_SIZE(steps); i++)
		run_step(t, &steps[i]);
	patch_live_path = saved;
	reset_all();
}

static unsigned j8_seen;
static void j8_hook(unsigned pass)
{
	(void)pass;
	j8_seen = ((stub_fn)(uintptr_t)live_j8_stub)();
}

KTEST(live, bp_emulates_jmp8)
{
	const struct patch_site *r = site_at((uintptr_t)live_j8_stub + 5);
	static const uint8_t j8[PATCH_MAX_LEN] = {0xeb, 0x01};
	unsigned (*stub)(void) = (stub_fn)(uintptr_t)live_j8_stub;
	enum patch_live_path saved = patch_live_path;

	LIVE_NEED_INT3(t);
	KT_ASSERT(t, r, "no j8 site record");
	KT_EXPECT(t, stub() == 7, "nop form returned %u", stub());
	hook_base = NULL;
	patch_live_path = PATCH_LIVE_INT3;
	patch_live_force = true;
	uint64_t bp0 = patch_stats.bp_emulated;
	j8_seen = 0;
	patch_live_hook = j8_hook;
	patch_queue(r, j8);
	patch_finish();
	patch_live_hook = NULL;
	patch_live_force = false;
	patch_live_path = saved;
	KT_EXPECT(t, j8_seen == 9, "jmp8 under int3 returned %u", j8_seen);
	KT_EXPECT(t, patch_stats.bp_emulated > bp0, "no #BP emulated");
	KT_EXPECT(t, stub() == 9, "jmp8 form returned %u", stub());
	patch_queue_original(r);
	patch_finish();
	KT_EXPECT(t, stub() == 7, "back: returned %u", stub());
}

/* The CS prefix: the int3 over it resumes at the call behind it. */
static unsigned cs_seen[4];
static void cs_hook(unsigned pass)
{
	cs_seen[pass] = call_stub(live_cs_stubs, 0);
}

KTEST(live, cs_prefix_resumes_after_the_prefix)
{
	const struct patch_site *r = stub_site(live_cs_stubs, 0);
	enum patch_live_path saved = patch_live_path;

	LIVE_NEED_INT3(t);
	patch_live_path = PATCH_LIVE_INT3;
	patch_live_force = true;
	uint64_t cs0 = patch_stats.bp_cs, em0 = patch_stats.bp_emulated;
	patch_live_hook = cs_hook;
	put_form(r, T1);
	patch_finish();
	patch_live_hook = NULL;
	patch_live_force = false;
	patch_live_path = saved;
	/* Pass 1: the old rel32 behind the prefix; pass 2: the new one. */
	KT_EXPECT(t, cs_seen[1] == 1, "pass 1 returned %u (old target 1)",
		  cs_seen[1]);
	KT_EXPECT(t, cs_seen[2] == 2, "pass 2 returned %u (new target 2)",
		  cs_seen[2]);
	KT_EXPECT(t, patch_stats.bp_cs >= cs0 + 2, "%lu CS #BPs, expected 2",
		  patch_stats.bp_cs - cs0);
	KT_EXPECT(t, patch_stats.bp_emulated == em0,
		  "a CS site was emulated (%lu)",
		  patch_stats.bp_emulated - em0);
	KT_EXPECT(t, patch_stats.last_rounds == 3, "%u rounds",
		  patch_stats.last_rounds);
	KT_EXPECT(t, holds_form(r, T1), "bytes differ");
	reset_all();
}

/* Single store: one round for a rel32 in one word; int3 otherwise. */
KTEST(live, single_store_when_rel32_in_one_word)
{
	const struct patch_site *a = stub_site(live_call_stubs, 0);
	const struct patch_site *x = site_at((uintptr_t)live_cross_stub + 5);
	enum patch_live_path saved = patch_live_path;

	KT_ASSERT(t, x, "no cross-word site record");
	KT_ASSERT(t,
		  ((patch_site_addr(a) + 1) & 7) <= 4 &&
		      ((patch_site_addr(x) + 1) & 7) > 4,
		  "stub layout: %lx %lx", (unsigned long)patch_site_addr(a),
		  (unsigned long)patch_site_addr(x));
	patch_live_force = true;
	patch_live_path = PATCH_LIVE_STORE;
	uint64_t s0 = patch_stats.single_stores, i0 = patch_stats.int3_sites;
	put_form(a, T1);
	patch_finish();
	KT_EXPECT(t, patch_stats.last_rounds == 1, "aligned: %u rounds",
		  patch_stats.last_rounds);
	KT_EXPECT(t,
		  patch_stats.single_stores == s0 + 1 &&
		      patch_stats.int3_sites == i0,
		  "aligned: %lu stores, %lu int3",
		  patch_stats.single_stores - s0, patch_stats.int3_sites - i0);
	KT_EXPECT(t, call_stub(live_call_stubs, 0) == 2, "aligned: %u",
		  call_stub(live_call_stubs, 0));
	put_form(x, T2);
	patch_finish();
	KT_EXPECT(t, patch_stats.last_rounds == 3, "crossing: %u rounds",
		  patch_stats.last_rounds);
	KT_EXPECT(t, patch_stats.int3_sites == i0 + 1, "crossing: no int3");
	KT_EXPECT(t, ((unsigned (*)(void))(uintptr_t)live_cross_stub)() == 3,
		  "crossing: wrong target");
	/* Only the opcode changes (call -> jmp, same rel32): no tail pass. */
	put_form(a, JMP1);
	patch_finish();
	KT_EXPECT(t, patch_stats.last_rounds == 2, "opcode only: %u rounds",
		  patch_stats.last_rounds);
	/* patchlive=int3: the aligned site takes the int3 path too. */
	patch_live_path = PATCH_LIVE_INT3;
	put_form(a, T1);
	patch_finish();
	put_form(a, T2);
	s0 = patch_stats.single_stores;
	patch_finish();
	KT_EXPECT(
	    t, patch_stats.last_rounds == 3 && patch_stats.single_stores == s0,
	    "int3 path: %u rounds, %lu stores", patch_stats.last_rounds,
	    patch_stats.single_stores - s0);
	patch_live_force = false;
	patch_live_path = saved;
	reset_all();
}

/* 2 * 256 + 2 sites in one batch: still at most three rounds. */
KTEST(live, big_batch_takes_three_rounds)
{
	patch_live_force = true;
	uint64_t b0 = patch_stats.live_batches;
	for (unsigned i = 0; i < LIVE_N; i++) {
		put_form(stub_site(live_call_stubs, i), NOP);
		put_form(stub_site(live_cs_stubs, i), T2);
	}
	patch_finish();
	patch_live_force = false;
	KT_EXPECT(t, patch_stats.live_batches == b0 + 1, "%lu batches",
		  patch_stats.live_batches - b0);
	KT_EXPECT(t, patch_stats.last_rounds <= 3, "%u rounds",
		  patch_stats.last_rounds);
	unsigned bad = 0;
	for (unsigned i = 0; i < LIVE_N; i++)
		bad += !holds_form(stub_site(live_call_stubs, i), NOP) ||
		       call_stub(live_call_stubs, i) != 0 ||
		       !holds_form(stub_site(live_cs_stubs, i), T2) ||
		       call_stub(live_cs_stubs, i) != 3;
	KT_EXPECT(t, !bad, "%u stubs wrong", bad);
	reset_all();
}

/* ---- the stress ---- */

static volatile unsigned stress_go, stress_stop, stress_n;
static const char *volatile stress_base;
static uint64_t calls[NC], seen[NC][5];

static void caller(void *arg)
{
	unsigned me = smp_cpu();
	(void)arg;

	irq_enable(); /* the sync IPIs come in between (or inside) calls */
	while (!READ_ONCE(stress_go))
		asm volatile("pause");
	while (!READ_ONCE(stress_stop)) {
		const char *base = stress_base;
		for (unsigned i = 0; i < stress_n; i++) {
			unsigned r = call_stub(base, i);
			seen[me][r < 4 ? r : 4]++;
			calls[me]++;
		}
	}
	irq_disable();
}

/*
 * Batches per stress test (livestress, the *-live rows): one site at a
 * time, live_stress_updates() (10,000 unless the row says otherwise);
 * 40 of 256 sites (10,240 site updates).
 */
static unsigned stress_updates(unsigned batch)
{
	return batch == 1 ? live_stress_updates() : 40;
}

static void stress(struct ktest_ctx *t, enum patch_live_path path,
		   const char *base, unsigned batch)
{
	if (smp_online < 2)
		KT_SKIP(t, "only one CPU online");
	LIVE_NEED_INT3(t);
	if (!opts.livestress)
		KT_SKIP(t, "the stress runs in the *-live rows (livestress)");
	enum patch_live_path saved = patch_live_path;
	unsigned rounds_of =
	    batch == 1 ? stress_updates(1) : stress_updates(batch);
	uint64_t seq[NC];

	memset((void *)live_count, 0, sizeof(live_count));
	memset(calls, 0, sizeof(calls));
	memset(seen, 0, sizeof(seen));
	stress_base = base;
	stress_n = batch;
	stress_go = stress_stop = 0;
	patch_live_path = path;
	struct patch_stats s0 = patch_stats;
	for (unsigned c = 1; c < smp_online; c++)
		KT_ASSERT(t, smp_post(c, caller, NULL, &seq[c]), "cpu %u busy",
			  c);
	stress_go = 1;
	uint64_t t0 = clock_read();
	enum form last = T0;
	for (unsigned u = 1; u <= rounds_of; u++) {
		last = (enum form)(u % 4); /* t1, t2, nop, t0, ... */
		for (unsigned i = 0; i < batch; i++)
			put_form(stub_site(base, i), last);
		patch_finish();
	}
	stress_stop = 1;
	for (unsigned c = 1; c < smp_online; c++)
		KT_EXPECT(t, smp_wait(c, seq[c], SMP_CALL_TIMEOUT_NS),
			  "cpu %u did not stop calling", c);
	uint64_t ns = clock_read() - t0;
	patch_live_path = saved;

	uint64_t batches = patch_stats.live_batches - s0.live_batches;
	uint64_t rounds = patch_stats.sync_rounds - s0.sync_rounds;
	printk("# %s path, %u-site batches: %u batches (%lu site updates) in "
	       "%lu ms; %lu sync rounds, %lu IPIs, %lu int3 sites, %lu single "
	       "stores, %lu #BP emulated, %lu CS #BP, %lu stale int3\n",
	       patch_live_names[path], batch, rounds_of,
	       (unsigned long)rounds_of * batch, ns / 1000000, rounds,
	       patch_stats.sync_ipis - s0.sync_ipis,
	       patch_stats.int3_sites - s0.int3_sites,
	       patch_stats.single_stores - s0.single_stores,
	       patch_stats.bp_emulated - s0.bp_emulated,
	       patch_stats.bp_cs - s0.bp_cs,
	       patch_stats.bp_stale - s0.bp_stale);
	KT_EXPECT(t, batches == rounds_of, "%lu of %u batches went live",
		  batches, rounds_of);
	KT_EXPECT(t, patch_stats.max_rounds <= 3, "a batch took %u rounds",
		  patch_stats.max_rounds);
	KT_EXPECT(t, rounds <= 3 * batches, "%lu rounds for %lu batches",
		  rounds, batches);
	for (unsigned c = 1; c < smp_online; c++) {
		uint64_t counted = 0;
		for (unsigned k = 0; k < 3; k++) {
			counted += live_count[k][c];
			KT_EXPECT(t, live_count[k][c] == seen[c][k + 1],
				  "cpu %u: target %u counted %lu, callers "
				  "saw %lu",
				  c, k, live_count[k][c], seen[c][k + 1]);
		}
		KT_EXPECT(t, counted + seen[c][0] == calls[c],
			  "cpu %u: %lu calls made, %lu counted + %lu NOPs", c,
			  calls[c], counted, seen[c][0]);
		KT_EXPECT(t, !seen[c][4], "cpu %u: %lu wrong results", c,
			  seen[c][4]);
		for (unsigned k = 0; k < 4; k++)
			KT_EXPECT(t, seen[c][k], "cpu %u never saw form %u", c,
				  k);
	}
	unsigned bad = 0;
	for (unsigned i = 0; i < batch; i++)
		bad += !holds_form(stub_site(base, i), last);
	KT_EXPECT(t, !bad, "%u sites do not hold their last write", bad);
	reset_all();
}

KTEST(live, stress_int3_batch1)
{
	stress(t, PATCH_LIVE_INT3, live_call_stubs, 1);
}
KTEST(live, stress_int3_batch256)
{
	stress(t, PATCH_LIVE_INT3, live_call_stubs, LIVE_N);
}
KTEST(live, stress_store_batch1)
{
	stress(t, PATCH_LIVE_STORE, live_call_stubs, 1);
}
KTEST(live, stress_store_batch256)
{
	stress(t, PATCH_LIVE_STORE, live_call_stubs, LIVE_N);
}
KTEST(live, stress_cs_batch1)
{
	stress(t, PATCH_LIVE_INT3, live_cs_stubs, 1);
}
KTEST(live, stress_cs_batch256)
{
	stress(t, PATCH_LIVE_INT3, live_cs_stubs, LIVE_N);
}

/* ---- two updaters: serialised by the update and poke locks ---- */

static volatile unsigned ser_go;
static unsigned ser_rounds;

static void updater(const char *base, unsigned first, unsigned n)
{
	for (unsigned u = 1; u <= ser_rounds; u++) {
		unsigned long fl = patch_begin();
		for (unsigned i = first; i < first + n; i++)
			put_form(stub_site(base, i), (enum form)(u % 4));
		patch_end(fl);
	}
}

static void ap_updater(void *arg)
{
	(void)arg;
	irq_enable();
	while (!READ_ONCE(ser_go))
		asm volatile("pause");
	updater(live_cs_stubs, 0, 64);
	irq_disable();
}

KTEST(live, concurrent_updates_are_serialised)
{
	uint64_t seq;

	if (smp_online < 2)
		KT_SKIP(t, "only one CPU online");
	ser_rounds = platform->id == PLATFORM_KVM ? 50 : 500;
	uint64_t i0 = patch_stats.interleaved, b0 = patch_stats.live_batches;
	ser_go = 0;
	KT_ASSERT(t, smp_post(1, ap_updater, NULL, &seq), "cpu 1 busy");
	ser_go = 1;
	updater(live_call_stubs, 0, 64);
	KT_EXPECT(t, smp_wait(1, seq, 10 * SMP_CALL_TIMEOUT_NS),
		  "cpu 1 did not finish");
	KT_EXPECT(t, patch_stats.interleaved == i0, "%lu interleaved writes",
		  patch_stats.interleaved - i0);
	KT_EXPECT(t, patch_stats.live_batches - b0 == 2 * ser_rounds,
		  "%lu live batches, expected %u",
		  patch_stats.live_batches - b0, 2 * ser_rounds);
	unsigned bad = 0;
	enum form last = (enum form)(ser_rounds % 4);
	for (unsigned i = 0; i < 64; i++)
		bad += !holds_form(stub_site(live_call_stubs, i), last) ||
		       !holds_form(stub_site(live_cs_stubs, i), last);
	KT_EXPECT(t, !bad, "%u sites do not hold their last write", bad);
	reset_all();
}

/* ---- make bench: the cost of one update batch (guest/bench.c) ---- */

static void report(const char *op, unsigned reps, const struct patch_stats *s0,
		   uint64_t *per)
{
	bench_sort_u64(per, reps);
	printk("bench: op=%s mode=live cpus=%u calls=1 batches=%u rounds=%lu "
	       "ipis=%lu stores=%lu int3=%lu min=%lu.00 median=%lu.00 "
	       "p99=%lu.00 unit=%s\n",
	       op, smp_online, reps,
	       (patch_stats.sync_rounds - s0->sync_rounds) / reps,
	       (patch_stats.sync_ipis - s0->sync_ipis) / reps,
	       (patch_stats.single_stores - s0->single_stores) / reps,
	       (patch_stats.int3_sites - s0->int3_sites) / reps, per[0],
	       per[reps / 2], per[(reps * 99) / 100],
	       opts.icount ? "insns" : "tsc");
}

void live_bench_paths(const char *prefix, unsigned reps, unsigned cs_max,
		      void (*batch)(enum live_bench_path, unsigned n,
				    unsigned rep),
		      void (*reset)(void))
{
	static const char *const names[] = {"int3", "store", "cs"};
	static const enum patch_live_path path_of[] = {
	    PATCH_LIVE_INT3, PATCH_LIVE_STORE, PATCH_LIVE_INT3};
	static const unsigned sizes[] = {1, 16, 256};
	uint64_t per[64];
	enum patch_live_path saved = patch_live_path;

	if (reps > ARRAY_SIZE(per))
		reps = ARRAY_SIZE(per);
	patch_live_force = true;
	for (unsigned p = LIVE_BENCH_INT3; p <= LIVE_BENCH_CS; p++)
		for (unsigned s = 0; s < ARRAY_SIZE(sizes); s++) {
			unsigned n = sizes[s];
			if (p == LIVE_BENCH_CS && n > cs_max)
				break;
			patch_live_path = path_of[p];
			struct patch_stats s0 = patch_stats;
			for (unsigned r = 0; r < reps; r++) {
				uint64_t t0 = bench_tsc();
				batch((enum live_bench_path)p, n, r);
				per[r] = bench_tsc() - t0;
			}
			char op[32];
			snprintf(op, sizeof(op), "%s%s_%u", prefix, names[p],
				 n);
			report(op, reps, &s0, per);
			if (reset)
				reset();
		}
	patch_live_force = false;
	patch_live_path = saved;
}

/* One batch: n stubs of the path re-aimed at the next target. */
static void stub_batch(enum live_bench_path p, unsigned n, unsigned rep)
{
	const char *base = p == LIVE_BENCH_CS ? live_cs_stubs : live_call_stubs;

	for (unsigned i = 0; i < n; i++)
		put_form(stub_site(base, i), (enum form)((rep + 1) % 3));
	patch_finish();
}

void live_bench(unsigned reps)
{
	live_bench_paths("update_", reps, 256, stub_batch, reset_all);
}
