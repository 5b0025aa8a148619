/*
 * plan.c - the pvop client's pure core (see pvop_patch.h).
 */
#include "insn.h"
#include "patch_bytes.h"
#include "pvop_patch.h"

void pvop_site_original(const struct patch_site *r, uint8_t *out)
{
	memset(out, 0, PATCH_MAX_LEN);
	out[0] = 0xff;
	out[1] = 0x15;
	put32(out + 2,
	      (int32_t)(patch_site_payload(r) -
			(patch_site_addr(r) + PVOP_INDIRECT_CALL_LEN)));
	nops_fill(out + PVOP_INDIRECT_CALL_LEN, r->len - PVOP_INDIRECT_CALL_LEN,
		  PATCH_PAD_NOPS);
}

bool pvop_site_is_original(const struct patch_site *r, const uint8_t *text)
{
	uint64_t at = patch_site_addr(r);
	uint16_t saved;

	if (r->kind == PATCH_KIND_PVOP_SAVES)
		return pvop_saves_parse(r, text, &saved);
	if (r->len < PVOP_INDIRECT_CALL_LEN || text[0] != 0xff ||
	    text[1] != 0x15)
		return false;
	if (at + PVOP_INDIRECT_CALL_LEN + (int64_t)get32(text + 2) !=
	    patch_site_payload(r))
		return false;
	return nops_valid(text + PVOP_INDIRECT_CALL_LEN,
			  r->len - PVOP_INDIRECT_CALL_LEN);
}

static void add_reloc(struct patch_reloc *rl, unsigned off, unsigned end,
		      uint64_t target)
{
	rl->off[rl->n] = (uint8_t)off;
	rl->end[rl->n] = (uint8_t)end;
	rl->target[rl->n] = target;
	rl->n++;
}

static void fail(struct pvop_plan *p, const char *why)
{
	p->kind = -1;
	p->why = why;
}

/*
 * PATCH_PAD_PREFIX: a one-instruction template absorbs spare bytes as
 * redundant DS-segment prefixes (ignored on an instruction without a
 * memory operand, and the default segment where it has one), up to the
 * 15-byte instruction limit.
 */
static unsigned prefix_count(const struct pvop_template *t, unsigned len,
			     enum patch_pad pad, const struct patch_reloc *rl)
{
	unsigned k = len - t->len;
	if (pad != PATCH_PAD_PREFIX || !t->one_insn || rl->n)
		return 0;
	if (t->len + k > NOP_INSN_MAX_LEN)
		k = NOP_INSN_MAX_LEN - t->len;
	return k;
}

static void plan_inline(const struct pvop_template *t, unsigned len,
			enum patch_pad pad, struct pvop_plan *p)
{
	const uint8_t *src = (const uint8_t *)(uintptr_t)t->addr;
	/* Xen's forced-emulation prefix (ud2; "xen") is one prefix. */
	const char *why = patch_reloc_scan(src, t->len, t->addr,
					   INSN_EMULATE_PREFIX, &p->rel);
	if (why)
		return fail(p, why);
	unsigned pre = prefix_count(t, len, pad, &p->rel);
	for (unsigned i = 0; i < pre; i++)
		p->bytes[i] = 0x3e;
	memcpy(p->bytes + pre, src, t->len);
	nops_fill(p->bytes + pre + t->len, len - pre - t->len, pad);
	p->kind = PVOP_KIND_INLINE;
}

static void plan_call(const struct pvop_impl *impl, unsigned op, unsigned len,
		      enum patch_pad pad, struct pvop_plan *p)
{
	if (!impl->call)
		return fail(p, "backend has no function for this op");
	if (impl->call_clobbers & ~pvop_clobbers[op])
		return fail(
		    p, "backend function clobbers registers the site keeps");
	/*
	 * One spare byte (a 6-byte slot) becomes a CS prefix on the call
	 * rather than a NOP after it: the patched call then executes no
	 * more instructions than the indirect call it replaces.
	 */
	unsigned pre = len - PVOP_DIRECT_CALL_LEN == 1 ? 1 : 0;
	if (pre)
		p->bytes[0] = 0x2e;
	p->bytes[pre] = 0xe8;
	add_reloc(&p->rel, pre + 1, pre + PVOP_DIRECT_CALL_LEN,
		  (uint64_t)(uintptr_t)impl->call);
	nops_fill(p->bytes + pre + PVOP_DIRECT_CALL_LEN,
		  len - pre - PVOP_DIRECT_CALL_LEN, pad);
	p->kind = PVOP_KIND_CALL;
}

static void plan_make(const struct pvop_impl *impl, unsigned op,
		      enum pvop_mode mode, enum patch_pad pad,
		      struct pvop_plan *p)
{
	const struct pvop_template *t = impl->tpl;
	unsigned len = pvop_slots[op];

