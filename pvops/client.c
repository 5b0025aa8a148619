/*
 * client.c - pvops as a client of the patch engine: the pvop site kind,
 * and one batch that rewrites every pvop site for a backend and mode.
 *
 * What a site should hold comes from pvops/plan.c; the engine checks the
 * site holds what it believes, then writes (patch.h).
 */
#include "nops.h"
#include "patch_bytes.h"
#include "pvop_backend.h"

struct pvop_stats pvop_stats;
const struct pvop_backend *pvop_current;
enum pvop_mode pvop_mode = PVOP_MODE_INLINE;
enum patch_pad pvop_pad = PATCH_PAD_DEFAULT;

/* ---- the kind ---- */

static const char *pvop_check(const struct patch_site *r)
{
	unsigned force = r->flags & PVOP_SITE_FORCE_MASK;
	unsigned pad = (r->flags & PVOP_SITE_PAD_MASK) >> PVOP_SITE_PAD_SHIFT;

	if (r->arg >= PVOP_NR)
		return "unknown op";
	if (r->len != pvop_slots[r->arg])
		return "length is not its op's slot";
	if (r->arg2 != pvop_clobbers[r->arg])
		return "clobber mask is not its op's";
	if (r->flags & ~(PVOP_SITE_FORCE_MASK | PVOP_SITE_PAD_MASK))
		return "undefined flag bits";
	if (force & (force - 1))
		return "pinned to more than one mode";
	if (pad > PATCH_PAD_NR)
		return "padding style out of range";
	if (patch_site_payload(r) != (uintptr_t)&pv_ops.fn[r->arg])
		return "payload is not its op's pv_ops slot";
	return NULL;
}

/*
 * The assembler pads every site of a given length with the same NOPs, so
 * once one padding of a length has been decoded and found to be NOPs, the
 * others are compared with it instead of being decoded again.
 */
static uint8_t pad_seen[PATCH_MAX_LEN + 1][PATCH_MAX_LEN];
static bool pad_known[PATCH_MAX_LEN + 1];

static bool pvop_is_original(const struct patch_site *r, const uint8_t *text)
{
	unsigned n = r->len - PVOP_INDIRECT_CALL_LEN;
	const uint8_t *pad = text + PVOP_INDIRECT_CALL_LEN;

	if (text[0] != 0xff || text[1] != 0x15 ||
	    patch_site_addr(r) + PVOP_INDIRECT_CALL_LEN +
		    (int64_t)get32(text + 2) !=
		patch_site_payload(r))
		return false;
	if (pad_known[n] && bytes_equal(pad, pad_seen[n], n))
		return true;
	/* First padding of this length: the full (host-tested) check. */
	if (!pvop_site_is_original(r, text))
		return false;
	bytes_copy(pad_seen[n], pad, n);
	pad_known[n] = true;
	return true;
}

/* The assembled form: the indirect call and the padding seen at boot. */
static void pvop_original(const struct patch_site *r, uint8_t *out)
{
	unsigned n = r->len - PVOP_INDIRECT_CALL_LEN;
	out[0] = 0xff;
	out[1] = 0x15;
	put32(out + 2,
	      (int32_t)(patch_site_payload(r) -
			(patch_site_addr(r) + PVOP_INDIRECT_CALL_LEN)));
	if (!pad_known[n])
		panic("pvops: original of site %lx asked before it was seen",
		      (unsigned long)patch_site_addr(r));
	bytes_copy(out + PVOP_INDIRECT_CALL_LEN, pad_seen[n], n);
}

static void pvop_describe(const struct patch_site *r, char *buf, size_t n)
{
	snprintf(buf, n, "op %s, clobbers %#x, flags %#x",
		 r->arg < PVOP_NR ? pvop_names[r->arg] : "?", r->arg2,
		 r->flags);
}

static const struct patch_kind pvop_kind = {
    .name = "pvop",
    .check = pvop_check,
    .is_original = pvop_is_original,
    .original = pvop_original,
    .describe = pvop_describe,
};

/* How many pvop records the table holds (counted at registration). */
static unsigned pvop_sites_nr;

void pvop_register_kind(void)
{
	patch_register_kind(PATCH_KIND_PVOP, &pvop_kind);
	pvop_register_saves_kind();
	pvop_sites_nr = 0;
	for_each_pvop_record(r) pvop_sites_nr++;
}

/* ---- patching ---- */

