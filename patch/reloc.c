/*
 * reloc.c - moving replacement bytes: find, once, every field that must be
 * re-aimed when the bytes run somewhere else, then re-aim them per site.
 *
 * The decoder (insn.c) finds the fields, so a template needs no
 * hand-written offsets and cannot smuggle in a RIP-relative operand that
 * nobody relocates.
 */
#include "insn.h"
#include "patch.h"
#include "patch_bytes.h"

const char *patch_reloc_scan(const uint8_t *src, unsigned len,
			     uint64_t src_addr, unsigned insn_flags,
			     struct patch_reloc *out)
{
	out->n = 0;
	for (unsigned at = 0; at < len;) {
		struct insn in;
		unsigned n = insn_decode(src + at, len - at, insn_flags, &in);
		if (!n)
			return "undecodable instruction";
		/* Forms whose target cannot be re-aimed by a disp32 fix-up. */
		if (in.rel_size == 2)
			return "rel16 branch (66-prefixed xbegin)";
		if (in.rip_rel && (in.legacy & INSN_PFX_ADSIZE))
			return "32-bit RIP-relative operand (67 prefix)";
		unsigned field = 0;
		if (in.rel_size == 4)
			field = at + in.imm_off;
		else if (in.rip_rel)
			field = at + in.disp_off;
		if (in.rel_size == 1) {
			int8_t d = (int8_t)src[at + in.imm_off];
			int64_t to = (int64_t)(at + n) + d;
			if (to < 0 || to > (int64_t)len)
				return "rel8 branch leaves the bytes";
		}
		if (field) {
			uint64_t target =
			    src_addr + at + n + get32(src + field);
			if (target >= src_addr && target <= src_addr + len)
				field = 0; /* inside: moves with the bytes */
		}
		if (field) {
			if (out->n == PATCH_RELOC_MAX)
				return "too many relocations";
			out->off[out->n] = (uint8_t)field;
			out->end[out->n] = (uint8_t)(at + n);
			out->target[out->n] =
			    src_addr + at + n + get32(src + field);
			out->n++;
		}
		at += n;
	}
	return NULL;
}

const char *patch_reloc_apply(const struct patch_reloc *rl, uint8_t *buf,
			      uint64_t dst)
{
	for (unsigned i = 0; i < rl->n; i++) {
		int64_t d = (int64_t)(rl->target[i] - (dst + rl->end[i]));
		if (d < INT32_MIN || d > INT32_MAX)
			return "relocated target out of rel32 range";
		put32(buf + rl->off[i], (int32_t)d);
	}
	return NULL;
}
