/*
 * test_alt.c - the alternative client (alt/alt.c) and the engine, in user
 * space, over sites built by the real ALTERNATIVE, ALTERNATIVE_2 and
 * ALTERNATIVE_SELECT macros.
 *
 * The sites live in functions of their own section, which
 * tests/host/test_alt.ld places between _text_start and _text_end (the
 * kernel's symbols); the seam makes those pages writable for the engine
 * (the "poke mapping" is the text itself here) and its panic() longjmps
 * back to the test. The features are this file's cpu_feature_words, set
 * per pass. Each pass then *runs* the patched functions. Checks:
 *   - patch_init() accepts every site, including originals with a rel32
 *     call or a RIP-relative operand (their copies assemble to other bytes);
 *   - each feature set gives each site the form it calls for, and the
 *     code then computes what that form computes (rel32 and RIP-relative
 *     replacements relocated), the second replacement winning;
 *   - a second identical pass writes nothing; keep (noalternatives) and
 *     "no features" put back the original instructions exactly;
 *   - a stray write to a patched site is refused by the next pass, and a
 *     record with 3 replacements is refused by patch_init().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alternative.h"
#include "ktap.h"
#include "patch.h"
#include "patch_seam.h"

uint32_t cpu_feature_words[CPUFEATURE_WORDS];

/* Two features the test switches (any numbers below CPUFEATURE_NR). */
#define FEAT_A X86_FEATURE_RDTSCP
#define FEAT_B X86_FEATURE_ERMS

const char *cpu_feature_name(unsigned f)
{
	return f == FEAT_A ? "a" : f == FEAT_B ? "b" : NULL;
}

/* ---- the seam ---- */

#include "fake_panic.h"	  /* printk, panic */
#define FAKE_SEAM_ONE_CPU /* patch_finish() never goes live */
#include "fake_seam.h"

void seam_lock(struct seam_lock *l)
{
	l->held = 1;
}
void seam_others_stop(void)
{
}
void seam_others_resume(void)
{
}

static void protect_text(int prot)
{
	if (mprotect(_text_start, (size_t)(_text_end - _text_start), prot)) {
		perror("test_alt: mprotect");
		exit(2);
	}
}

uintptr_t seam_poke_enter(void)
{
	protect_text(PROT_READ | PROT_WRITE | PROT_EXEC);
	return (uintptr_t)_text_start;
}

void seam_poke_leave(void)
{
	protect_text(PROT_READ | PROT_EXEC);
}

/* ---- the sites ---- */

#define SITE_FN __attribute__((noinline, section(".text.alttest")))
#define CALL_CLOBBERS                                                          \
	"rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc"

unsigned long host_one(void);
unsigned long host_two(void);
__attribute__((noinline)) unsigned long host_one(void)
{
	return 10;
}
__attribute__((noinline)) unsigned long host_two(void)
{
	return 20;
}
static const char data1[8] = "one", data2[8] = "two";
#define test_rsp patch_stack_pointer

SITE_FN static unsigned long one_repl(void)
{
	unsigned long r;
	asm volatile(ALTERNATIVE("mov $1, %0", "mov $2, %0", FEAT_A) : "=r"(r));
	return r;
}

SITE_FN static unsigned long two_repl(void)
{
	unsigned long r;
	asm volatile(ALTERNATIVE_2("mov $1, %0", "mov $2, %0", FEAT_A,
				   "mov $3, %0; nop; nop", FEAT_B)
		     : "=r"(r));
	return r;
}

SITE_FN static unsigned long rel32_call(void)
{
	unsigned long r;
	asm volatile(ALTERNATIVE("call host_one", "call host_two", FEAT_A)
		     : "=a"(r), "+r"(test_rsp)
		     :
		     : CALL_CLOBBERS);
	return r;
}

SITE_FN static const char *rip_relative(void)
{
	const char *p;
	asm volatile(
	    ALTERNATIVE("lea data1(%%rip), %0", "lea data2(%%rip), %0", FEAT_A)
	    : "=r"(p));
	return p;
}

ALTERNATIVE_SELECT(pick, host_one, host_two, FEAT_B)
SITE_FN static unsigned long selected(void)
{
	return pick()();
}

struct want {
	unsigned long one, two, call, sel;
	const char *rip;
};

static void features(bool a, bool b)
{
	memset(cpu_feature_words, 0, sizeof(cpu_feature_words));
	if (a)
		cpu_feature_words[FEAT_A / 32] |= 1u << (FEAT_A % 32);
	if (b)
		cpu_feature_words[FEAT_B / 32] |= 1u << (FEAT_B % 32);
}