	memset(p, 0, sizeof(*p));
	if (mode == PVOP_MODE_INDIRECT) {
		p->bytes[0] = 0xff;
		p->bytes[1] = 0x15;
		add_reloc(&p->rel, 2, PVOP_INDIRECT_CALL_LEN,
			  (uint64_t)(uintptr_t)&pv_ops.fn[op]);
		nops_fill(p->bytes + PVOP_INDIRECT_CALL_LEN,
			  len - PVOP_INDIRECT_CALL_LEN, PATCH_PAD_NOPS);
		p->kind = PVOP_KIND_INDIRECT;
		return;
	}
	if (impl->nop && mode == PVOP_MODE_INLINE) {
		nops_fill(p->bytes, len, pad);
		p->kind = PVOP_KIND_NOP;
		return;
	}
	if (mode == PVOP_MODE_INLINE && t && t->len <= len &&
	    !(t->clobbers & ~pvop_clobbers[op]))
		return plan_inline(t, len, pad, p);
	plan_call(impl, op, len, pad, p);
}

/*
 * Every plan gets a tag no other plan of any prepare() has had (never 0,
 * the tag of a site no plan has been applied to): the count of prepares
 * so far, then the plan's index. A site tagged with it holds exactly this
 * plan's bytes (pvops/client.c), so re-preparing a backend, or another
 * backend at the same address, never matches an old tag.
 */
static uintptr_t prepares;

void pvop_backend_prepare(struct pvop_backend *b)
{
	uintptr_t gen = ++prepares, index = 0;

	for (unsigned op = 0; op < PVOP_NR; op++) {
		struct pvop_impl *impl = &b->op[op];
		for (int m = 0; m < PVOP_MODE_NR; m++)
			for (int pad = 0; pad < PATCH_PAD_NR; pad++) {
				struct pvop_plan *p = &impl->plan[m][pad];
				plan_make(impl, op, m, pad, p);
				p->tag = gen << 16 | ++index;
				p->stat = p->kind < 0 ? PVOP_KIND_NR
						      : (uint8_t)p->kind;
			}
		impl->prepared = true;
	}
}

int pvop_site_plan(const struct patch_site *r, const struct pvop_impl *impl,
		   enum pvop_mode mode, enum patch_pad pad, uint8_t *out,
		   const char **why)
{
	if (r->arg >= PVOP_NR || r->arg2 != pvop_clobbers[r->arg]) {
		*why = "site clobber mask is not its op's";
		return -1;
	}
	if (r->len != pvop_slots[r->arg]) {
		*why = "site length is not its op's slot";
		return -1;
	}
	if (!impl->prepared) {
		*why = "backend not prepared (pvop_backend_prepare)";
		return -1;
	}
	const struct pvop_plan *p =
	    &impl->plan[pvop_site_mode(r, mode)][pvop_site_pad(r, pad)];
	if (!pvop_plan_apply(p, patch_site_addr(r), out, why))
		return -1;
	return p->kind;
}

/* ---- sites with their register saves (PATCH_KIND_PVOP_SAVES) ---- */

/* One-byte push/pop of each saveable register, by PVREG_* bit. */
#define SAVEABLE 0xef /* rax rcx rdx rbx rbp rsi rdi: not rsp */

static unsigned saves_n(const struct patch_site *r)
{
	return (unsigned)(r->len - pvop_slots[r->arg]) / 2;
}

static unsigned popcount16(unsigned m)
{
	unsigned n = 0;
	for (; m; m &= m - 1)
		n++;
	return n;
}

bool pvop_saves_valid(const struct patch_site *r, uint16_t saved)
{
	return r->arg < PVOP_NR && r->len > pvop_slots[r->arg] && saved &&
	       !(saved & ~SAVEABLE) && popcount16(saved) == saves_n(r) &&
	       r->len == pvop_slots[r->arg] + 2 * saves_n(r);
}

static void put_saves(uint8_t *out, uint16_t saved, bool pop)
{
	unsigned i = 0;
	if (!pop) {
		for (unsigned b = 0; b < 8; b++)
			if (saved & (1u << b))
				out[i++] = (uint8_t)(0x50 + b);
	} else {
		for (int b = 7; b >= 0; b--)
			if (saved & (1u << b))
				out[i++] = (uint8_t)(0x58 + b);
	}
}

