/*
 * patch.h - the code-patching engine: one table of sites of every kind,
 * what each site holds now, and the only way kernel text changes.
 *
 * A client (pvops/ and alt/ today; static calls and promoted calls on
 * the roadmap) registers its kind, then decides what a site should
 * hold; only the engine decides how and when the bytes change:
 *
 *   patch_register_kind(PATCH_KIND_PVOP, &pvop_kind);
 *   patch_init();                          // check every record once
 *   for each site r of my kind:
 *           patch_queue(r, bytes);         // validated against its state
 *   patch_finish();                        // one batch: all writes
 *
 * Site state. For each record the engine keeps, in a writable table sized
 * by the linker, what it believes the site holds:
 *   ORIGINAL  as assembled (recognised by the kind's is_original() in
 *             patch_init(), then captured);
 *   WRITTEN   the engine's last write;
 * and whether a write to it is queued in the current batch.
 * Before queueing, the bytes in text must equal that belief; anything else
 * (a stale table, a stray write) panics naming the site, kind, payload and
 * bytes. Any site can be re-patched any number of times, to any bytes its
 * client asks for; patch_queue_original() puts the assembled form back.
 *
 * Batches. patch_finish() takes the lock, switches this CPU to the private
 * poke mapping once, copies every queued write through it, switches back
 * (which drops the alias from the TLB) and serialises once. A full queue
 * is finished early, so a batch may be any size. That is the single-CPU
 * path (boot). With other CPUs online the same batch goes through the
 * live path (patch/live.c): int3 over the first byte of every changing
 * site, sync every CPU, the tails, sync, the first bytes, sync - at most
 * three sync rounds whatever the batch size - while #BP on another CPU
 * emulates the site's new instruction; or one 8-byte store and one sync
 * for a call whose rel32 alone changes (patchlive=, doc/patching.md).
 *
 * Records and kinds: patch_abi.h. Instruction decoding and relocation of
 * replacement bytes: insn.h and patch_reloc_*() below.
 */
#ifndef TINYPV_PATCH_H
#define TINYPV_PATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "patch_abi.h"
#include "patch_bytes.h"

/*
 * Relocation of replacement bytes (patch/reloc.c): scan once, apply per
 * site. A scan decodes src[0..len) and records every rel32 branch and
 * RIP-relative disp32 whose target lies outside the bytes; a rel8 branch
 * leaving them cannot be relocated and fails the scan.
 */
#define PATCH_RELOC_MAX 4
struct patch_reloc {
	uint8_t n;
	uint8_t off[PATCH_RELOC_MAX]; /* where each 32-bit field sits */
	uint8_t end[PATCH_RELOC_MAX]; /* end of its instruction */
	uint64_t target[PATCH_RELOC_MAX];
};
/* NULL on success, else why the bytes cannot be moved. */
const char *patch_reloc_scan(const uint8_t *src, unsigned len,
			     uint64_t src_addr, unsigned insn_flags,
			     struct patch_reloc *out);
/* Aims every recorded field of buf (to run at dst) at its target. */
const char *patch_reloc_apply(const struct patch_reloc *rl, uint8_t *buf,
			      uint64_t dst);

/* What a kind tells the engine about its records. */
struct patch_kind {
	const char *name;
	/* NULL if the kind-specific fields are valid, else what is wrong. */
	const char *(*check)(const struct patch_site *r);
	/* True if text (r->len bytes) holds the site as assembled. */
	bool (*is_original)(const struct patch_site *r, const uint8_t *text);
	/* Writes the site's assembled bytes (after is_original() accepted
	 * them once) into out[0..PATCH_MAX_LEN). */
	void (*original)(const struct patch_site *r, uint8_t *out);
	/* The payload in words, for messages ("op irq_disable"). */
	void (*describe)(const struct patch_site *r, char *buf, size_t n);
};

