/*
 * test_alt.c - CPU-feature alternatives (alt/): every site holds the form
 * its CPU's features call for, checked against the literal instruction
 * bytes each form must have; clearcpuid= and noalternatives; the
 * function-level select.
 */
#include "alternative.h"
#include "bench_select.h"
#include "cache.h"
#include "cmdline.h"
#include "cpufeature.h"
#include "kernel.h"
#include "ktest.h"
#include "mm.h"
#include "nops.h"
#include "platform.h"
#include "pvops.h"
#include "timer.h"

/* What boot asked for: the replacement where the feature is present. */
static bool want_repl(unsigned feature)
{
	return !opts.noalternatives && cpu_has(feature);
}

/* The first alternative site of feature f in [from, to), or NULL. */
static const struct patch_site *alt_site_in(unsigned f, uintptr_t from,
					    uintptr_t to)
{
	for_each_alt_site(r)
	{
		uintptr_t at = patch_site_addr(r);
		if (r->arg == f && at >= from && at < to)
			return r;
	}
	return NULL;
}

static const struct patch_site *alt_site_of(unsigned f)
{
	return alt_site_in(f, 0, UINTPTR_MAX);
}

KTEST(alt, every_site_holds_its_features_form)
{
	unsigned n = 0, bad = 0;
	for_each_alt_site(r)
	{
		uint8_t want[PATCH_MAX_LEN];
		unsigned c = opts.noalternatives ? 0 : alt_choice(r);
		alt_form_bytes(r, c, want);
		n++;
		if (memcmp((const void *)patch_site_addr(r), want, r->len) ||
		    patch_form(r) != (c ? PATCH_WRITTEN : PATCH_ORIGINAL)) {
			if (!bad++)
				KT_EXPECT(t, false,
					  "site %lx (feature %u) does not hold "
					  "form %u",
					  (unsigned long)patch_site_addr(r),
					  r->arg, c);
		}
	}
	KT_ASSERT(t, n > 0, "no alternative sites in this kernel");
	KT_EXPECT(t, bad == 0, "%u of %u sites wrong", bad, n);
	KT_EXPECT(t, alt_stats.sites == n, "report counted %u of %u sites",
		  alt_stats.sites, n);
}

/* Literal bytes: rdtscp is 0f 01 f9; lfence; rdtsc is 0f ae e8 0f 31. */
KTEST(alt, rdtsc_ordered_is_rdtscp_iff_the_cpu_has_it)
{
	const struct patch_site *r = alt_site_of(X86_FEATURE_RDTSCP);
	KT_ASSERT(t, r, "no rdtscp site");
	const uint8_t *p = (const uint8_t *)patch_site_addr(r);
	static const uint8_t rdtscp[] = {0x0f, 0x01, 0xf9};
	static const uint8_t lfence_rdtsc[] = {0x0f, 0xae, 0xe8, 0x0f, 0x31};
	KT_ASSERT(t, r->len == 5, "site is %u bytes", r->len);
	if (want_repl(X86_FEATURE_RDTSCP))
		KT_EXPECT(t, !memcmp(p, rdtscp, 3) && nops_valid(p + 3, 2),
			  "has rdtscp, site holds %02x %02x %02x %02x %02x",
			  p[0], p[1], p[2], p[3], p[4]);
	else
		KT_EXPECT(t, !memcmp(p, lfence_rdtsc, 5),
			  "site holds %02x %02x %02x %02x %02x", p[0], p[1],
			  p[2], p[3], p[4]);
	uint64_t a = rdtsc_ordered(), b = rdtsc_ordered();
	KT_EXPECT(t, b >= a, "TSC went back: %lu then %lu", a, b);
}

/* serialize is 0f 01 e8; cpuid 0f a2. The site is the patch seam's. */
KTEST(alt, serialise_is_serialize_iff_the_cpu_has_it)
{
	const struct patch_site *r = alt_site_of(X86_FEATURE_SERIALIZE);
	KT_ASSERT(t, r, "no serialize site");
	const uint8_t *p = (const uint8_t *)patch_site_addr(r);
	KT_ASSERT(t, r->len == 3, "site is %u bytes", r->len);
	if (want_repl(X86_FEATURE_SERIALIZE))
		KT_EXPECT(t, p[0] == 0x0f && p[1] == 0x01 && p[2] == 0xe8,
			  "site holds %02x %02x %02x", p[0], p[1], p[2]);
	else
		KT_EXPECT(t,
			  p[0] == 0x0f && p[1] == 0xa2 && nops_valid(p + 2, 1),
			  "site holds %02x %02x %02x", p[0], p[1], p[2]);
}

static void __attribute__((noinline)) flush_here(volatile uint64_t *v)
{
	flush_cache_line(v);
}

