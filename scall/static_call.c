/*
 * static_call.c - static calls as a client of the patch engine: the SCALL
 * kind, boot patching per mode, updates (static_call.h).
 */
#include "static_call.h"

#include "patch.h"
#include "patch_bytes.h"
#include "patch_seam.h"

enum static_call_mode static_call_mode = STATIC_CALL_INLINE;
const char *const static_call_mode_names[] = {
    [STATIC_CALL_INLINE] = "inline",
    [STATIC_CALL_OUTLINE] = "outline",
};
struct static_call_stats static_call_stats;

/* The two targets with a form of their own. */
asm(".pushsection .text, \"ax\"\n\t"
    ".globl __static_call_nop\n\t"
    ".type __static_call_nop, @function\n"
    "__static_call_nop:\n\t"
    "ret\n\t"
    ".size __static_call_nop, . - __static_call_nop\n\t"
    ".globl __static_call_return0\n\t"
    ".type __static_call_return0, @function\n"
    "__static_call_return0:\n\t"
    "xorl %eax, %eax\n\t"
    "ret\n\t"
    ".size __static_call_return0, . - __static_call_return0\n\t"
    ".popsection");

#define CALL_LEN 5
static const uint8_t nop5[CALL_LEN] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

static struct static_call_key *key_of(const struct patch_site *r)
{
	return (struct static_call_key *)patch_site_payload(r);
}

/* A CS-prefixed call site carries one prefix byte before its call. */
static unsigned prefix_of(const struct patch_site *r)
{
	return r->flags == PATCH_SCALL_CS;
}

static bool is_tail(const struct patch_site *r)
{
	return r->flags == PATCH_SCALL_TAIL || r->flags == PATCH_SCALL_TRAMP;
}

/* Where the call (jmp) rel32 at text, of call site r, goes. */
static uintptr_t rel32_target(const struct patch_site *r, const uint8_t *text)
{
	unsigned p = prefix_of(r);
	return patch_site_addr(r) + p + CALL_LEN + (int64_t)get32(text + p + 1);
}

/* ---- the kind ---- */

static const char *scall_check(const struct patch_site *r)
{
	if (r->arg || r->arg2)
		return "static-call record has nonzero arguments";
	switch (r->flags) {
	case PATCH_SCALL_TRAMP:
		if (r->len != STATIC_CALL_TRAMP_LEN)
			return "trampoline is not 8 bytes";
		return NULL;
	case PATCH_SCALL_CALL:
	case PATCH_SCALL_TAIL:
		if (r->len != CALL_LEN)
			return "call site is not 5 bytes";
		return NULL;
	case PATCH_SCALL_CS:
		if (r->len != CALL_LEN + 1)
			return "cs call site is not 6 bytes";
		return NULL;
	}
	return "undefined static-call site flags";
}

/* The trampoline as assembled: jmp *key.early(%rip); int3; int3. */
static void tramp_original(const struct patch_site *r, uint8_t *out)
{
	uintptr_t at = patch_site_addr(r);
	uintptr_t early = patch_site_payload(r) + STATIC_CALL_KEY_EARLY;

	out[0] = 0xff;
	out[1] = 0x25;
	put32(out + 2, (int32_t)(early - (at + 6)));
	out[6] = 0xcc;
	out[7] = 0xcc;
}

static void scall_original(const struct patch_site *r, uint8_t *out)
{
	struct static_call_key *key = key_of(r);

	if (r->flags == PATCH_SCALL_TRAMP) {
		tramp_original(r, out);
		return;
	}
	/* A call (tail jmp, cs call) to the key's trampoline. */
	unsigned p = prefix_of(r);
	uintptr_t at = patch_site_addr(r) + p;
	uintptr_t tramp = key->tramp ? patch_site_addr(key->tramp) : 0;
	if (p)
		out[0] = 0x2e;
	out[p] = is_tail(r) ? 0xe9 : 0xe8;
	put32(out + p + 1, (int32_t)(tramp - (at + CALL_LEN)));
}

static bool scall_is_original(const struct patch_site *r, const uint8_t *text)
{
	uint8_t want[PATCH_MAX_LEN] = {0};

	if (r->flags == PATCH_SCALL_TRAMP) {
		tramp_original(r, want);
		return bytes_equal(text, want, r->len);
	}
	/*
	 * Trampolines are not known yet while patch_init() checks records in
	 * table order, so a call site is checked for its shape here and for
	 * its target (the trampoline of its key) by static_call_init().
	 */
	if (prefix_of(r))
		return text[0] == 0x2e && text[1] == 0xe8;
	return text[0] == (is_tail(r) ? 0xe9 : 0xe8);
}

static void scall_describe(const struct patch_site *r, char *buf, size_t n)
{
	static const char *const what[] = {"?", "trampoline", "call", "tail",
					   "cs call"};
	snprintf(buf, n, "key %s, %s", key_of(r)->name,
		 what[r->flags <= PATCH_SCALL_CS ? r->flags : 0]);
}

static const struct patch_kind scall_kind = {
    .name = "static-call",
    .check = scall_check,
    .is_original = scall_is_original,
    .original = scall_original,
    .describe = scall_describe,
};

