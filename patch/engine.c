/*
 * engine.c - the site table, its state, batches and text_poke (patch.h).
 */
#include "patch.h"
#include "patch_bytes.h"
#include "patch_seam.h"

struct patch_stats patch_stats;

const struct patch_kind *patch_kinds[PATCH_KIND_NR];
#define kinds patch_kinds
static const char *const kind_names[PATCH_KIND_NR] = {
    [0] = "none",
    [PATCH_KIND_PVOP] = "pvop",
    [PATCH_KIND_ALT] = "alternative",
    [PATCH_KIND_SCALL] = "static-call",
    [PATCH_KIND_PCALL] = "promoted-call",
    [PATCH_KIND_PVOP_SAVES] = "pvop-saves",
    [PATCH_KIND_TEST] = "test",
};

struct patch_queue patch_q; /* batch 0 until patch_init() */
#define queued_nr patch_q.n
static struct seam_lock poke_lock;

void patch_register_kind(unsigned kind, const struct patch_kind *k)
{
	if (kind == 0 || kind >= PATCH_KIND_NR)
		panic("patch: no such kind %u", kind);
	kinds[kind] = k;
}

struct patch_span patch_spans[PATCH_KIND_NR];
bool patch_spans_known;

void patch_find_spans(void)
{
	for (unsigned k = 0; k < PATCH_KIND_NR; k++)
		patch_spans[k].first = patch_spans[k].end = __patch_sites_start;
	for (const struct patch_site *r = __patch_sites_start;
	     r < __patch_sites_end; r++) {
		unsigned k = r->kind < PATCH_KIND_NR ? r->kind : 0;
		if (patch_spans[k].end == __patch_sites_start)
			patch_spans[k].first = r;
		patch_spans[k].end = r + 1;
	}
	patch_spans_known = true;
}

static unsigned site_index(const struct patch_site *r)
{
	return (unsigned)(r - __patch_sites_start);
}

#define state_of patch_state_of

static void dump_bytes(const char *what, const uint8_t *p, unsigned n)
{
	char buf[3 * PATCH_MAX_LEN + 1];
	unsigned k = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n && i < PATCH_MAX_LEN; i++)
		k += snprintf(buf + k, sizeof(buf) - k, "%s%02x", i ? " " : "",
			      p[i]);
	printk("  %s: %s\n", what, buf);
}

void patch_site_panic(const struct patch_site *r, const char *why,
		      const uint8_t *wanted)
{
	const struct patch_kind *k =
	    r->kind < PATCH_KIND_NR ? kinds[r->kind] : NULL;
	char payload[64] = "?";
	uintptr_t at = patch_site_addr(r);
	bool in_text =
	    at >= (uintptr_t)_text_start && at + r->len <= (uintptr_t)_text_end;

	if (k && k->describe)
		k->describe(r, payload, sizeof(payload));
	printk("tinypv: patch: site #%u at %016lx (kind %s, %s, %u bytes): "
	       "%s\n",
	       site_index(r), (unsigned long)at,
	       r->kind < PATCH_KIND_NR ? kind_names[r->kind] : "unknown",
	       payload, r->len, why);
	if (in_text) {
		dump_bytes("found", (const uint8_t *)at, r->len);
		if (patch_form(r) != PATCH_UNSEEN &&
		    state_of(r)->queued != patch_q.batch)
			dump_bytes("believed", state_of(r)->bytes, r->len);
	}
	if (wanted)
		dump_bytes("wanted", wanted, r->len);
	panic("patch: site %016lx: %s", (unsigned long)at, why);
}

