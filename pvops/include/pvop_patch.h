/*
 * pvop_patch.h - the pvop client's pure core: what bytes a site should
 * hold. Nothing here writes text or depends on the platform, so the host
 * tests (tests/host/test_patch.c) compile and run exactly this code; the
 * kernel side (pvops/client.c) hands the bytes to the patch engine.
 *
 * Decision rules, in order (doc/pvops.md):
 *   1. mode INDIRECT (or a site pinned to it): the original indirect call.
 *   2. the op does nothing on this backend, mode INLINE: NOPs.
 *   3. mode INLINE, a template exists, fits the slot and clobbers nothing
 *      the site does not allow: the template, relocated, then NOPs.
 *   4. otherwise: call rel32 to the backend's function, then NOPs, if that
 *      function's clobbers fit the site; else the plan fails.
 *
 * A site's bytes depend on its address only through a few fields (rel32
 * branches and calls, RIP-relative operands; the engine's decoder finds
 * them in templates). So pvop_backend_prepare() computes, once per
 * backend, a plan for every (op, mode, padding): the bytes and the list of
 * fields to aim; patching a site is then a copy and a few additions, which
 * keeps boot patching cheap and its cost proportional to the site count.
 */
#ifndef TINYPV_PVOP_PATCH_H
#define TINYPV_PVOP_PATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nops.h"
#include "patch.h"
#include "patch_bytes.h"
#include "pvops.h"

#define PVOP_MAX_SLOT PATCH_MAX_LEN

/* Computes every plan of the backend; before any patching. */
void pvop_backend_prepare(struct pvop_backend *b);

/* A site's mode and padding after its pinning flags. */
static inline enum pvop_mode pvop_site_mode(const struct patch_site *r,
					    enum pvop_mode m)
{
	if (__builtin_expect(!(r->flags & PVOP_SITE_FORCE_MASK), 1))
		return m;
	if (r->flags & PVOP_SITE_FORCE_INDIRECT)
		return PVOP_MODE_INDIRECT;
	if (r->flags & PVOP_SITE_FORCE_CALL)
		return PVOP_MODE_CALL;
	return PVOP_MODE_INLINE;
}

static inline enum patch_pad pvop_site_pad(const struct patch_site *r,
					   enum patch_pad pad)
{
	unsigned p = (r->flags & PVOP_SITE_PAD_MASK) >> PVOP_SITE_PAD_SHIFT;
	return p && p <= PATCH_PAD_NR ? (enum patch_pad)(p - 1) : pad;
}

/* A plan's bytes for a site at addr: false with *why if impossible. */
static inline bool pvop_plan_apply(const struct pvop_plan *p, uint64_t addr,
				   uint8_t *out, const char **why)
{
	if (p->kind < 0) {
		*why = p->why;
		return false;
	}
	bytes_copy_all(out, p->bytes);
	for (unsigned i = 0; i < p->rel.n; i++) {
		int64_t d =
		    (int64_t)(p->rel.target[i] - (addr + p->rel.end[i]));
		if (d != (int32_t)d) {
			*why = "target out of rel32 range from this site";
			return false;
		}
		put32(out + p->rel.off[i], (int32_t)d);
	}
	return true;
}

/*
 * What site r should hold under impl, mode and pad, its pinning flags
 * applied: out[0..PATCH_MAX_LEN). Returns the PVOP_KIND_*, or -1 with *why
 * set when the site cannot be served.
 */
int pvop_site_plan(const struct patch_site *r, const struct pvop_impl *impl,
		   enum pvop_mode mode, enum patch_pad pad, uint8_t *out,
		   const char **why);

/* The bytes of an unpatched site, as the record describes it. */
void pvop_site_original(const struct patch_site *r, uint8_t *out);

/* True if text holds an unpatched site: the indirect call, then NOPs
 * (for a saves site: with its pushes and pops around them). */
bool pvop_site_is_original(const struct patch_site *r, const uint8_t *text);

/*
 * Sites with their register saves (PATCH_KIND_PVOP_SAVES, pvop_asm.h): the
 * record spans the pushes, the op's slot and the pops. pvop_saves_parse()
 * reads which registers an unpatched site saves (false if text is not
 * such a site); pvop_saves_original() writes that unpatched form;
 * pvop_saves_plan() is what the site becomes: the inline bytes over the
 * whole range when consume is set and they clobber none of the saved
 * registers (*consumed), else the op's plan between the saves. The
 * plan's relocations are not applied (pvop_plan_apply() does that).
 */
bool pvop_saves_valid(const struct patch_site *r, uint16_t saved);
bool pvop_saves_parse(const struct patch_site *r, const uint8_t *text,
		      uint16_t *saved);
void pvop_saves_original(const struct patch_site *r, uint16_t saved,
			 uint8_t *out);
int pvop_saves_plan(const struct patch_site *r, const struct pvop_impl *impl,
		    enum pvop_mode mode, enum patch_pad pad, bool consume,
		    uint16_t saved, struct pvop_plan *out, bool *consumed,
		    const char **why);

#endif
