/*
 * test_engine.c - the patch engine and the pvop client, in user space.
 *
 * Compiles patch/engine.c and pvops/client.c unchanged, with the rest of
 * the pvop client and the engine's pure parts, against a fake kernel: a
 * "text" buffer (writable here, so the poke mapping is the buffer itself),
 * a table of pvop site records pointing into it, the state table, and a
 * seam whose panic() longjmps back to the test. Then checks what the
 * kernel's own tests can only check one boot at a time:
 *   - nothing can be queued before patch_init(); patch_init() refuses a
 *     record with an undefined field or a site without its original bytes;
 *   - a pass writes every site its plan changes, in batches of at most the
 *     queue's size, and a second identical pass writes nothing;
 *   - a stray write is refused by the next pass, whether that pass would
 *     rewrite the site (another mode) or keep it (the same mode, the
 *     original form);
 *   - a site queued twice in one batch is refused;
 *   - back to pvops=off restores every site's assembled bytes exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ktap.h"
#include "patch.h"
#include "pvop_backend.h"

/* ---- the fake kernel: text, records, state (linker symbols) ---- */

#define NREC (PATCH_QUEUE_MAX + 44) /* a pass needs two batches */
#define STRIDE 32
#define TEXT_SIZE (NREC * STRIDE + 2 * PATCH_MAX_LEN)

asm(".data\n.balign 4096\n"
    ".globl _text_start, _text_end\n"
    "_text_start: .fill " PATCH_STR(
	TEXT_SIZE) ", 1, 0xcc\n"
		   "_text_end:\n"
		   ".balign 16\n"
		   ".globl __patch_sites_start, __patch_sites_end\n"
		   "__patch_sites_start: .fill " PATCH_STR(
		       NREC) " * 16, 1, 0\n"
			     "__patch_sites_end:\n"
			     ".balign 64\n"
			     ".globl __patch_state_start, __patch_state_end\n"
			     "__patch_state_start: .fill " PATCH_STR(
				 NREC) " * 64, 1, 0\n"
				       "__patch_state_end:\n"
				       ".text\n");

/* The records are const to the engine; the test writes them. */
#define RECS ((struct patch_site *)__patch_sites_start)

/* Thunks the backends name; never called here. */
#define FAKE(name) asm(".text\n.globl " #name "\n" #name ":\n\tret\n")
FAKE(native_apic_eoi_thunk);
FAKE(native_clock_read_thunk);
FAKE(kvm_apic_eoi_thunk);
FAKE(kvm_clock_read_thunk);
FAKE(xen_force_upcall_thunk);
FAKE(xen_restore_fl_thunk);
FAKE(xen_safe_halt_thunk);
FAKE(xen_halt_thunk);
FAKE(xen_write_cr3_thunk);
FAKE(xen_flush_tlb_one_thunk);
FAKE(xen_clock_read_thunk);
FAKE(native_send_ipi_thunk);
FAKE(native_send_ipi_mask_thunk);
FAKE(native_flush_tlb_others_thunk);
FAKE(kvm_send_ipi_thunk);
FAKE(kvm_send_ipi_mask_thunk);
FAKE(kvm_flush_tlb_others_thunk);
FAKE(xen_send_ipi_thunk);
FAKE(xen_send_ipi_mask_thunk);
FAKE(xen_flush_tlb_others_thunk);
FAKE(native_lock_wait_thunk);
FAKE(xen_lock_wait_thunk);
FAKE(xen_lock_kick_thunk);
FAKE(xen_set_pte_thunk);
FAKE(xen_set_pmd_thunk);
FAKE(xen_set_pud_thunk);
FAKE(xen_set_pgd_thunk);
FAKE(xen_make_pte_thunk);
FAKE(xen_pte_val_thunk);
FAKE(xen_alloc_pt_thunk);
FAKE(xen_release_pt_thunk);
FAKE(xen_lazy_mmu_enter_thunk);
FAKE(xen_lazy_mmu_leave_thunk);
FAKE(native_load_sp0_thunk);
FAKE(xen_load_sp0_thunk);
/* The Xen iret_user/sysret_user templates jump into it; never run here. */
char hypercall_page[4096];

/* ---- the seam ---- */

#include "fake_panic.h"	  /* printk, panic */
#define FAKE_SEAM_ONE_CPU /* patch_finish() never goes live */
#include "fake_seam.h"