void static_call_register_kind(void)
{
	patch_register_kind(PATCH_KIND_SCALL, &scall_kind);
}

/* ---- what a site should hold ---- */

bool static_call_site_crosses_line(const struct patch_site *r)
{
	uintptr_t at = patch_site_addr(r);
	return (at & ~63UL) != ((at + r->len - 1) & ~63UL);
}

bool static_call_site_inlined(const struct patch_site *r)
{
	return static_call_mode == STATIC_CALL_INLINE &&
	       !(key_of(r)->flags & STATIC_CALL_KEY_OUTLINE) &&
	       !static_call_site_crosses_line(r);
}

/*
 * The bytes for target func at r, with the rel32 (if any) left for the
 * engine to aim: rel->n is 1 when that rel32 must point at func. A CS
 * site keeps its prefix in every form (the live path's int3 goes there,
 * doc/patching.md): `cs call f`, `cs nopl 0(%rax,%rax)`, `cs mov $0,%eax`.
 */
static void site_bytes(const struct patch_site *r, void *func, uint8_t *out,
		       struct patch_reloc *rel)
{
	bool tail = is_tail(r), tramp = r->flags == PATCH_SCALL_TRAMP;
	unsigned p = prefix_of(r);
	uint8_t *insn = out + p;

	rel->n = 0;
	bytes_copy_all(out, (const uint8_t *)patch_site_addr(r));
	if (p)
		out[0] = 0x2e;
	if (!func) {
		if (tail) {
			insn[0] = 0xc3; /* ret; what follows is never run */
			if (tramp)
				memset(insn + 1, 0xcc, r->len - 1);
			else
				memcpy(insn + 1, nop5 + 1, CALL_LEN - 1);
		} else {
			memcpy(insn, nop5, CALL_LEN);
		}
		return;
	}
	/*
	 * Return-0 is one instruction in every form, so the live path can
	 * write it under other CPUs (patch/live.c emulates each): a call
	 * site becomes `mov $0, %eax`; a tail site or trampoline jumps to
	 * __static_call_return0 (the rel32 form below).
	 */
	if (func == (void *)__static_call_return0 && !tail) {
		insn[0] = 0xb8; /* mov $0, %eax: zero-extends, flags kept */
		put32(insn + 1, 0);
		return;
	}
	insn[0] = tail ? 0xe9 : 0xe8;
	put32(insn + 1, 0);
	if (tramp)
		memset(insn + CALL_LEN, 0xcc, r->len - CALL_LEN);
	rel->n = 1;
	rel->off[0] = (uint8_t)(p + 1);
	rel->end[0] = (uint8_t)(p + CALL_LEN);
	rel->target[0] = (uintptr_t)func;
}

bool static_call_site_expected(const struct static_call_key *key,
			       const struct patch_site *r, uint8_t *out)
{
	struct patch_reloc rel;

	if (r->flags != PATCH_SCALL_TRAMP && !static_call_site_inlined(r)) {
		scall_original(r, out);
		return false;
	}
	site_bytes(r, key->func, out, &rel);
	if (rel.n) {
		uintptr_t at = patch_site_addr(r);
		put32(out + rel.off[0],
		      (int32_t)(rel.target[0] - (at + rel.end[0])));
	}
	return true;
}

/* One tag per target, so a site already aimed at func is not rewritten. */
static uintptr_t target_tag(void *func)
{
	return func ? (uintptr_t)func : 1;
}

static void queue_site(const struct patch_site *r, void *func)
{
	uint8_t bytes[PATCH_MAX_LEN];
	struct patch_reloc rel;
	uintptr_t tag = target_tag(func);

	if (patch_tag(r) == tag) {
		patch_check(r);
		return;
	}
	site_bytes(r, func, bytes, &rel);
	patch_queue_reloc(r, bytes, &rel, tag);
	static_call_stats.site_writes++;
}

static void queue_key(struct static_call_key *key)
{
	void *func = __atomic_load_n(&key->func, __ATOMIC_RELAXED);
	unsigned inl = 0;

	queue_site(key->tramp, func);
	for (unsigned i = 0; i < key->nsites; i++) {
		const struct patch_site *r = &key->sites[i];
		if (static_call_site_inlined(r)) {
			queue_site(r, func);
			inl++;
		}
	}
	key->ninline = inl;
}

/* ---- updates ---- */

static struct seam_lock update_lock;
static volatile int batch_owner = -1; /* CPU holding update_lock */
static unsigned batch_depth;
static unsigned long batch_flags;
static bool ready; /* static_call_init() has run */

void static_call_batch_begin(void)
{
	unsigned long fl = seam_irq_save();
	int me = (int)seam_cpu();

	if (batch_owner == me) { /* nested: interrupts are already off */
		batch_depth++;
		return;
	}
	bool met = __atomic_load_n(&update_lock.held, __ATOMIC_RELAXED);
	seam_lock(&update_lock);
	static_call_stats.contended += met; /* counted under the lock */
	batch_owner = me;
	batch_depth = 1;
	batch_flags = fl;
}