const char *patch_record_problem(const struct patch_site *r,
				 const struct patch_site *prev)
{
	uintptr_t at = patch_site_addr(r);

	if (r->kind == 0 || r->kind >= PATCH_KIND_NR)
		return "unknown kind";
	if (!kinds[r->kind] || !kinds[r->kind]->is_original ||
	    !kinds[r->kind]->original)
		return "no client in this kernel handles its kind";
	if (r->reserved)
		return "reserved field is not zero";
	if (r->len == 0 || r->len > PATCH_MAX_LEN)
		return "length outside 1..32";
	/* The engine captures and compares whole PATCH_MAX_LEN words from a
	 * site (patch_bytes.h); text ends with the hypercall page. */
	if (at < (uintptr_t)_text_start || at + r->len > (uintptr_t)_text_end ||
	    at + PATCH_MAX_LEN > (uintptr_t)_text_end)
		return "outside kernel text";
	/*
	 * Neighbours only: the authority on overlaps, whatever the table
	 * order, is scripts/check_sites.py at build time.
	 */
	if (prev) {
		uintptr_t p = patch_site_addr(prev);
		if (at >= p && at < p + prev->len)
			return "overlaps the previous site";
	}
	return kinds[r->kind]->check ? kinds[r->kind]->check(r) : NULL;
}