void seam_lock(struct seam_lock *l)
{
	if (l->held)
		panic("seam_lock: already held");
	l->held = 1;
}

static int poke_depth;

uintptr_t seam_poke_enter(void)
{
	poke_depth++;
	return (uintptr_t)_text_start; /* writable here: its own alias */
}

void seam_poke_leave(void)
{
	poke_depth--;
}

/* One CPU here: nobody to stop, but the calls must pair up. */
static int others_stopped;

void seam_others_stop(void)
{
	if (others_stopped++)
		panic("seam_others_stop: nested");
}

void seam_others_resume(void)
{
	others_stopped--;
}

/* ---- the table ---- */

static uint8_t assembled[NREC][PATCH_MAX_LEN];

/* Site i: op i % 16, at STRIDE * i, as the kernel's site macro emits it. */
static void lay_out(void)
{
	memset(_text_start, 0xcc, TEXT_SIZE);
	for (int i = 0; i < NREC; i++) {
		struct patch_site *r = &RECS[i];
		int op = i % PVOP_NR;
		uintptr_t at = (uintptr_t)(_text_start + STRIDE * i);
		*r = (struct patch_site){
		    .site = (int32_t)(at - (uintptr_t)&r->site),
		    .payload = (int32_t)((uintptr_t)&pv_ops.fn[op] -
					 (uintptr_t)&r->payload),
		    .kind = PATCH_KIND_PVOP,
		    .len = pvop_slots[op],
		    .arg = (uint16_t)op,
		    .arg2 = pvop_clobbers[op],
		};
		pvop_site_original(r, assembled[i]);
		memcpy((void *)at, assembled[i], r->len);
	}
}

static unsigned sites_off_plan(void)
{
	unsigned bad = 0;
	for (int i = 0; i < NREC; i++) {
		const struct patch_site *r = &RECS[i];
		uint8_t want[PATCH_MAX_LEN], believed[PATCH_MAX_LEN];
		int kind = pvop_expected(r, want);
		const uint8_t *cur = (const uint8_t *)patch_site_addr(r);
		bool ok = kind == PVOP_KIND_INDIRECT
			      ? !memcmp(cur, assembled[i], r->len)
			      : !memcmp(cur, want, r->len);
		patch_current(r, believed);
		bad += !(ok && !memcmp(cur, believed, r->len));
	}
	return bad;
}

static struct pvop_backend native;
static int stray_site; /* a WRITTEN site in inline mode: call or inline */

static void queue_early(void)
{
	patch_queue(&RECS[0], assembled[0]);
}

static void init(void)
{
	patch_init();
}

static void pass_inline(void)
{
	pvop_patch_all(&native, PVOP_MODE_INLINE, PATCH_PAD_DEFAULT);
}

static void pass_call(void)
{
	pvop_patch_all(&native, PVOP_MODE_CALL, PATCH_PAD_DEFAULT);
}

static void pass_off(void)
{
	pvop_patch_all(&native, PVOP_MODE_INDIRECT, PATCH_PAD_DEFAULT);
}

static void queue_twice(void)
{
	const struct patch_site *r = &RECS[stray_site];
	uint8_t b[PATCH_MAX_LEN];
	pvop_site_original(r, b);
	patch_queue(r, b);
	patch_queue(r, b);
}

static void stray_write(int i)
{
	uint8_t *p = (uint8_t *)patch_site_addr(&RECS[i]);
	p[0] ^= 0xff;
}

static void stray_undo(int i)
{
	stray_write(i);
}

static void check_refusal(const char *what, void (*fn)(void), const char *want)
{
	const char *got = panics(fn);
	KTAP_CHECK(got && strstr(got, want), "%s: got '%s', want '...%s...'",
		   what, got ? got : "no panic", want);
}

