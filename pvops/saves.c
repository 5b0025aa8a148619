/*
 * saves.c - pvop sites that own the register saves around them
 * (PATCH_KIND_PVOP_SAVES; pvop_asm.h: PVOP_ASM_SITE_SAVED).
 *
 * A record of this kind spans one-byte pushes, an ordinary site of its
 * op and the matching pops. The kind's is_original() learns which
 * registers a site saves from its unpatched bytes (after consumption the
 * text no longer says); pvop_patch_saves() gives each site its plan
 * (pvop_saves_plan(), pvops/plan.c) in the boot batch, after the loop
 * over the ordinary sites (pvops/client.c) and in the same batch.
 */
#include "pvop_backend.h"

bool pvop_consume_saves = true;
struct pvop_saves_site pvop_saves[PVOP_SAVES_MAX];
unsigned pvop_saves_nr;

static struct pvop_saves_site *saves_of(const struct patch_site *r)
{
	for (unsigned i = 0; i < pvop_saves_nr; i++)
		if (pvop_saves[i].r == r)
			return &pvop_saves[i];
	return NULL;
}

/* ---- the kind ---- */

static const char *saves_check(const struct patch_site *r)
{
	if (r->arg >= PVOP_NR)
		return "unknown op";
	unsigned extra = r->len - pvop_slots[r->arg];
	if (r->len <= pvop_slots[r->arg] || extra % 2 || extra > 14)
		return "length is not its op's slot plus pushes and pops";
	if (r->arg2 != pvop_clobbers[r->arg])
		return "clobber mask is not its op's";
	if (r->flags)
		return "a site with saves takes no flags";
	if (patch_site_payload(r) != (uintptr_t)&pv_ops.fn[r->arg])
		return "payload is not its op's pv_ops slot";
	return NULL;
}

static bool saves_is_original(const struct patch_site *r, const uint8_t *text)
{
	uint16_t saved;
	if (!pvop_saves_parse(r, text, &saved))
		return false;
	struct pvop_saves_site *s = saves_of(r);
	if (!s) {
		if (pvop_saves_nr == PVOP_SAVES_MAX)
			panic("pvops: more than %d sites with saves",
			      PVOP_SAVES_MAX);
		s = &pvop_saves[pvop_saves_nr++];
		s->r = r;
		s->saved = saved;
	}
	return s->saved == saved;
}

static void saves_original(const struct patch_site *r, uint8_t *out)
{
	const struct pvop_saves_site *s = saves_of(r);
	if (!s)
		panic("pvops: original of saves site %lx asked before it was "
		      "seen",
		      (unsigned long)patch_site_addr(r));
	pvop_saves_original(r, s->saved, out);
}

static void saves_describe(const struct patch_site *r, char *buf, size_t n)
{
	const struct pvop_saves_site *s = saves_of(r);
	snprintf(buf, n, "op %s with saves %#x, clobbers %#x",
		 r->arg < PVOP_NR ? pvop_names[r->arg] : "?", s ? s->saved : 0,
		 r->arg2);
}

static const struct patch_kind pvop_saves_kind = {
    .name = "pvop-saves",
    .check = saves_check,
    .is_original = saves_is_original,
    .original = saves_original,
    .describe = saves_describe,
};

/*
 * Registers the kind and finds its sites, reading what each saves from
 * its text, which is still as assembled (a site that does not parse is
 * left for patch_init(), whose is_original() refuses it loudly).
 */
void pvop_register_saves_kind(void)
{
	patch_register_kind(PATCH_KIND_PVOP_SAVES, &pvop_saves_kind);
	for_each_patch_site_of(PATCH_KIND_PVOP_SAVES, r)
	{
		const uint8_t *text = (const uint8_t *)patch_site_addr(r);
		uint16_t saved;
		if (!saves_of(r) && pvop_saves_parse(r, text, &saved))
			saves_is_original(r, text);
	}
}

/*
 * Every mode and padding style's plan of every site, for backend b and
 * the current pvsaves= setting, before boot patching (as
 * pvop_backend_prepare() does for the ordinary sites).
 */