/* Not privileged, and not a pvop: the engine times its own check. */
static inline uint64_t tsc(void)
{
	uint32_t lo, hi;
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

void patch_init(void)
{
	const struct patch_site *prev = NULL;
	unsigned kind = 0;
	uint64_t t = tsc();

	/* The spans are found again here: the table is declared valid now
	 * (a host test builds its table after a walk found it empty). */
	patch_find_spans();

	if ((uintptr_t)(__patch_state_end - __patch_state_start) !=
	    patch_nr_sites())
		panic("patch: state table has %lu entries for %u records",
		      (unsigned long)(__patch_state_end - __patch_state_start),
		      patch_nr_sites());
	for (const struct patch_site *r = __patch_sites_start;
	     r < __patch_sites_end; prev = r, r++) {
		struct patch_state *st = state_of(r);
		const uint8_t *text = (const uint8_t *)patch_site_addr(r);
		const char *why = patch_record_problem(r, prev);
		if (why)
			patch_site_panic(r, why, NULL);
		if (r->kind != kind) { /* kinds come in runs (patch_abi.h) */
			uint64_t now = tsc();
			patch_stats.check_ticks[kind] += now - t;
			t = now;
			kind = r->kind;
		}
		patch_stats.check_records[kind]++;
		if (st->form != PATCH_UNSEEN)
			continue; /* patch_init() again: keep what we know */
		if (!kinds[r->kind]->is_original(r, text))
			patch_site_panic(r, "does not hold its original bytes",
					 NULL);
		bytes_copy_all(st->bytes, text);
		st->form = PATCH_ORIGINAL;
	}
	patch_stats.check_ticks[kind] += tsc() - t;
	if (!patch_q.batch)
		patch_q.batch = 1; /* queueing may begin */
}

const char *patch_kind_name(unsigned kind)
{
	return kind < PATCH_KIND_NR ? kind_names[kind] : "unknown";
}

enum patch_form patch_form(const struct patch_site *r)
{
	return (enum patch_form)state_of(r)->form;
}

void patch_current(const struct patch_site *r, uint8_t *out)
{
	struct patch_state *st = state_of(r);
	if (st->form == PATCH_UNSEEN || st->queued == patch_q.batch)
		bytes_copy_all(out, (const uint8_t *)patch_site_addr(r));
	else
		bytes_copy_all(out, st->bytes);
}

/* What patch_queue()'s fast path leaves to us: every refusal, a full queue. */
void patch_reloc_panic(const struct patch_site *r, const uint8_t *bytes)
{
	patch_site_panic(r, "a relocated field is out of rel32 range here",
			 bytes);
}

void patch_queue_slow(const struct patch_site *r, const uint8_t *bytes,
		      const struct patch_reloc *rel, uintptr_t tag)
{
	struct patch_state *st = state_of(r);
	const uint8_t *text = (const uint8_t *)patch_site_addr(r);

	if (st->form == PATCH_UNSEEN || !patch_q.batch)
		patch_site_panic(r, "queued before patch_init()", bytes);
	if (st->queued == patch_q.batch)
		patch_site_panic(r, "queued twice in one batch", bytes);
	if (!bytes_equal(text, st->bytes, r->len))
		patch_site_panic(r,
				 st->form == PATCH_ORIGINAL
				     ? "no longer holds its original bytes"
				     : "holds bytes the engine did not write",
				 bytes);
	if (!bytes)
		return; /* patch_check(): nothing to queue */
	patch_finish(); /* the queue was full */
	patch_queue_reloc(r, bytes, rel, tag);
}

void patch_queue_original(const struct patch_site *r)
{
	struct patch_state *st = state_of(r);
	uint8_t orig[PATCH_MAX_LEN];

	if (st->form == PATCH_ORIGINAL) {
		/* Already as assembled: check it still is, write nothing. */
		patch_check(r);
		st->tag = 0;
		patch_stats.skipped++;
		return;
	}
	patch_kinds[r->kind]->original(r, orig);
	patch_queue_reloc(r, orig, NULL, 0);
	st->form = PATCH_ORIGINAL; /* once patch_finish() has run */
}

bool patch_live_write(void);
const char *patch_live_why_not(void);

/* The stop path: park the others (if any), write, serialise, resume. */
static void write_stopped(void)
{
	bool others = seam_others_online();
	seam_others_stop();
	uintptr_t alias = seam_poke_enter() - (uintptr_t)_text_start;
	unsigned n = queued_nr, bytes = 0;
	for (const struct patch_queued *q = patch_q.q; q < patch_q.q + n; q++) {
		unsigned len = q->len;
		bytes_copy((uint8_t *)(alias + q->at), q->bytes, len);
		bytes += len;
	}
	seam_poke_leave();
	seam_serialise();
	seam_others_resume();
	patch_stats.bytes += bytes;
	patch_stats.stop_batches += others;
}

void patch_finish(void)
{
	if (!queued_nr)
		return;
	unsigned long fl = seam_irq_save();
	seam_lock(&poke_lock);
	/* One CPU (boot): the plain batch; else live unless told or unable. */
	if (!((seam_others_online() || patch_live_force) &&
	      patch_live_path != PATCH_LIVE_STOP && patch_live_write()))
		write_stopped();
	patch_stats.writes += queued_nr;
	patch_stats.batches++;
	queued_nr = 0;
	if (++patch_q.batch == 0) /* 0 means "before patch_init()" */
		patch_q.batch = 1;
	seam_unlock(&poke_lock);
	seam_irq_restore(fl);
}

static struct seam_lock update_lock;

unsigned long patch_begin(void)
{
	unsigned long fl = seam_irq_save();
	seam_lock(&update_lock); /* serves syncs while it spins */
	return fl;
}

void patch_end(unsigned long fl)
{
	patch_finish();
	seam_unlock(&update_lock);
	seam_irq_restore(fl);
}

void text_poke(void *addr, const void *src, unsigned len)
{
	uintptr_t a = (uintptr_t)addr;

	if (a < (uintptr_t)_text_start || a + len > (uintptr_t)_text_end ||
	    a + len < a)
		panic("text_poke: %p+%u is not inside kernel text", addr, len);
	unsigned long fl = seam_irq_save();
	seam_lock(&poke_lock);
	seam_others_stop();
	uintptr_t alias = seam_poke_enter() + (a - (uintptr_t)_text_start);
	memcpy((void *)alias, src, len);
	seam_poke_leave();
	seam_serialise();
	seam_others_resume();
	patch_stats.stop_batches += seam_others_online();
	patch_stats.writes++;
	patch_stats.bytes += len;
	patch_stats.batches++;
	seam_unlock(&poke_lock);
	seam_irq_restore(fl);
	if (memcmp(addr, src, len))
		panic("text_poke: %p still differs after the write", addr);
}