static void records(void)
{
	static const struct {
		const char *name;
		int field;
		unsigned value;
		const char *want;
	} bad[] = {
	    {"clobbers 0xffff", 0, 0xffff, "clobber mask is not its op's"},
	    {"undefined flag", 1, 0x80, "undefined flag bits"},
	    {"reserved", 2, 1, "reserved field is not zero"},
	    {"kind 0", 3, 0, "unknown kind"},
	    {"kind without client", 3, PATCH_KIND_ALT, "no client"},
	    {"op out of range", 4, PVOP_NR, "unknown op"},
	    {"length", 5, 3, "slot"},
	};

	ktap_case("engine: refusals before and in patch_init");
	lay_out();
	check_refusal("queue before patch_init", queue_early,
		      "before patch_init");
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct patch_site saved = RECS[7];
		struct patch_site *r = &RECS[7];
		switch (bad[k].field) {
		case 0:
			r->arg2 = (uint16_t)bad[k].value;
			break;
		case 1:
			r->flags = (uint8_t)bad[k].value;
			break;
		case 2:
			r->reserved = (uint8_t)bad[k].value;
			break;
		case 3:
			r->kind = (uint8_t)bad[k].value;
			break;
		case 4:
			r->arg = (uint16_t)bad[k].value;
			break;
		case 5:
			r->len = (uint8_t)bad[k].value;
			break;
		}
		check_refusal(bad[k].name, init, bad[k].want);
		RECS[7] = saved;
	}
	stray_write(9);
	check_refusal("site without its original bytes", init,
		      "does not hold its original bytes");
	stray_undo(9);
	KTAP_CHECK(!panics(init), "good table refused: %s", panic_msg);
	ktap_end_case();
}

static void passes(void)
{
	ktap_case("engine: batches, idempotence, re-patching");
	uint64_t w0 = patch_stats.writes, b0 = patch_stats.batches;
	KTAP_CHECK(!panics(pass_inline), "inline pass: %s", panic_msg);
	uint64_t writes = patch_stats.writes - w0;
	KTAP_CHECK(writes > PATCH_QUEUE_MAX && writes <= NREC,
		   "%lu writes for %d sites", (unsigned long)writes, NREC);
	KTAP_CHECK(patch_stats.batches - b0 >= 2,
		   "%lu batches for %lu writes (queue holds %d)",
		   (unsigned long)(patch_stats.batches - b0),
		   (unsigned long)writes, PATCH_QUEUE_MAX);
	KTAP_CHECK(!sites_off_plan(), "%u sites differ from the inline plan",
		   sites_off_plan());
	KTAP_CHECK(poke_depth == 0, "poke mapping left entered");
	KTAP_CHECK(others_stopped == 0, "other CPUs left stopped");
	w0 = patch_stats.writes;
	KTAP_CHECK(!panics(pass_inline), "second pass: %s", panic_msg);
	KTAP_CHECK(patch_stats.writes == w0, "second pass wrote %lu times",
		   (unsigned long)(patch_stats.writes - w0));
	KTAP_CHECK(!panics(pass_call), "call pass: %s", panic_msg);
	KTAP_CHECK(!sites_off_plan(), "%u sites differ from the call plan",
		   sites_off_plan());
	KTAP_CHECK(!panics(pass_off), "off pass: %s", panic_msg);
	KTAP_CHECK(!sites_off_plan(), "%u sites not back as assembled",
		   sites_off_plan());
	KTAP_CHECK(!panics(pass_inline), "inline again: %s", panic_msg);
	KTAP_CHECK(!sites_off_plan(), "%u sites differ, inline again",
		   sites_off_plan());
	ktap_end_case();
}

static void strays(void)
{
	ktap_case("engine: stray writes and double queueing are refused");
	/* A site the inline pass wrote (op 0, irq_disable, is inline). */
	stray_site = 16;
	KTAP_CHECK(patch_form(&RECS[stray_site]) == PATCH_WRITTEN,
		   "site %d not written", stray_site);
	stray_write(stray_site);
	check_refusal("same-mode pass over a stray write", pass_inline,
		      "holds bytes the engine did not write");
	stray_undo(stray_site);
	stray_write(stray_site);
	check_refusal("other-mode pass over a stray write", pass_call,
		      "holds bytes the engine did not write");
	stray_undo(stray_site);
	/* The refused passes left a batch half queued: finish it. */
	patch_finish();
	KTAP_CHECK(!panics(pass_off), "off pass: %s", panic_msg);
	stray_write(stray_site);
	check_refusal("pass keeping an original site over a stray write",
		      pass_off, "no longer holds its original bytes");
	stray_undo(stray_site);
	patch_finish();
	check_refusal("queued twice", queue_twice, "queued twice");
	patch_finish();
	KTAP_CHECK(!sites_off_plan(), "%u sites off plan after the refusals",
		   sites_off_plan());
	ktap_end_case();
}

int main(void)
{
	ktap_begin(3);
	pvop_backend_native(&native);
	pvop_backend_prepare(&native);
	pvop_register_kind();
	records();
	passes();
	strays();
	return ktap_finish();
}
