/*
 * test_live.c - the live path of the patch engine (patch/live.c), in user
 * space: engine.c and live.c unchanged over a fake text of call / cs call
 * sites, with a seam whose "sync round" is a snapshot of the text and a
 * call of the engine's #BP handler for every site, as another CPU
 * meeting the site's first byte would. Checks:
 *   - the order of the writes: after round 1 every changing site holds
 *     int3 and its old tail, after round 2 the new tail, after round 3
 *     the new bytes; at most 3 rounds, fewer when a pass is empty;
 *   - single stores: one round, no int3, only where the rel32 lies in
 *     one aligned 8-byte word (and not with patchlive=int3);
 *   - the #BP lookup finds every site of a 300-site batch (binary search
 *     over the sorted batch, queued in reverse order) and emulates the new
 *     instruction: call (pushes the end of the site), jmp, NOP; a CS site
 *     resumes after its prefix; an address outside the batch is refused;
 *   - a batch with a site that is not one instruction goes to the stop
 *     path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ktap.h"
#include "patch.h"
#include "patch_seam.h"

#define NREC 300
#define STRIDE 16
#define TEXT_SIZE (NREC * STRIDE + 2 * PATCH_MAX_LEN)

asm(".data\n.balign 4096\n"
    ".globl _text_start, _text_end\n"
    "_text_start: .fill " PATCH_STR(
	TEXT_SIZE) ", 1, 0xcc\n"
		   "_text_end:\n.balign 16\n"
		   ".globl __patch_sites_start, __patch_sites_end\n"
		   "__patch_sites_start: .fill " PATCH_STR(
		       NREC) " * 16, 1, 0\n"
			     "__patch_sites_end:\n.balign 64\n"
			     ".globl __patch_state_start, __patch_state_end\n"
			     "__patch_state_start: .fill " PATCH_STR(
				 NREC) " * 64, 1, 0\n"
				       "__patch_state_end:\n.text\n");

#define RECS ((struct patch_site *)__patch_sites_start)
#define TEXT ((uint8_t *)_text_start)

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	return 0;
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# unexpected panic: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	exit(2);
}

#include "fake_seam.h"

void seam_lock(struct seam_lock *l)
{
	l->held = 1;
}
uintptr_t seam_poke_enter(void)
{
	return (uintptr_t)_text_start;
}
void seam_poke_leave(void)
{
}
static int stops;
void seam_others_stop(void)
{
	stops++;
}
void seam_others_resume(void)
{
}
static unsigned cur_cpu = 1;
unsigned seam_cpu(void)
{
	return cur_cpu; /* the writer: live.c records its number */
}
bool seam_others_online(void)
{
	return true;
}
/* Each round: a snapshot of the text, and #BP on every int3'd site. */
static uint8_t snap[4][TEXT_SIZE];
static unsigned rounds;
static unsigned bp_ok, bp_checked;
static uint8_t want_new[NREC][8];
static unsigned nsites;

static uintptr_t site(unsigned i)
{
	return (uintptr_t)TEXT + STRIDE * i + 2;
}

static void bp_each(void)
{
	for (unsigned i = 0; i < nsites; i++) {
		uintptr_t at = site(i);
		if (TEXT[at - (uintptr_t)TEXT] != 0xcc)
			continue;
		uint64_t stack[4] = {0};
		uint64_t rip = at + 1, rsp = (uint64_t)&stack[2], rax = 1;
		bp_checked++;
		if (!patch_live_bp(&rip, &rsp, &rax))
			continue;
		const uint8_t *b = want_new[i];
		unsigned len = RECS[i].len, p = len == 6 && b[0] == 0x2e;
		int32_t rel;
		memcpy(&rel, b + p + 1, 4);
		if (p && TEXT[at - (uintptr_t)TEXT + 1] == 0xe8 && b[1] == 0xe8)
			bp_ok += rip == at + 1 && rsp == (uint64_t)&stack[2];
		else if (b[p] == 0xe8)
			bp_ok += rip == at + len + rel &&
				 rsp == (uint64_t)&stack[1] &&
				 stack[1] == at + len;
		else if (b[p] == 0xe9)
			bp_ok += rip == at + len + rel;
		else
			bp_ok += rip == at + len;
	}
}

/*
 * Each round, as another CPU (2) returning from an interrupt: at the call
 * after every CS prefix (where the CS path resumes) and at each site's
 * first byte. Counts, per round, the returns moved and where to.
 */
