/*
 * alt.c - CPU-feature alternatives as a client of the patch engine: the
 * alternative site kind and the boot batch that picks each site's form
 * (alternative.h).
 */
#include "alternative.h"
#include "nops.h"
#include "patch_bytes.h"
#include "patch_seam.h"

struct alt_stats alt_stats;

/* ---- the kind ---- */

static const char *alt_check(const struct patch_site *r)
{
	const struct alt_desc *d = alt_desc_of(r);

	if (r->flags < 1 || r->flags > ALT_MAX_CHOICES)
		return "number of replacements (flags) is not 1 or 2";
	if (r->arg >= CPUFEATURE_NR || r->arg2 >= CPUFEATURE_NR)
		return "feature number out of range";
	if (r->flags == 1 && (r->arg2 || d->len[1]))
		return "second replacement given to a one-replacement site";
	if (d->reserved)
		return "descriptor's reserved byte is not zero";
	if (d->orig_len > r->len)
		return "original longer than the site";
	for (unsigned i = 0; i < r->flags; i++)
		if (d->len[i] > r->len)
			return "replacement longer than the site";
	return NULL;
}

/*
 * Form c of site r (0: the original, i + 1: replacement i), relocated to
 * the site and padded with NOPs to its length; NULL or why it cannot be.
 */
static const char *form_bytes(const struct patch_site *r, unsigned c,
			      uint8_t *out, struct patch_reloc *rel)
{
	const struct alt_desc *d = alt_desc_of(r);
	const uint8_t *src = c ? alt_repl_bytes(d, c - 1) : alt_orig_bytes(d);
	unsigned n = c ? d->len[c - 1] : d->orig_len;
	const char *why = patch_reloc_scan(src, n, (uintptr_t)src, 0, rel);

	if (why)
		return why;
	memset(out, 0, PATCH_MAX_LEN);
	memcpy(out, src, n);
	nops_fill(out + n, r->len - n, PATCH_PAD_SINGLE);
	return NULL;
}

void alt_form_bytes(const struct patch_site *r, unsigned c, uint8_t *out)
{
	struct patch_reloc rel;
	const char *why = form_bytes(r, c, out, &rel);

	if (why)
		patch_site_panic(r, why, NULL);
	why = patch_reloc_apply(&rel, out, patch_site_addr(r));
	if (why)
		patch_site_panic(r, why, out);
}

/*
 * The copy of the original, aimed from the site, then NOPs of any kind.
 * Most originals hold nothing to relocate, so the copy is compared as it
 * is first; only when that differs is it decoded and relocated.
 */
static bool alt_is_original(const struct patch_site *r, const uint8_t *text)
{
	const struct alt_desc *d = alt_desc_of(r);
	struct patch_reloc rel;
	uint8_t want[PATCH_MAX_LEN];

	if (!nops_valid(text + d->orig_len, r->len - d->orig_len))
		return false;
	if (!memcmp(text, alt_orig_bytes(d), d->orig_len))
		return true;
	if (form_bytes(r, 0, want, &rel) ||
	    patch_reloc_apply(&rel, want, patch_site_addr(r)))
		return false;
	return !memcmp(text, want, d->orig_len);
}

static void alt_original(const struct patch_site *r, uint8_t *out)
{
	alt_form_bytes(r, 0, out);
}

static void alt_describe(const struct patch_site *r, char *buf, size_t n)
{
	const char *a = cpu_feature_name(r->arg);
	const char *b = r->flags > 1 ? cpu_feature_name(r->arg2) : NULL;

	if (r->flags > 1)
		snprintf(buf, n, "features %s/%s", a ? a : "?", b ? b : "?");
	else
		snprintf(buf, n, "feature %s", a ? a : "?");
}

static const struct patch_kind alt_kind = {
    .name = "alternative",
    .check = alt_check,
    .is_original = alt_is_original,
    .original = alt_original,
    .describe = alt_describe,
};

void alt_register_kind(void)
{
	patch_register_kind(PATCH_KIND_ALT, &alt_kind);
}

/* ---- patching ---- */

unsigned alt_choice(const struct patch_site *r)
{
	if (r->flags > 1 && cpu_has(r->arg2))
		return 2;
	return cpu_has(r->arg) ? 1 : 0;
}

/* A write's tag: which form it was, never 0 (the "no write yet" tag). */
#define ALT_TAG(c) ((uintptr_t)(c) + 1)

void alt_apply_all(bool keep)
{
	uint64_t writes = patch_stats.writes;

	alt_stats = (struct alt_stats){.disabled = keep};
	for_each_alt_site(r)
	{
		unsigned c = keep ? 0 : alt_choice(r);
		uint8_t bytes[PATCH_MAX_LEN];
		struct patch_reloc rel;

		alt_stats.sites++;
		if (c)
			alt_stats.patched++;
		else
			alt_stats.kept++;
		if (!c) {
			patch_queue_original(r);
			continue;
		}
		if (patch_tag(r) == ALT_TAG(c)) {
			patch_check(r);
			continue;
		}
		const char *why = form_bytes(r, c, bytes, &rel);
		if (why)
			patch_site_panic(r, why, NULL);
		patch_queue_reloc(r, bytes, &rel, ALT_TAG(c));
	}
	patch_finish();
	alt_stats.writes = (unsigned)(patch_stats.writes - writes);
}

/* One line per distinct (features, form) pair, in table order. */
void alt_report(void)
{
	printk("alternatives: %u sites, %u patched, %u as assembled%s, %u "
	       "writes\n",
	       alt_stats.sites, alt_stats.patched, alt_stats.kept,
	       alt_stats.disabled ? " (noalternatives)" : "", alt_stats.writes);
	for_each_alt_site(r)
	{
		bool seen = false;
		for_each_alt_site(q)
		{
			if (q == r)
				break;
			if (q->arg == r->arg && q->arg2 == r->arg2 &&
			    q->flags == r->flags)
				seen = true;
		}
		if (seen)
			continue;
		unsigned n = 0, got[ALT_MAX_CHOICES + 1] = {0};
		for_each_alt_site(q)
		{
			if (q->arg != r->arg || q->arg2 != r->arg2 ||
			    q->flags != r->flags)
				continue;
			n++;
			got[alt_stats.disabled ? 0 : alt_choice(q)]++;
		}
		char what[64];
		alt_describe(r, what, sizeof(what));
		if (r->flags > 1)
			printk("alternative %-28s sites %3u: original %u, "
			       "first %u, second %u\n",
			       what, n, got[0], got[1], got[2]);
		else
			printk("alternative %-28s sites %3u: original %u, "
			       "replacement %u\n",
			       what, n, got[0], got[1]);
	}
}