enum patch_form {
	PATCH_UNSEEN,	/* not looked at yet: must hold its original bytes */
	PATCH_ORIGINAL, /* checked: holds its original bytes */
	PATCH_WRITTEN,	/* holds the engine's last write */
};

/*
 * Per-site state, in the linker-sized table .patch.state (bss). bytes is
 * the engine's last write (WRITTEN), or the write pending in this batch
 * (queued); the original bytes are the kind's to regenerate.
 */
struct patch_state {
	uint8_t bytes[PATCH_MAX_LEN];
	uint8_t form; /* enum patch_form */
	uint8_t pad[3];
	uint32_t queued; /* the batch (patch_q.batch) it is queued in */
	/*
	 * The client's word: set with each write (patch_queue_reloc()), so
	 * a client can tell, without reading text, that a site already got
	 * the plan it is about to ask for (patch_tag()).
	 */
	uintptr_t tag;
	uint64_t spare[2]; /* a power-of-two size: one shift to index */
};
#define PATCH_STATE_SIZE 64
_Static_assert(sizeof(struct patch_state) == PATCH_STATE_SIZE,
	       "state size is known to the linker script");

/* Writes the engine has made, for reports and tests. */
struct patch_stats {
	uint64_t writes;  /* site writes (and raw text_poke writes) */
	uint64_t bytes;	  /* bytes written */
	uint64_t batches; /* poke-mapping round trips */
	uint64_t skipped; /* requests for the form a site already held */
	/* patch_init(): records of each kind, and the TSC ticks (guest
	 * instructions under icount) spent checking them. */
	unsigned check_records[PATCH_KIND_NR];
	uint64_t check_ticks[PATCH_KIND_NR];
	/* The live path (patch/live.c, doc/patching.md "The live path"). */
	uint64_t live_batches; /* batches written while others ran */
	uint64_t stop_batches; /* batches (and text_poke()s) that parked them */
	uint64_t sync_rounds;  /* sync rounds of live batches */
	uint64_t sync_ipis;    /* IPIs those rounds sent */
	uint64_t int3_sites;   /* sites written under an int3 */
	uint64_t single_stores; /* sites written by one 8-byte store */
	uint64_t bp_emulated;	/* #BPs that emulated a site's new insn */
	uint64_t bp_cs;		/* #BPs on a CS prefix: resumed after it */
	uint64_t bp_stale;	/* #BPs on a site's old int3: run again */
	uint64_t iret_rewound;	/* returns into a site moved to its start */
	uint64_t interleaved;	/* writes begun while another was in flight */
	unsigned last_rounds;	/* sync rounds of the latest live batch */
	unsigned max_rounds;	/* the most any live batch took */
};
extern struct patch_stats patch_stats;

/*
 * ---- the live path (patch/live.c) ----
 * How patch_finish() writes while other CPUs run kernel text:
 *   STORE  the default: a site whose only change is the rel32 of a call
 *          or jmp lying inside one aligned 8-byte word is written by one
 *          8-byte store (relies on the assumption doc/patching.md names);
 *          every other site goes through the int3 protocol;
 *   INT3   every site through the int3 protocol (patchlive=int3);
 *   STOP   park the other CPUs instead (patchlive=stop; the only way for
 *          a batch with a site that is not one instruction before and
 *          after, e.g. pvop templates, whatever the path).
 */
enum patch_live_path { PATCH_LIVE_STORE, PATCH_LIVE_INT3, PATCH_LIVE_STOP };
extern enum patch_live_path patch_live_path;
extern const char *const patch_live_names[3]; /* "store", "int3", "stop" */
/*
 * Called by the kernel's #BP handler before anything else: if rip - 1
 * is a site of the batch in flight, moves the interrupted context on as
 * if the site's new instruction had run (rsp: a call's push lands in the
 * entry's stack gap; rax: the return-0 form's mov) and returns true;
 * false means a real breakpoint.
 */
