/*
 * patch.c - the patcher's pure core (see pvop_patch.h).
 */
#include "pvop_patch.h"

static void put32(uint8_t *p, int32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)((uint32_t)v >> (8 * i));
}

static int32_t get32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			 (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static bool fits_rel32(int64_t d)
{
	return d >= INT32_MIN && d <= INT32_MAX;
}

void pvop_site_original(const struct pvop_site *s, uint64_t pv_ops_addr,
			uint8_t *out)
{
	uint64_t slot = pv_ops_addr + 8 * (uint64_t)s->op;
	out[0] = 0xff;
	out[1] = 0x15;
	put32(out + 2, (int32_t)(slot - (s->addr + PVOP_INDIRECT_CALL_LEN)));
	nops_fill(out + PVOP_INDIRECT_CALL_LEN, s->len - PVOP_INDIRECT_CALL_LEN,
		  PVOP_PAD_NOPS);
}

bool pvop_site_is_original(const struct pvop_site *s, uint64_t pv_ops_addr,
			   const uint8_t *cur)
{
	uint64_t slot = pv_ops_addr + 8 * (uint64_t)s->op;
	if (s->len < PVOP_INDIRECT_CALL_LEN || cur[0] != 0xff || cur[1] != 0x15)
		return false;
	if ((uint64_t)((int64_t)s->addr + PVOP_INDIRECT_CALL_LEN +
		       get32(cur + 2)) != slot)
		return false;
	return nops_valid(cur + PVOP_INDIRECT_CALL_LEN,
			  s->len - PVOP_INDIRECT_CALL_LEN);
}

static enum pvop_mode site_mode(const struct pvop_site *s, enum pvop_mode m)
{
	if (s->flags & PVOP_SITE_FORCE_INDIRECT)
		return PVOP_MODE_INDIRECT;
	if (s->flags & PVOP_SITE_FORCE_CALL)
		return PVOP_MODE_CALL;
	if (s->flags & PVOP_SITE_FORCE_INLINE)
		return PVOP_MODE_INLINE;
	return m;
}

static enum pvop_pad site_pad(const struct pvop_site *s, enum pvop_pad pad)
{
	unsigned p = (s->flags & PVOP_SITE_PAD_MASK) >> PVOP_SITE_PAD_SHIFT;
	return p && p <= PVOP_PAD_NR ? (enum pvop_pad)(p - 1) : pad;
}

/*
 * PVOP_PAD_PREFIX: a one-instruction template absorbs spare bytes as
 * redundant DS-segment prefixes (ignored on an instruction without a
 * memory operand, and the default segment where it has one), up to the
 * 15-byte instruction limit. Returns how many prefixes were written.
 */
static unsigned put_prefixes(const struct pvop_site *s,
			     const struct pvop_template *t, enum pvop_pad pad,
			     uint8_t *out)
{
	unsigned k = s->len - t->len;
	if (pad != PVOP_PAD_PREFIX || !t->one_insn || t->rel32 != PVOP_NO_REL32)
		return 0;
	if (t->len + k > INSN_MAX_LEN)
		k = INSN_MAX_LEN - t->len;
	for (unsigned i = 0; i < k; i++)
		out[i] = 0x3e;
	return k;
}

static int plan_inline(const struct pvop_site *s, const struct pvop_template *t,
		       enum pvop_pad pad, uint8_t *out, const char **why)
{
	const uint8_t *src = (const uint8_t *)(uintptr_t)t->addr;
	unsigned pre = put_prefixes(s, t, pad, out);

	if (pre) {
		for (unsigned i = 0; i < t->len; i++)
			out[pre + i] = src[i];
		nops_fill(out + pre + t->len, s->len - pre - t->len, pad);
		return PVOP_KIND_INLINE;
	}

	for (unsigned i = 0; i < t->len; i++)
		out[i] = src[i];
	if (t->rel32 != PVOP_NO_REL32) {
		if ((unsigned)t->rel32 + 4 > t->len) {
			*why = "template rel32 lies outside the template";
			return -1;
		}
		/* Same target, seen from the site instead of the template. */
		int64_t target =
		    (int64_t)t->addr + t->rel32 + 4 + get32(src + t->rel32);
		int64_t d = target - (int64_t)(s->addr + t->rel32 + 4);
		if (!fits_rel32(d)) {
			*why = "template branch target out of rel32 range";
			return -1;
		}
		put32(out + t->rel32, (int32_t)d);
	}
	nops_fill(out + t->len, s->len - t->len, pad);
	return PVOP_KIND_INLINE;
}

static int plan_call(const struct pvop_site *s, const struct pvop_impl *impl,
		     enum pvop_pad pad, uint8_t *out, const char **why)
{
	if (!impl->call) {
		*why = "backend has no function for this op";
		return -1;
	}
	if (impl->call_clobbers & ~s->clobbers) {
		*why = "backend function clobbers registers the site keeps";
		return -1;
	}
	int64_t d = (int64_t)(uintptr_t)impl->call -
		    (int64_t)(s->addr + PVOP_DIRECT_CALL_LEN);
	/* (with a prefix the call ends one byte later: d - 1, below) */
	if (!fits_rel32(d)) {
		*why = "call target out of rel32 range";
		return -1;
	}
	/*
	 * One spare byte (a 6-byte slot) becomes a CS prefix on the call
	 * rather than a NOP after it: the patched call then executes no
	 * more instructions than the indirect call it replaces.
	 */
	unsigned pre = s->len - PVOP_DIRECT_CALL_LEN == 1 ? 1 : 0;
	if (pre)
		out[0] = 0x2e;
	out[pre] = 0xe8;
	put32(out + pre + 1, (int32_t)(d - pre));
	nops_fill(out + pre + PVOP_DIRECT_CALL_LEN,
		  s->len - pre - PVOP_DIRECT_CALL_LEN, pad);
	return PVOP_KIND_CALL;
}

int pvop_site_plan(const struct pvop_site *s, const struct pvop_impl *impl,
		   enum pvop_mode mode, enum pvop_pad pad, uint64_t pv_ops_addr,
		   uint8_t *out, const char **why)
{
	const struct pvop_template *t = impl->tpl;

	if (s->op >= PVOP_NR) {
		*why = "unknown op number";
		return -1;
	}
	if (s->len < PVOP_INDIRECT_CALL_LEN || s->len > PVOP_MAX_SLOT) {
		*why = "site length outside [6, 32]";
		return -1;
	}
	mode = site_mode(s, mode);
	pad = site_pad(s, pad);
	if (mode == PVOP_MODE_INDIRECT) {
		pvop_site_original(s, pv_ops_addr, out);
		return PVOP_KIND_INDIRECT;
	}
	if (impl->nop && mode == PVOP_MODE_INLINE) {
		nops_fill(out, s->len, pad);
		return PVOP_KIND_NOP;
	}
	if (mode == PVOP_MODE_INLINE && t && t->len <= s->len &&
	    !(t->clobbers & ~s->clobbers))
		return plan_inline(s, t, pad, out, why);
	return plan_call(s, impl, pad, out, why);
}