void pvop_install_table(const struct pvop_backend *b)
{
	for (int op = 0; op < PVOP_NR; op++) {
		if (!b->op[op].call)
			panic("pvops: backend %s has no function for %s",
			      b->name, pvop_names[op]);
		pv_ops.fn[op] = b->op[op].call;
	}
}

static void __attribute__((noreturn))
cannot_patch(const struct patch_site *r, const char *why)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "cannot patch for %s: %s",
		 pvop_current->name, why);
	patch_site_panic(r, msg, NULL);
}

int pvop_expected(const struct patch_site *r, uint8_t *out)
{
	const char *why = "";
	if (r->kind == PATCH_KIND_PVOP_SAVES)
		return pvop_saves_expected(r, out);
	int kind = pvop_site_plan(r, &pvop_current->op[r->arg], pvop_mode,
				  pvop_pad, out, &why);
	if (kind < 0)
		cannot_patch(r, why);
	return kind;
}

static const struct pvop_plan *pinned_plan(const struct pvop_backend *b,
					   const struct patch_site *r,
					   enum pvop_mode mode,
					   enum patch_pad pad)
{
	return &b->op[r->arg]
		    .plan[pvop_site_mode(r, mode)][pvop_site_pad(r, pad)];
}

/* Out of line: only re-patching passes keep sites, and the boot's hot
 * loop stays small without it. */
static __attribute__((noinline)) void keep_site(const struct patch_site *r)
{
	patch_check(r);
}

static void queue_plan(const struct patch_site *r, const struct pvop_plan *p)
{
	if (p->kind == PVOP_KIND_INDIRECT)
		patch_queue_original(r);
	else if (p->kind >= 0)
		patch_queue_reloc(r, p->bytes, &p->rel, p->tag);
	else
		cannot_patch(r, p->why);
}

void pvop_patch_all(const struct pvop_backend *b, enum pvop_mode mode,
		    enum patch_pad pad)
{
	const struct pvop_plan *ordinary[PVOP_NR];

	if (!b->op[0].prepared)
		panic("pvops: backend %s was not prepared", b->name);
	pvop_install_table(b);
	pvop_current = b;
	pvop_mode = mode;
	pvop_pad = pad;
	memset(&pvop_stats, 0, sizeof(pvop_stats));
	for (int op = 0; op < PVOP_NR; op++)
		ordinary[op] = &b->op[op].plan[mode][pad];
	for_each_pvop_site(r)
	{
		const struct pvop_plan *p = ordinary[r->arg];
		if (__builtin_expect(r->flags != 0, 0)) {
			p = pinned_plan(b, r, mode, pad);
			/* Benchmark sites pin their mode: count them apart. */
			if (r->flags & PVOP_SITE_FORCE_MASK)
				pvop_stats.pinned++;
			else
				pvop_stats.sites[r->arg][p->stat]++;
		} else {
			pvop_stats.sites[r->arg][p->stat]++;
		}
		/*
		 * A site that got this very plan last time needs no write, only
		 * the engine's check that it still holds it. (A plan that
		 * failed, kind -1, is never a site's tag: queue_plan panics.)
		 */
		if (patch_tag(r) != p->tag)
			queue_plan(r, p);
		else
			keep_site(r);
	}
	/*
	 * The sites with saves are records of their own kind, patched by
	 * pvops/saves.c in its own loop: this one, which every site runs
	 * through, needs no test for them (and the engine's inline queueing
	 * keeps its one call site here).
	 */
	pvop_patch_saves(b, mode, pad);
	pvop_stats.total = pvop_sites_nr;
	patch_finish();
}

void pvop_report(void)
{
	static const char *const mode_names[] = {"off", "noinline", "on"};

	printk("pvops: %s, mode %s, padding %s, %u sites (%u of them "
	       "benchmark sites pinned to a mode)\n",
	       pvop_current->name, mode_names[pvop_mode],
	       patch_pad_names[pvop_pad], pvop_stats.total, pvop_stats.pinned);
	for (int op = 0; op < PVOP_NR; op++) {
		const unsigned *k = pvop_stats.sites[op];
		const struct pvop_impl *impl = &pvop_current->op[op];
		printk("pvop %-13s sites %2u: inline %u call %u nop %u "
		       "indirect %u  (%s)\n",
		       pvop_names[op], k[0] + k[1] + k[2] + k[3],
		       k[PVOP_KIND_INLINE], k[PVOP_KIND_CALL], k[PVOP_KIND_NOP],
		       k[PVOP_KIND_INDIRECT],
		       impl->nop   ? "nothing"
		       : impl->tpl ? "template"
				   : "function");
	}
	pvop_saves_report();
}