bool patch_live_bp(uint64_t *rip, uint64_t *rsp, uint64_t *rax);
/* Says why a #BP at at + 1 was no site of the batch in flight. */
void patch_live_report(uintptr_t at);
/*
 * Called by the kernel's trap exit before it returns to kernel rip:
 * moves rip back to the start of a site the batch in flight is
 * rewriting, if rip lies inside it (the CS path's resume point).
 */
void patch_live_iret(uint64_t *rip);
/*
 * Updates from any CPU, serialised: patch_begin() takes the update lock
 * (interrupts off, serving syncs while it spins), patch_end() finishes
 * the batch and lets the next updater in. Clients on the boot CPU that
 * never race another updater may use patch_queue()/patch_finish() alone.
 */
unsigned long patch_begin(void);
void patch_end(unsigned long flags);
/* For tests: the live path even with no other CPU online, and a hook
 * called after each pass's writes, before its sync (pass 1, 2, 3). */
extern bool patch_live_force;
extern void (*patch_live_hook)(unsigned pass);

void patch_register_kind(unsigned kind, const struct patch_kind *k);
/* "pvop", "static-call", ... */
const char *patch_kind_name(unsigned kind);

/*
 * Checks every record (kind, fields, bounds, overlaps, original bytes),
 * captures the original bytes; panics on error.
 */
void patch_init(void);

/* What patch_init() would refuse in record r (prev: the record before it,
 * or NULL), or NULL if nothing. */
const char *patch_record_problem(const struct patch_site *r,
				 const struct patch_site *prev);

extern const struct patch_site __patch_sites_start[], __patch_sites_end[];
static inline unsigned patch_nr_sites(void)
{
	return (unsigned)(__patch_sites_end - __patch_sites_start);
}

/*
 * Where the records of one kind lie in the table: every record of the
 * kind is in [first, end) (other kinds may be interleaved there, so a
 * walk still checks r->kind). A client walks its span instead of the
 * whole table: static calls keep their many records in a subsection of
 * their own (patch_abi.h), which the pvop walk then never visits.
 */