void static_call_batch_end(void)
{
	if (!batch_depth || batch_owner != (int)seam_cpu())
		panic("static_call_batch_end() without a begin");
	if (--batch_depth)
		return;
	if (ready)
		patch_finish();
	unsigned long fl = batch_flags;
	batch_owner = -1;
	seam_unlock(&update_lock);
	seam_irq_restore(fl);
}

void __static_call_update(struct static_call_key *key, void *func)
{
	static_call_batch_begin();
	__atomic_store_n(&key->func, func, __ATOMIC_RELAXED);
	/* Before patching, the trampoline jumps through early. */
	__atomic_store_n(&key->early, func ? func : (void *)__static_call_nop,
			 __ATOMIC_RELEASE);
	key->updates++;
	static_call_stats.updates++;
	if (ready)
		queue_key(key);
	static_call_batch_end();
}

/* ---- boot ---- */

#define for_each_scall(r) for_each_patch_site_of(PATCH_KIND_SCALL, r)

#define for_each_key(key)                                                      \
	for_each_scall(                                                        \
	    __r) if (__r->flags ==                                             \
		     PATCH_SCALL_TRAMP) for (struct static_call_key *key =     \
						 key_of(__r);                  \
					     key; key = NULL)

static unsigned nr_keys;

unsigned static_call_nr_keys(void)
{
	return nr_keys;
}

/* Every key's trampoline, then every call site grouped under its key. */
static void find_sites(void)
{
	const struct patch_site *prev = NULL;

	for_each_scall(r)
	{
		if (r->flags != PATCH_SCALL_TRAMP)
			continue;
		struct static_call_key *key = key_of(r);
		if (key->tramp)
			patch_site_panic(r, "second trampoline for its key",
					 NULL);
		key->tramp = r;
		nr_keys++;
	}
	for_each_scall(r)
	{
		if (r->flags == PATCH_SCALL_TRAMP)
			continue;
		struct static_call_key *key = key_of(r);
		uintptr_t at = patch_site_addr(r);
		if (!key->tramp)
			patch_site_panic(r, "its key has no trampoline", NULL);
		/* Checked now that the trampolines are known. */
		if (rel32_target(r, (const uint8_t *)at) !=
		    patch_site_addr(key->tramp))
			patch_site_panic(
			    r, "is not a call to its key's trampoline", NULL);
		if (!key->sites) {
			key->sites = r;
		} else if (r != key->sites + key->nsites || prev != r - 1) {
			patch_site_panic(
			    r,
			    "its key's sites are not contiguous in "
			    "the table",
			    NULL);
		}
		key->nsites++;
		prev = r;
		static_call_stats.sites++;
		if (r->flags == PATCH_SCALL_TAIL)
			static_call_stats.tail_sites++;
		if (r->flags == PATCH_SCALL_CS)
			static_call_stats.cs_sites++;
		if (static_call_site_crosses_line(r))
			static_call_stats.crossing++;
		else if (key->flags & STATIC_CALL_KEY_OUTLINE)
			static_call_stats.pinned++;
	}
	static_call_stats.keys = nr_keys;
}

void static_call_init(enum static_call_mode mode)
{
	static_call_mode = mode;
	find_sites();
	static_call_batch_begin();
	ready = true;
	for_each_key(key)
	{
		queue_key(key);
		static_call_stats.inlined += key->ninline;
	}
	static_call_batch_end();
}

unsigned static_call_verify(const struct static_call_key *key)
{
	unsigned bad = 0;
	uint8_t want[PATCH_MAX_LEN] = {0};

	for (unsigned i = 0; i <= key->nsites; i++) {
		const struct patch_site *r =
		    i ? &key->sites[i - 1] : key->tramp;
		const uint8_t *at = (const uint8_t *)patch_site_addr(r);
		static_call_site_expected(key, r, want);
		if (bytes_equal(at, want, r->len))
			continue;
		bad++;
		char got_s[3 * PATCH_MAX_LEN + 1],
		    want_s[3 * PATCH_MAX_LEN + 1];
		for (unsigned b = 0; b < r->len; b++) {
			snprintf(got_s + 3 * b, 4, " %02x", at[b]);
			snprintf(want_s + 3 * b, 4, " %02x", want[b]);
		}
		printk("static call %s: site %016lx holds%s, wants%s\n",
		       key->name, (unsigned long)at, got_s, want_s);
	}
	return bad;
}

unsigned static_call_verify_all(void)
{
	unsigned bad = 0;
	for_each_key(key) bad += static_call_verify(key);
	return bad;
}

void static_call_report(void)
{
	const struct static_call_stats *s = &static_call_stats;

	printk("static calls: %s, %u keys, %u call sites (%u tail, %u cs), %u "
	       "inline, %u on the trampoline (%u cross a 64-byte line, %u "
	       "of keys pinned outline)\n",
	       static_call_mode_names[static_call_mode], s->keys, s->sites,
	       s->tail_sites, s->cs_sites, s->inlined, s->sites - s->inlined,
	       s->crossing, s->pinned);
}