static unsigned rewound[4], rewound_wrong[4];
static void iret_each(void)
{
	cur_cpu = 2;
	for (unsigned i = 0; i < nsites; i++) {
		uintptr_t at = site(i);
		uint64_t rip = at;
		patch_live_iret(&rip);
		rewound_wrong[rounds - 1] += rip != at;
		if (RECS[i].len != 6)
			continue;
		rip = at + 1;
		patch_live_iret(&rip);
		if (rip == at)
			rewound[rounds - 1]++;
		else if (rip != at + 1)
			rewound_wrong[rounds - 1]++;
	}
	cur_cpu = 1;
}

unsigned seam_sync_others(void)
{
	if (rounds < 4)
		memcpy(snap[rounds], TEXT, TEXT_SIZE);
	rounds++;
	bp_each();
	if (rounds <= 4)
		iret_each();
	return 3;
}

/* ---- a test kind: call or cs call rel32 to the payload ---- */
static bool is_orig(const struct patch_site *r, const uint8_t *t)
{
	(void)r;
	return t[0] == 0xe8 || t[0] == 0x2e;
}
static void orig(const struct patch_site *r, uint8_t *out)
{
	memcpy(out, (void *)patch_site_addr(r), r->len);
}
static const struct patch_kind kind = {
    .name = "test", .is_original = is_orig, .original = orig};

static void lay_out(unsigned n, unsigned cs)
{
	nsites = n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = (uint8_t *)site(i);
		unsigned c = cs && (i & 1);
		if (c)
			*p++ = 0x2e;
		*p = 0xe8;
		int32_t rel = 0x1000;
		memcpy(p + 1, &rel, 4);
		struct patch_site *r = &RECS[i];
		r->site = (int32_t)(site(i) - (uintptr_t)&r->site);
		r->payload = 0;
		r->kind = PATCH_KIND_TEST;
		r->len = (uint8_t)(5 + c);
	}
}

static void form(unsigned i, int f, uint8_t *b)
{
	const struct patch_site *r = &RECS[i];
	unsigned p = r->len == 6;
	memset(b, 0, PATCH_MAX_LEN);
	if (f < 0) { /* NOP */
		static const uint8_t n6[] = {0x66, 0x0f, 0x1f, 0x44, 0, 0};
		memcpy(b, n6 + 1 - p, r->len);
		return;
	}
	b[0] = 0x2e;
	b[p] = f >= 100 ? 0xe9 : 0xe8;
	int32_t rel = 0x1000 + 16 * (f % 100);
	memcpy(b + p + 1, &rel, 4);
}

/* Queue form f(i) for sites [0,n) in reverse order, finish, check. */
static void batch(unsigned n, int (*f)(unsigned), const char *what)
{
	uint8_t old[NREC][8];
	rounds = bp_ok = bp_checked = 0;
	memset(rewound, 0, sizeof(rewound));
	memset(rewound_wrong, 0, sizeof(rewound_wrong));
	for (unsigned i = 0; i < n; i++)
		memcpy(old[i], (void *)site(i), 8);
	for (unsigned k = n; k-- > 0;) {
		uint8_t b[PATCH_MAX_LEN];
		form(k, f(k), b);
		memcpy(want_new[k], b, 8);
		patch_queue(&RECS[k], b);
	}
	patch_finish();
	KTAP_CHECK(rounds <= 3, "%s: %u rounds", what, rounds);
	KTAP_CHECK(patch_stats.last_rounds == rounds, "%s: stats say %u", what,
		   patch_stats.last_rounds);
	for (unsigned i = 0; i < n; i++) {
		unsigned len = RECS[i].len;
		uintptr_t off = site(i) - (uintptr_t)TEXT;
		KTAP_CHECK(!memcmp((void *)site(i), want_new[i], len),
			   "%s: site %u does not hold its new bytes", what, i);
		if (!memcmp(old[i], want_new[i], len) ||
		    patch_live_path != PATCH_LIVE_INT3)
			continue;
		/* Round 1: int3 + old tail; round 2: int3 + new tail. */
		KTAP_CHECK(snap[0][off] == 0xcc &&
			       !memcmp(&snap[0][off + 1], old[i] + 1, len - 1),
			   "%s: site %u after round 1", what, i);
		KTAP_CHECK(
		    snap[1][off] == 0xcc &&
			!memcmp(&snap[1][off + 1], want_new[i] + 1, len - 1),
		    "%s: site %u after round 2", what, i);
	}
}

static int f_t1(unsigned i)
{
	(void)i;
	return 1;
}
static int f_t2(unsigned i)
{
	(void)i;
	return 2;
}
static int f_nop(unsigned i)
{
	(void)i;
	return -1;
}
static int f_mix(unsigned i)
{
	return i % 3 == 0 ? -1 : i % 3 == 1 ? 103 : 3;
}
static int f_jmp3(unsigned i)
{
	(void)i;
	return 103;
}