struct patch_span {
	const struct patch_site *first, *end;
};
extern struct patch_span patch_spans[PATCH_KIND_NR];
extern bool patch_spans_known;
void patch_find_spans(void);
static inline const struct patch_span *patch_kind_span(unsigned kind)
{
	if (__builtin_expect(!patch_spans_known, 0))
		patch_find_spans();
	return &patch_spans[kind];
}
#define for_each_patch_site_of(kind_, r)                                       \
	for (const struct patch_site *r = patch_kind_span(kind_)->first,       \
				     *__end_##r = patch_kind_span(kind_)->end; \
	     r < __end_##r; r++)                                               \
		if (r->kind == (kind_))

/* What the engine believes r holds now (into out), and in which form. */
void patch_current(const struct patch_site *r, uint8_t *out);
enum patch_form patch_form(const struct patch_site *r);

/*
 * Queue a write of r->len bytes to site r: bytes[0..PATCH_MAX_LEN) (the
 * tail ignored), with every field in rel (may be NULL) aimed from the
 * site. tag is stored with the write (patch_tag()): a client that keeps
 * one tag per distinct request skips sites that already hold it, so the
 * engine does not compare new bytes with old. Panics if the site does not
 * hold what the engine believes it holds, if it is already queued in this
 * batch, or if a relocated field is out of range. (Inline below: boot runs
 * it for every site.)
 */
static inline void patch_queue_reloc(const struct patch_site *r,
				     const uint8_t *bytes,
				     const struct patch_reloc *rel,
				     uintptr_t tag);
static inline void patch_queue(const struct patch_site *r,
			       const uint8_t *bytes);
/* The tag of the site's last write, or 0 before any. */
static inline uintptr_t patch_tag(const struct patch_site *r);
/*
 * For a site the client leaves as it is (its tag says it already holds
 * what the client wants): still check it holds what the engine believes,
 * so a stray write is refused even when nothing is rewritten.
 */
static inline void patch_check(const struct patch_site *r);
/* Queue putting back the site's assembled bytes. */
void patch_queue_original(const struct patch_site *r);
/* Write everything queued (one poke-mapping round trip). */
void patch_finish(void);

/*
 * Raw write of len bytes of kernel text, outside any site's state: for
 * tests and fault injection. A write over a recorded site makes the next
 * patch of that site panic, which is the point of inject=corrupt-site.
 */
void text_poke(void *addr, const void *src, unsigned len);

/* ---- the fast path of patch_queue(); nothing else should touch these ---- */
#define PATCH_QUEUE_MAX 1024
struct patch_queued {
	uintptr_t at;	      /* the site's first byte */
	const uint8_t *bytes; /* its state's staged bytes */
	unsigned len;
};
struct patch_queue {
	unsigned n;
	uint32_t batch; /* this batch's number; never 0 */
	struct patch_queued q[PATCH_QUEUE_MAX];
};
extern struct patch_queue patch_q;
extern const struct patch_kind *patch_kinds[PATCH_KIND_NR];
/* Sized by the linker script: one struct patch_state per record. */
extern struct patch_state __patch_state_start[], __patch_state_end[];
void patch_queue_slow(const struct patch_site *r, const uint8_t *bytes,
		      const struct patch_reloc *rel, uintptr_t tag);

static inline struct patch_state *patch_state_of(const struct patch_site *r)
{
	return &__patch_state_start[r - __patch_sites_start];
}

void patch_reloc_panic(const struct patch_site *r, const uint8_t *bytes)
    __attribute__((noreturn));

static inline void patch_queue_reloc(const struct patch_site *r,
				     const uint8_t *bytes,
				     const struct patch_reloc *rel,
				     uintptr_t tag)
{
	struct patch_state *st = patch_state_of(r);
	uintptr_t at = patch_site_addr(r);

	/*
	 * Refusals and a full queue, out of line. Before patch_init() the
	 * batch number is 0, which every state's queued field also is, so
	 * nothing is queued until every record has been checked.
	 */
	if (__builtin_expect((st->queued == patch_q.batch) |
				 (patch_q.n == PATCH_QUEUE_MAX),
			     0) ||
	    __builtin_expect(
		!bytes_equal((const uint8_t *)at, st->bytes, r->len), 0)) {
		patch_queue_slow(r, bytes, rel, tag);
		return;
	}
	/* Staged in the state; the belief it replaces was just checked. */
	bytes_copy_all(st->bytes, bytes);
	if (rel && rel->n) {
		unsigned i = 0;
		do {
			int64_t d =
			    (int64_t)(rel->target[i] - (at + rel->end[i]));
			if (__builtin_expect(d != (int32_t)d, 0))
				patch_reloc_panic(r, bytes);
			put32(st->bytes + rel->off[i], (int32_t)d);
		} while (++i < rel->n);
	}
	st->tag = tag;
	st->form = PATCH_WRITTEN; /* once patch_finish() has run */
	st->queued = patch_q.batch;
	struct patch_queued *q = &patch_q.q[patch_q.n++];
	q->at = at;
	q->bytes = st->bytes;
	q->len = r->len;
}

static inline void patch_queue(const struct patch_site *r, const uint8_t *bytes)
{
	patch_queue_reloc(r, bytes, NULL, 0);
}

static inline uintptr_t patch_tag(const struct patch_site *r)
{
	return patch_state_of(r)->tag;
}

static inline void patch_check(const struct patch_site *r)
{
	struct patch_state *st = patch_state_of(r);
	if (__builtin_expect(
		st->queued == patch_q.batch ||
		    !bytes_equal((const uint8_t *)patch_site_addr(r), st->bytes,
				 r->len),
		0))
		patch_queue_slow(r, NULL, NULL, 0);
}

/* Panics naming the site, kind, payload and the bytes it holds. */
void patch_site_panic(const struct patch_site *r, const char *why,
		      const uint8_t *wanted) __attribute__((noreturn));

#endif