void pvop_saves_prepare(const struct pvop_backend *b)
{
	for (unsigned i = 0; i < pvop_saves_nr; i++) {
		struct pvop_saves_site *s = &pvop_saves[i];
		for (int m = 0; m < PVOP_MODE_NR; m++)
			for (int pad = 0; pad < PATCH_PAD_NR; pad++) {
				struct pvop_saves_prepared *p =
				    &s->prepared[m][pad];
				p->why = "";
				p->kind = (int8_t)pvop_saves_plan(
				    s->r, &b->op[s->r->arg], m, pad,
				    pvop_consume_saves, s->saved, &p->plan,
				    &p->consumed, &p->why);
			}
		s->plans_for = b;
		s->plans_consume = pvop_consume_saves;
	}
}

/* ---- plans and patching ---- */

static void __attribute__((noreturn))
saves_cannot_patch(const struct patch_site *r, const char *why)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "cannot patch for %s: %s",
		 pvop_current ? pvop_current->name : "?", why);
	patch_site_panic(r, msg, NULL);
}

static struct pvop_saves_site *saves_plan(const struct patch_site *r,
					  const struct pvop_backend *b,
					  enum pvop_mode mode,
					  enum patch_pad pad)
{
	const char *why = "not seen when the records were checked";
	struct pvop_saves_site *s = saves_of(r);
	if (!s || (s->kind = pvop_saves_plan(r, &b->op[r->arg], mode, pad,
					     pvop_consume_saves, s->saved,
					     &s->plan, &s->consumed, &why)) < 0)
		saves_cannot_patch(r, why);
	return s;
}

int pvop_saves_expected(const struct patch_site *r, uint8_t *out)
{
	const char *why = "";
	struct pvop_saves_site *s =
	    saves_plan(r, pvop_current, pvop_mode, pvop_pad);
	if (!pvop_plan_apply(&s->plan, patch_site_addr(r), out, &why))
		saves_cannot_patch(r, why);
	return s->kind;
}

/* The prepared plan when there is one for b and pvsaves=, else made now. */
static const struct pvop_plan *site_plan(struct pvop_saves_site *s,
					 const struct pvop_backend *b,
					 enum pvop_mode mode,
					 enum patch_pad pad)
{
	if (s->plans_for != b || s->plans_consume != pvop_consume_saves)
		return &saves_plan(s->r, b, mode, pad)->plan;
	const struct pvop_saves_prepared *p = &s->prepared[mode][pad];
	if (p->kind < 0)
		saves_cannot_patch(s->r, p->why);
	s->kind = p->kind;
	s->consumed = p->consumed;
	return &p->plan;
}

void pvop_patch_saves(const struct pvop_backend *b, enum pvop_mode mode,
		      enum patch_pad pad)
{
	for (unsigned i = 0; i < pvop_saves_nr; i++) {
		const struct patch_site *r = pvop_saves[i].r;
		const struct pvop_plan *p =
		    site_plan(&pvop_saves[i], b, mode, pad);
		pvop_stats.sites[r->arg][p->stat]++;
		if (patch_tag(r) != p->tag)
			patch_queue_reloc(r, p->bytes, &p->rel, p->tag);
		else
			patch_check(r);
	}
}

void pvop_saves_report(void)
{
	for (unsigned i = 0; i < pvop_saves_nr; i++) {
		const struct pvop_saves_site *s = &pvop_saves[i];
		unsigned n = (s->r->len - pvop_slots[s->r->arg]) / 2;
		printk("pvop saves: site %lx (%s, saves %u register(s), mask "
		       "%#x): %s\n",
		       (unsigned long)patch_site_addr(s->r),
		       pvop_names[s->r->arg], n, s->saved,
		       s->consumed ? "consumed, the inline bytes span the site"
		       : !pvop_consume_saves ? "kept (pvsaves=keep)"
		       : s->kind == PVOP_KIND_INLINE
			   ? "kept (the inline bytes clobber a saved register)"
			   : "kept (not inline)");
	}
}