static void protocol(void)
{
	ktap_case("int3_protocol_order_and_rounds");
	patch_live_path = PATCH_LIVE_INT3;
	batch(NREC, f_t1, "int3 t1");
	KTAP_CHECK(rounds == 3, "int3: %u rounds", rounds);
	KTAP_CHECK(bp_checked > 0 && bp_ok == bp_checked,
		   "#BP emulation: %u of %u right", bp_ok, bp_checked);
	batch(NREC, f_mix, "mixed");
	KTAP_CHECK(bp_ok == bp_checked, "mixed #BP: %u of %u right", bp_ok,
		   bp_checked);
	batch(NREC, f_nop, "nop");
	KTAP_CHECK(bp_ok == bp_checked, "nop #BP: %u of %u", bp_ok, bp_checked);
	batch(NREC, f_t2, "back");
	ktap_end_case();

	ktap_case("single_store_one_round");
	patch_live_path = PATCH_LIVE_STORE;
	batch(NREC, f_t1, "t1");
	batch(NREC, f_t2, "store t2");
	/* sites at 16i + 2: rel32 at +3 (call) or +4 (cs call): one word */
	KTAP_CHECK(rounds == 1, "store: %u rounds", rounds);
	KTAP_CHECK(bp_checked == 0, "store: %u int3 seen", bp_checked);
	patch_live_path = PATCH_LIVE_INT3;
	batch(NREC, f_t1, "int3 path");
	KTAP_CHECK(rounds == 3, "patchlive=int3: %u rounds", rounds);
	ktap_end_case();

	ktap_case("iret_into_a_site_being_rewritten_goes_to_its_start");
	patch_live_path = PATCH_LIVE_INT3;
	batch(NREC, f_nop, "to nop"); /* every CS site's tail changes */
	unsigned ncs = 0;
	for (unsigned i = 0; i < nsites; i++)
		ncs += RECS[i].len == 6;
	KTAP_CHECK(rounds == 3, "nop: %u rounds", rounds);
	KTAP_CHECK(rewound[0] == ncs,
		   "round 1 (tails not yet written): %u of %u cs returns "
		   "moved to the site",
		   rewound[0], ncs);
	KTAP_CHECK(!rewound[1] && !rewound[2],
		   "rounds 2, 3 (tails written): %u, %u moved", rewound[1],
		   rewound[2]);
	KTAP_CHECK(!rewound_wrong[0] && !rewound_wrong[1] && !rewound_wrong[2],
		   "a return moved elsewhere, or from a site's start");
	uint64_t rip0 = site(1) + 1;
	patch_live_iret(&rip0);
	KTAP_CHECK(rip0 == site(1) + 1, "moved with no batch in flight");
	batch(NREC, f_t1, "back to t1");
	ktap_end_case();

	ktap_case("bp_outside_batch_is_refused");
	uint64_t rip = site(0) + 1 + 3, rsp = 0, rax = 0;
	KTAP_CHECK(!patch_live_bp(&rip, &rsp, &rax), "no batch: claimed");
	ktap_end_case();

	ktap_case("opcode_only_change_skips_tail");
	patch_live_path = PATCH_LIVE_INT3;
	batch(NREC, f_t1, "t1 again");
	/* call rel -> jmp same rel: differs in byte 0 only (non-CS sites) */
	for (unsigned i = 0; i < NREC; i += 2) {
		uint8_t b[PATCH_MAX_LEN];
		memcpy(b, (void *)site(i), 8);
		b[0] = 0xe9;
		memcpy(want_new[i], b, 8);
		patch_queue(&RECS[i], b);
	}
	rounds = 0;
	patch_finish();
	KTAP_CHECK(rounds == 2, "first byte only: %u rounds", rounds);
	ktap_end_case();

	ktap_case("not_one_insn_goes_to_stop_path");
	int s0 = stops;
	uint8_t b[PATCH_MAX_LEN] = {0x90, 0x90, 0x90, 0x90, 0x90};
	patch_queue(&RECS[0], b);
	patch_finish();
	KTAP_CHECK(stops == s0 + 1, "5 NOPs were written live");
	KTAP_CHECK(!memcmp((void *)site(0), b, 5), "bytes not written");
	ktap_end_case();
	(void)f_jmp3;
}

int main(void)
{
	ktap_begin(6);
	lay_out(NREC, 1);
	patch_register_kind(PATCH_KIND_TEST, &kind);
	patch_init();
	protocol();
	return ktap_finish();
}