/* clflush (%reg) is 0f ae /7; clflushopt the same behind 66. */
KTEST(alt, flush_is_clflushopt_iff_the_cpu_has_it)
{
	static volatile uint64_t v = 42;
	const struct patch_site *r =
	    alt_site_in(X86_FEATURE_CLFLUSHOPT, (uintptr_t)flush_here,
			(uintptr_t)flush_here + 64);
	KT_ASSERT(t, r, "no clflushopt site in flush_here()");
	const uint8_t *p = (const uint8_t *)patch_site_addr(r);
	unsigned o = want_repl(X86_FEATURE_CLFLUSHOPT);
	KT_EXPECT(t, !o || p[0] == 0x66, "no 66 prefix: %02x %02x %02x", p[0],
		  p[1], p[2]);
	KT_EXPECT(
	    t, p[o] == 0x0f && p[o + 1] == 0xae && ((p[o + 2] >> 3) & 7) == 7,
	    "not clflush%s: %02x %02x %02x %02x", o ? "opt" : "", p[0], p[1],
	    p[2], p[3]);
	KT_EXPECT(t, o || nops_valid(p + r->len - 1, 1),
		  "no NOP after clflush");
	flush_here(&v);
	asm volatile("mfence" ::: "memory");
	KT_EXPECT(t, v == 42, "flushed line lost its value: %lu", v);
}

/*
 * The select: `lea orig; lea alt; <site>`, the site a 3-byte NOP or
 * `mov alt, result` (REX.W 89 /r, mod 11).
 */
KTEST(alt, select_picks_the_function_its_feature_calls_for)
{
	void (*f)(void *) = clear_page_fn();
	bool erms = want_repl(X86_FEATURE_ERMS);
	KT_EXPECT(t, f == (erms ? clear_page_stosb : clear_page_stosq),
		  "erms %d, selected %p (stosq %p, stosb %p)", erms, f,
		  clear_page_stosq, clear_page_stosb);
	const struct patch_site *r = alt_site_of(X86_FEATURE_ERMS);
	KT_ASSERT(t, r && r->len == 3, "no 3-byte erms site");
	const uint8_t *p = (const uint8_t *)patch_site_addr(r);
	if (erms)
		KT_EXPECT(
		    t,
		    (p[0] & 0xf8) == 0x48 && p[1] == 0x89 && (p[2] >> 6) == 3,
		    "not a register mov: %02x %02x %02x", p[0], p[1], p[2]);
	else
		KT_EXPECT(t, nops_valid(p, 3), "not a NOP: %02x %02x %02x",
			  p[0], p[1], p[2]);
	/* The two lea before it are RIP-relative (48/4c 8d, mod 00 rm 101). */
	for (unsigned i = 1; i <= 2; i++) {
		const uint8_t *l = p - 7 * i;
		KT_EXPECT(t,
			  (l[0] & 0xfb) == 0x48 && l[1] == 0x8d &&
			      (l[2] & 0xc7) == 0x05,
			  "byte -%u: not a lea disp32(%%rip): %02x %02x %02x",
			  7 * i, l[0], l[1], l[2]);
	}
	uint64_t pa = pmm_alloc();
	KT_ASSERT(t, pa, "no page");
	uint64_t *w = phys_to_virt(pa);
	memset(w, 0xa5, PAGE_SIZE);
	clear_page(w);
	unsigned nz = 0;
	for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
		nz += w[i] != 0;
	KT_EXPECT(t, nz == 0, "%u words not cleared", nz);
	pmm_free(pa);
}

KTEST(alt, clearcpuid_clears_and_noalternatives_keeps)
{
	unsigned cleared = 0;
	for (unsigned w = 0; w < CPUFEATURE_WORDS; w++)
		for (unsigned b = 0; b < 32; b++)
			if (cpu_feature_cleared[w] >> b & 1) {
				cleared++;
				KT_EXPECT(t, !cpu_has(w * 32 + b),
					  "feature %u cleared but present",
					  w * 32 + b);
			}
	if (opts.noalternatives) {
		KT_EXPECT(t, alt_stats.patched == 0 && alt_stats.writes == 0,
			  "noalternatives: %u patched, %u writes",
			  alt_stats.patched, alt_stats.writes);
		for_each_alt_site(r) KT_EXPECT(
		    t, patch_form(r) == PATCH_ORIGINAL, "site %lx not original",
		    (unsigned long)patch_site_addr(r));
	}
	if (!cleared && !opts.noalternatives)
		KT_SKIP(t, "neither clearcpuid= nor noalternatives given");
}