/* The saves around the call, as the record and the text say. */
bool pvop_saves_parse(const struct patch_site *r, const uint8_t *text,
		      uint16_t *saved)
{
	unsigned n = saves_n(r), slot;
	uint16_t m = 0;

	if (r->arg >= PVOP_NR || r->len <= pvop_slots[r->arg])
		return false;
	slot = pvop_slots[r->arg];
	for (unsigned i = 0; i < n; i++) {
		unsigned b = text[i] - 0x50u;
		if (b > 7 || !(SAVEABLE & (1u << b)) || (m >> b) != 0)
			return false; /* not a push, or out of order */
		m |= (uint16_t)(1u << b);
	}
	if (!pvop_saves_valid(r, m))
		return false;
	uint8_t pops[8];
	put_saves(pops, m, true);
	for (unsigned i = 0; i < n; i++)
		if (text[n + slot + i] != pops[i])
			return false;
	/* The call in the middle, as in an ordinary site. */
	if (text[n] != 0xff || text[n + 1] != 0x15 ||
	    patch_site_addr(r) + n + PVOP_INDIRECT_CALL_LEN +
		    (int64_t)get32(text + n + 2) !=
		patch_site_payload(r) ||
	    !nops_valid(text + n + PVOP_INDIRECT_CALL_LEN,
			slot - PVOP_INDIRECT_CALL_LEN))
		return false;
	*saved = m;
	return true;
}

void pvop_saves_original(const struct patch_site *r, uint16_t saved,
			 uint8_t *out)
{
	unsigned n = saves_n(r), slot = pvop_slots[r->arg];

	memset(out, 0, PATCH_MAX_LEN);
	put_saves(out, saved, false);
	out[n] = 0xff;
	out[n + 1] = 0x15;
	put32(out + n + 2,
	      (int32_t)(patch_site_payload(r) -
			(patch_site_addr(r) + n + PVOP_INDIRECT_CALL_LEN)));
	nops_fill(out + n + PVOP_INDIRECT_CALL_LEN,
		  slot - PVOP_INDIRECT_CALL_LEN, PATCH_PAD_NOPS);
	put_saves(out + n + slot, saved, true);
}

/*
 * The saves go when the site becomes the backend's inline bytes (or
 * nothing) and those clobber none of the saved registers; the inline
 * bytes then cover the whole range. Otherwise the op's plan sits between
 * the kept saves.
 */
int pvop_saves_plan(const struct patch_site *r, const struct pvop_impl *impl,
		    enum pvop_mode mode, enum patch_pad pad, bool consume,
		    uint16_t saved, struct pvop_plan *out, bool *consumed,
		    const char **why)
{
	unsigned n = saves_n(r), slot;

	/* The record (the kind's check()) and the saves (parsed from the
	 * unpatched text) were validated before; only what may differ. */
	if (r->arg >= PVOP_NR || r->len != pvop_slots[r->arg] + 2 * n ||
	    !saved) {
		*why = "saves site record does not match its saves";
		return -1;
	}
	if (!impl->prepared) {
		*why = "backend not prepared (pvop_backend_prepare)";
		return -1;
	}
	slot = pvop_slots[r->arg];
	enum pvop_mode m = pvop_site_mode(r, mode);
	enum patch_pad pd = pvop_site_pad(r, pad);
	const struct pvop_plan *p = &impl->plan[m][pd];
	if (p->kind < 0) {
		*why = p->why;
		return -1;
	}
	out->rel.n = 0;
	out->why = NULL;
	bool inl = p->kind == PVOP_KIND_INLINE || p->kind == PVOP_KIND_NOP;
	uint16_t tclob = p->kind == PVOP_KIND_INLINE ? impl->tpl->clobbers : 0;
	if (consume && inl && !(tclob & saved)) {
		if (p->kind == PVOP_KIND_NOP) {
			nops_fill(out->bytes, r->len, pd);
			out->kind = PVOP_KIND_NOP;
		} else if (pd == PATCH_PAD_PREFIX && impl->tpl->one_insn) {
			/* Prefixes depend on the length: plan afresh. */
			plan_inline(impl->tpl, r->len, pd, out);
			if (out->kind < 0) {
				*why = out->why;
				return -1;
			}
		} else {
			/*
			 * The op's inline plan starts with the template and
			 * its relocations (found by decoding it once, in
			 * prepare()); only the padding is longer here.
			 */
			unsigned tl = impl->tpl->len;
			bytes_copy(out->bytes, p->bytes, tl);
			nops_fill(out->bytes + tl, r->len - tl, pd);
			out->rel = p->rel;
			out->kind = PVOP_KIND_INLINE;
		}
		*consumed = true;
	} else {
		put_saves(out->bytes, saved, false);
		bytes_copy(out->bytes + n, p->bytes, slot);
		put_saves(out->bytes + n + slot, saved, true);
		out->rel = p->rel;
		for (unsigned i = 0; i < out->rel.n; i++) {
			out->rel.off[i] = (uint8_t)(out->rel.off[i] + n);
			out->rel.end[i] = (uint8_t)(out->rel.end[i] + n);
		}
		out->kind = p->kind;
		*consumed = false;
	}
	out->stat = (uint8_t)out->kind;
	/* Distinct from every ordinary plan's tag, kept or consumed. */
	out->tag = p->tag | (uintptr_t)1 << (*consumed ? 62 : 61);
	return out->kind;
}