static bool runs_as(const char *pass, struct want w)
{
	struct want got = {one_repl(), two_repl(), rel32_call(), selected(),
			   rip_relative()};
	bool ok = got.one == w.one && got.two == w.two && got.call == w.call &&
		  got.sel == w.sel && got.rip == w.rip;
	if (!ok)
		printf("# %s: got %lu %lu %lu %lu %s, want %lu %lu %lu %lu "
		       "%s\n",
		       pass, got.one, got.two, got.call, got.sel, got.rip,
		       w.one, w.two, w.call, w.sel, w.rip);
	return ok;
}

static uint8_t assembled[64][PATCH_MAX_LEN];

/* Every site holds its original instructions (padding may differ). */
static bool all_original(void)
{
	unsigned i = 0;
	for_each_alt_site(r)
	{
		const struct alt_desc *d = alt_desc_of(r);
		if (memcmp((void *)patch_site_addr(r), assembled[i],
			   d->orig_len) ||
		    patch_form(r) == PATCH_WRITTEN)
			return false;
		i++;
	}
	return true;
}

#define RESULT(cond, name, ...)                                                \
	do {                                                                   \
		ktap_case(name);                                               \
		KTAP_CHECK(cond, __VA_ARGS__);                                 \
		ktap_end_case();                                               \
	} while (0)

static void init(void)
{
	patch_init();
}
static void apply(void)
{
	alt_apply_all(false);
}

int main(void)
{
	ktap_begin(8);
	alt_register_kind();
	unsigned n = 0;
	for_each_alt_site(r)
	    memcpy(assembled[n++], (void *)patch_site_addr(r), PATCH_MAX_LEN);
	const char *refused = panics(init);
	RESULT(n == 5 && !refused, "patch_init_accepts_every_site",
	       "%u sites (want 5), %s", n, refused ? refused : "accepted");

	features(false, false);
	alt_apply_all(false);
	RESULT(patch_stats.writes == 0 && all_original() &&
		   runs_as("none", (struct want){1, 1, 10, 10, data1}),
	       "no_features_keep_the_originals", "%lu writes",
	       (unsigned long)patch_stats.writes);

	features(true, false);
	alt_apply_all(false);
	RESULT(patch_stats.writes == 4 &&
		   runs_as("a", (struct want){2, 2, 20, 10, data2}),
	       "feature_a_patches_and_relocates", "%lu writes",
	       (unsigned long)patch_stats.writes);

	features(true, true);
	uint64_t w0 = patch_stats.writes;
	alt_apply_all(false);
	bool both = patch_stats.writes - w0 == 2 &&
		    runs_as("a+b", (struct want){2, 3, 20, 20, data2});
	w0 = patch_stats.writes;
	alt_apply_all(false);
	RESULT(both && patch_stats.writes == w0,
	       "second_replacement_wins_and_a_repeat_writes_nothing",
	       "writes %lu", (unsigned long)(patch_stats.writes - w0));

	alt_apply_all(true);
	RESULT(all_original() &&
		   runs_as("keep", (struct want){1, 1, 10, 10, data1}),
	       "keep_restores_the_original_instructions", "");

	features(true, true);
	alt_apply_all(false);
	const struct patch_site *victim = NULL;
	for_each_alt_site(r) if (patch_form(r) == PATCH_WRITTEN) victim = r;
	uint8_t int3 = 0xcc, saved = *(uint8_t *)patch_site_addr(victim);
	protect_text(PROT_READ | PROT_WRITE | PROT_EXEC);
	*(uint8_t *)patch_site_addr(victim) = int3;
	features(false, false);
	const char *why = panics(apply);
	*(uint8_t *)patch_site_addr(victim) = saved;
	protect_text(PROT_READ | PROT_EXEC);
	RESULT(why && strstr(why, "holds bytes the engine did not write"),
	       "stray_write_refused", "%s", why ? why : "no panic");

	/* The records are read-only data: open them for this one case. */
	/* volatile: the engine's declaration says const, the test writes. */
	volatile struct patch_site *rec =
	    (volatile struct patch_site *)__patch_sites_start;
	uintptr_t page = (uintptr_t)rec & ~4095ul;
	mprotect((void *)page, 4096, PROT_READ | PROT_WRITE);
	uint8_t flags = rec->flags;
	rec->flags = 3;
	why = panics(init);
	rec->flags = flags;
	RESULT(why && strstr(why, "number of replacements"),
	       "three_replacements_refused", "%s", why ? why : "no panic");

	rec->arg = CPUFEATURE_NR;
	why = panics(init);
	RESULT(why && strstr(why, "feature number out of range"),
	       "feature_out_of_range_refused", "%s", why ? why : "no panic");
	return ktap_finish();
}