KTEST(alt, platform_bits_match_the_platform)
{
	KT_EXPECT(
	    t, cpu_has(X86_FEATURE_XEN_PV) == (platform->id == PLATFORM_XEN_PV),
	    "xen_pv bit %d on %s", cpu_has(X86_FEATURE_XEN_PV), platform->name);
	KT_EXPECT(t, cpu_has(X86_FEATURE_KVM) == (platform->id == PLATFORM_KVM),
		  "kvm bit %d on %s", cpu_has(X86_FEATURE_KVM), platform->name);
	/* A platform choice written as an alternative, as a pvop could be. */
	unsigned xen, kvm;
	asm volatile(ALTERNATIVE("mov $0, %0", "mov $1, %0", X86_FEATURE_XEN_PV)
		     : "=r"(xen));
	asm volatile(ALTERNATIVE("mov $0, %0", "mov $1, %0", X86_FEATURE_KVM)
		     : "=r"(kvm));
	bool patched = !opts.noalternatives;
	KT_EXPECT(t, xen == (patched && platform->id == PLATFORM_XEN_PV),
		  "xen_pv alternative gave %u on %s", xen, platform->name);
	KT_EXPECT(t, kvm == (patched && platform->id == PLATFORM_KVM),
		  "kvm alternative gave %u on %s", kvm, platform->name);
	KT_EXPECT(t, cpu_feature_by_name("rdtscp", 6) == X86_FEATURE_RDTSCP,
		  "name lookup");
	KT_EXPECT(t, cpu_feature_by_name("nosuch", 6) == -1, "unknown name");
}

/* The IPI sender (guest/apic.c): x2APIC-only form iff the feature. */
KTEST(alt, ipi_sender_is_x2apic_only_iff_the_cpu_has_it)
{
	if (platform->id == PLATFORM_XEN_PV)
		KT_SKIP(t, "no local APIC in a Xen PV guest (event channels)");
	bool want = want_repl(X86_FEATURE_X2APIC);
	KT_EXPECT(t, apic_ipi_is_x2apic_only() == want,
		  "x2apic feature %d, noalternatives %d: sender x2apic-only %d",
		  cpu_has(X86_FEATURE_X2APIC), opts.noalternatives,
		  apic_ipi_is_x2apic_only());
	KT_EXPECT(t,
		  !strcmp(apic_mode(),
			  cpu_has(X86_FEATURE_X2APIC) ? "x2apic" : "xapic"),
		  "apic mode %s, x2apic feature %d", apic_mode(),
		  cpu_has(X86_FEATURE_X2APIC));
}

/* The benchmark's patched direct call (bench_select.h): `call rel32`
 * re-aimed by the engine from its replacement's copy to bench_sel_b. */
KTEST(alt, patched_call_is_relocated_to_its_target)
{
	const struct patch_site *r = NULL;
	for_each_alt_site(q) if (q->arg == X86_FEATURE_LM && q->len == 5) r = q;
	KT_ASSERT(t, r, "no 5-byte lm site (the benchmark's patched call)");
	const uint8_t *p = (const uint8_t *)patch_site_addr(r);
	KT_ASSERT(t, p[0] == 0xe8, "not a call rel32: %02x", p[0]);
	int32_t rel;
	memcpy(&rel, p + 1, 4);
	uintptr_t to = (uintptr_t)p + 5 + (intptr_t)rel;
	uintptr_t want = want_repl(X86_FEATURE_LM) ? (uintptr_t)bench_sel_b
						   : (uintptr_t)bench_sel_a;
	KT_EXPECT(t, to == want, "calls %lx, want %lx (a %p, b %p)",
		  (unsigned long)to, (unsigned long)want, bench_sel_a,
		  bench_sel_b);
	KT_EXPECT(t,
		  bench_site_patched_call(1) ==
		      (want_repl(X86_FEATURE_LM) ? 3 : 2),
		  "the call returned %lu", bench_site_patched_call(1));
}

static long sel_insns(enum bench_sel_method m)
{
	uint64_t best = ~0ull;
	for (int b = 0; b < 3; b++) {
		unsigned long fl = irq_save();
		uint64_t v = bench_sel_once(m, 20);
		irq_restore(fl);
		if (v < best)
			best = v;
	}
	return (long)((best + 50) / 100);
}

/*
 * Exact counts: the select is the patched call plus three instructions
 * (two lea and the one patched site: mov, or NOP as assembled), and loads
 * nothing; the indirect call is the patched call plus its one load.
 */
KTEST(alt, select_chooses_in_three_instructions_icount)
{
	if (!opts.icount)
		KT_SKIP(t, "needs icount (QEMU -icount shift=0)");
	long call = sel_insns(BSEL_PATCHED_CALL), sel = sel_insns(BSEL_SELECT);
	long ind = sel_insns(BSEL_INDIRECT_WARM), iff = sel_insns(BSEL_IF_WARM);
	KT_EXPECT(t, sel == call + 3, "select %ld, patched call %ld", sel,
		  call);
	KT_EXPECT(t, ind == call + 1, "indirect %ld, patched call %ld", ind,
		  call);
	KT_EXPECT(t, iff >= call + 2, "if %ld, patched call %ld", iff, call);
	/* Inlined, the static call is the same call; through its
	 * trampoline (a site crossing a line, staticcall=outline) one jmp
	 * more. */
	bench_sel_prepare();
	long sc = sel_insns(BSEL_STATIC_CALL);
	KT_EXPECT(t, sc == call || sc == call + 1,
		  "static call %ld, patched call %ld (%s)", sc, call,
		  bench_sel_static_call_form());
}
