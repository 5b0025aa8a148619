/*
 * live.c - writing a batch while other CPUs run the text (patch.h, "the
 * live path"; doc/patching.md explains the protocol and its rules).
 *
 * patch_finish() hands a batch here when another CPU is online. Each
 * queued site is classified once, before any byte changes:
 *   SKIP   its bytes do not change;
 *   STORE  only the rel32 of a call/jmp changes and lies inside one
 *          naturally aligned 8-byte word: one 8-byte store, no int3;
 *   INT3   int3 over its first byte, then the tail, then the first byte;
 *   CS     the same writes for a `cs call` staying a `cs call`; a CPU
 *          that meets the int3 (over the prefix) resumes after it.
 * A batch is only written live if every changing site is one instruction
 * before and after (nothing can be executing in its middle) and its new
 * instruction is one the #BP handler can stand in for (call rel32, jmp
 * rel32/rel8, a NOP; maybe CS-prefixed); otherwise the caller parks the
 * others (the stop path).
 *
 * The passes (at most three sync rounds; a pass with nothing to do, and
 * its round, is skipped):
 *   1. int3 over the first byte of every INT3/CS site;     sync
 *   2. every changing tail, every single store;             sync
 *   3. the new first byte of every INT3/CS site;            sync
 * The batch stays published (sorted by address, for patch_live_bp()'s
 * binary search) until the last round is over: a CPU inside #BP for it
 * has interrupts off and so acknowledges only after it has left.
 */
#include "insn.h"
#include "nops.h"
#include "patch.h"
#include "patch_bytes.h"
#include "patch_seam.h"

enum patch_live_path patch_live_path = PATCH_LIVE_STORE;
const char *const patch_live_names[3] = {"store", "int3", "stop"};
bool patch_live_force;
void (*patch_live_hook)(unsigned pass);

enum how { SKIP, STORE, INT3, CS };
enum emul { EM_CALL, EM_JMP, EM_NOP, EM_RET, EM_JMP_MEM, EM_ZERO_EAX };

struct live_site {
	uintptr_t at;
	uintptr_t target; /* EM_CALL / EM_JMP: where the new insn goes */
	const uint8_t *bytes;
	uint8_t len, how, emul;
	uint8_t off; /* STORE: offset of the rel32 in the site */
};

static struct live_site plan[PATCH_QUEUE_MAX];
/* The int3 sites of the batch in flight, sorted by address. */
static struct live_site inflight[PATCH_QUEUE_MAX];
static volatile unsigned inflight_n;
static volatile unsigned phase; /* the pass being written, 0 = none */
static volatile unsigned writer_cpu;
static volatile unsigned active; /* writers inside patch_live_write() */
/*
 * A sequence count around the two changes of inflight[]: odd while the
 * writer publishes a batch, and again while it retires it; even while
 * the published batch (or none) is stable. Readers on other CPUs (the
 * #BP handler, patch_live_iret()) use what they read only if the count
 * was even and the same before and after (view_begin(), view_ok()).
 */
static volatile uint64_t live_seq;

static uint32_t get_rel32(const uint8_t *p)
{
	return (uint32_t)get32(p);
}

/*
 * True if b[0..len) is, for a CPU, one instruction: exactly one that
 * fills the site, or an unconditional jmp/ret followed by bytes no CPU
 * reaches (the padding of static-call forms: `ret; int3...`). Either
 * way no CPU can be stopped at a boundary inside the site.
 */
static bool one_insn(const uint8_t *b, unsigned len)
{
	struct insn in;
	unsigned l = insn_decode(b, len, 0, &in);

	if (l == len)
		return true;
	if (!l || in.prefixes > 1 || in.map != 0)
		return false;
	return in.opcode == 0xc3 || in.opcode == 0xe9 || in.opcode == 0xeb ||
	       (in.opcode == 0xff && in.has_modrm &&
		((in.modrm >> 3) & 7) == 4); /* jmp *r/m */
}

/*
 * What the #BP handler would do in place of new[0..len): false if it
 * cannot (not one instruction it knows, as one_insn() counts them).
 */
static bool emulation(uintptr_t at, const uint8_t *b, unsigned len,
		      struct live_site *s)
{
	if (!one_insn(b, len))
		return false;
	unsigned q = b[0] == 0x2e ? 1 : 0; /* cs prefix, any length */
	if (b[q] == 0xc3) {
		s->emul = EM_RET;
		return true;
	}
	if (b[q] == 0xe9 && len >= q + 5) {
		s->emul = EM_JMP;
		s->target = at + q + 5 + (int32_t)get_rel32(b + q + 1);
		return true;
	}
	if (b[q] == 0xff && b[q + 1] == 0x25 && len >= q + 6) {
		/* jmp *disp32(%rip): the pointer is read when emulating */
		s->emul = EM_JMP_MEM;
		s->target = at + q + 6 + (int32_t)get_rel32(b + q + 2);
		return true;
	}
	unsigned p = (len == 6 && b[0] == 0x2e) ? 1 : 0; /* cs prefix */
	if (len == 5 + p && (b[p] == 0xe8 || b[p] == 0xe9)) {
		s->emul = b[p] == 0xe8 ? EM_CALL : EM_JMP;
		s->target = at + len + (int32_t)get_rel32(b + p + 1);
		return true;
	}
	/* mov $0, %eax (cs prefix allowed): a static call's return-0 form */
	if (len == 5 + q && b[q] == 0xb8 && get_rel32(b + q + 1) == 0) {
		s->emul = EM_ZERO_EAX;
		return true;
	}
	if (len == 2 && b[0] == 0xeb) {
		s->emul = EM_JMP;
		s->target = at + 2 + (int8_t)b[1];
		return true;
	}
	if (nop_insn_len(b, len) == len && b[0] != 0xeb) {
		s->emul = EM_NOP;
		return true;
	}
	return false;
}

/* Classifies the queue into plan[]; NULL if it can go live, else why. */
static const char *classify(const struct patch_queued *q, unsigned n,
			    bool store)
{
	for (unsigned i = 0; i < n; i++) {
		struct live_site *s = &plan[i];
		const uint8_t *old = (const uint8_t *)q[i].at;
		const uint8_t *b = q[i].bytes;
		unsigned len = q[i].len;
		struct insn in;

		s->at = q[i].at;
		s->bytes = b;
		s->len = (uint8_t)len;
		if (bytes_equal(old, b, len)) {
			s->how = SKIP;
			continue;
		}
		(void)in;
		if (!one_insn(old, len))
			return "a site is not one instruction now";
		if (!emulation(s->at, b, len, s))
			return "a site's new bytes are not one call, jmp or "
			       "NOP";
		unsigned p =
		    (len == 6 && b[0] == 0x2e && old[0] == 0x2e) ? 1 : 0;
		/* Only the rel32 of a call/jmp changes (a trampoline's int3
		 * padding after it stays as it is). */
		bool rel_only =
		    len >= 5 + p && (b[p] == 0xe8 || b[p] == 0xe9) &&
		    old[p] == b[p] && (p == 0 || old[0] == b[0]) &&
		    bytes_equal(old + p + 5, b + p + 5, len - p - 5);
		uintptr_t rel = s->at + p + 1;
		if (store && rel_only && (rel & 7) <= 4) {
			s->how = STORE;
			s->off = (uint8_t)(p + 1);
		} else if (p && old[1] == 0xe8 && b[1] == 0xe8) {
			s->how = CS;
			s->off = (rel & 7) <= 4 ? 2 : 0; /* one-store rel32 */
		} else {
			s->how = INT3;
		}
	}
	return NULL;
}

static void sift_down(unsigned root, unsigned n)
{
	struct live_site v = inflight[root];

	for (unsigned c; (c = 2 * root + 1) < n; root = c) {
		if (c + 1 < n && inflight[c + 1].at > inflight[c].at)
			c++;
		if (inflight[c].at <= v.at)
			break;
		inflight[root] = inflight[c];
	}
	inflight[root] = v;
}

static void heapsort_inflight(unsigned k)
{
	for (unsigned i = k / 2; i-- > 0;)
		sift_down(i, k);
	for (unsigned end = k; end > 1; end--) {
		struct live_site top = inflight[0];
		inflight[0] = inflight[end - 1];
		inflight[end - 1] = top;
		sift_down(0, end - 1);
	}
}

/*
 * inflight[] := the INT3/CS sites of plan[], sorted by address. Insertion
 * sort, which costs next to nothing on the nearly sorted queues most
 * clients make, until it has moved 4 entries per site; then a heapsort,
 * n log n whatever the order (a static-call batch queues each key's
 * trampoline and then its sites, two address ranges interleaved: insertion
 * sort alone made a 256-key batch cost 1.5 M instructions).
 */
static unsigned publish(unsigned n)
{
	unsigned k = 0, moved = 0;

	for (unsigned i = 0; i < n; i++) {
		if (plan[i].how != INT3 && plan[i].how != CS)
			continue;
		unsigned j = k++;
		if (moved > 4 * n) {
			inflight[j] = plan[i];
			continue;
		}
		while (j && inflight[j - 1].at > plan[i].at) {
			inflight[j] = inflight[j - 1];
			j--;
			moved++;
		}
		inflight[j] = plan[i];
	}
	if (moved > 4 * n)
		heapsort_inflight(k);
	return k;
}

static void sync_round(unsigned pass)
{
	if (patch_live_hook)
		patch_live_hook(pass);
	patch_stats.sync_ipis += seam_sync_others();
	patch_stats.sync_rounds++;
	patch_stats.last_rounds++;
}

/*
 * The 8-byte word holding a site's rel32, with the new rel32 merged in,
 * stored whole through the alias. Read back from text as it is now, so a
 * neighbour's bytes written earlier in this batch are kept.
 */
static void single_store(uintptr_t alias, const struct live_site *s)
{
	uintptr_t w = (s->at + s->off) & ~(uintptr_t)7;
	uint64_t v = __atomic_load_n((const uint64_t *)w, __ATOMIC_RELAXED);
	uint8_t *vb = (uint8_t *)&v;

	for (unsigned i = 0; i < 4; i++)
		vb[s->at + s->off + i - w] = s->bytes[s->off + i];
	__atomic_store_n((uint64_t *)(alias + w), v, __ATOMIC_RELAXED);
}

/*
 * A locked write of the byte it holds: changes nothing a CPU can see,
 * but is a write to the page for QEMU (see drop_stale()).
 */
static void touch(uintptr_t p)
{
	__atomic_fetch_or((volatile uint8_t *)p, 0, __ATOMIC_RELAXED);
}

/*
 * After the last round, before the batch is retired: one no-op locked
 * write to the first byte of every site that changed (and to the call
 * after a CS prefix, where a resumed CPU starts). On a CPU it changes
 * nothing. Under QEMU's multi-threaded TCG (7.2) a vCPU that translated
 * a block from a site's bytes while another vCPU wrote them can register
 * the block after the write, and keep running the old bytes (an int3, or
 * the old call) until the page is written again: this is that write,
 * and QEMU drops every block holding those bytes. No CPU can translate
 * a mid-batch byte after it: each acknowledged the last round, between
 * blocks, after the last write. stale_int3() is the net for a stale
 * block run between the last round and here.
 */
static void drop_stale(uintptr_t alias, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (plan[i].how == SKIP)
			continue;
		touch(alias + plan[i].at);
		if (plan[i].bytes[0] == 0x2e) /* a CS site: STORE or CS */
			touch(alias + plan[i].at + 1);
	}
}

const char *patch_live_why_not(void)
{
	return classify(patch_q.q, patch_q.n,
			patch_live_path == PATCH_LIVE_STORE);
}

/*
 * Writes the queue live, or returns false (nothing written) if a site
 * cannot be. Called by patch_finish() with the poke lock held and
 * interrupts off. patch_live_why_not() says why not.
 */
bool patch_live_write(void)
{
	unsigned n = patch_q.n, k, stores = 0, tails = 0;

	if (classify(patch_q.q, n, patch_live_path == PATCH_LIVE_STORE))
		return false;
	if (__atomic_fetch_add(&active, 1, __ATOMIC_ACQ_REL))
		patch_stats.interleaved++; /* the lock failed us: counted */
	writer_cpu = seam_cpu();
	/* inflight[] changes only while live_seq is odd (view_begin()). */
	__atomic_fetch_add(&live_seq, 1, __ATOMIC_SEQ_CST);
	k = publish(n);
	for (unsigned i = 0; i < n; i++)
		stores += plan[i].how == STORE;
	for (unsigned i = 0; i < k; i++)
		tails +=
		    !bytes_equal((const uint8_t *)inflight[i].at + 1,
				 inflight[i].bytes + 1, inflight[i].len - 1u);
	patch_stats.last_rounds = 0;
	__atomic_store_n(&inflight_n, k, __ATOMIC_RELEASE);
	__atomic_fetch_add(&live_seq, 1, __ATOMIC_SEQ_CST);

	uintptr_t alias = seam_poke_enter() - (uintptr_t)_text_start;
	if (k) {
		__atomic_store_n(&phase, 1, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < k; i++)
			*(volatile uint8_t *)(alias + inflight[i].at) = 0xcc;
		sync_round(1);
	}
	if (tails || stores) {
		__atomic_store_n(&phase, 2, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < k; i++)
			if (inflight[i].how == CS && inflight[i].off)
				single_store(alias, &inflight[i]);
			else if (inflight[i].len > 1)
				bytes_copy(
				    (uint8_t *)(alias + inflight[i].at + 1),
				    inflight[i].bytes + 1,
				    inflight[i].len - 1u);
		for (unsigned i = 0; i < n; i++)
			if (plan[i].how == STORE)
				single_store(alias, &plan[i]);
		__atomic_store_n(&phase, 3, __ATOMIC_RELEASE);
		sync_round(2);
	}
	if (k) {
		__atomic_store_n(&phase, 4, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < k; i++)
			*(volatile uint8_t *)(alias + inflight[i].at) =
			    inflight[i].bytes[0];
		sync_round(3);
	}
	drop_stale(alias, n);
	seam_poke_leave();
	seam_serialise();
	__atomic_fetch_add(&live_seq, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&phase, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&inflight_n, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&live_seq, 1, __ATOMIC_SEQ_CST);

	unsigned bytes = 0;
	for (unsigned i = 0; i < n; i++)
		if (plan[i].how != SKIP)
			bytes += plan[i].len;
	patch_stats.bytes += bytes;
	patch_stats.int3_sites += k;
	patch_stats.single_stores += stores;
	patch_stats.live_batches++;
	if (patch_stats.last_rounds > patch_stats.max_rounds)
		patch_stats.max_rounds = patch_stats.last_rounds;
	__atomic_fetch_sub(&active, 1, __ATOMIC_ACQ_REL);
	return true;
}

void patch_live_report(uintptr_t at)
{
	printk("patch: no live batch owns the int3 at %016lx (it holds %02x "
	       "now; batch in flight: %u int3 sites, pass %u, writer cpu %u)\n",
	       (unsigned long)at, *(const volatile uint8_t *)at, inflight_n,
	       phase, writer_cpu);
}

static uint64_t view_begin(void)
{
	uint64_t seq;

	while ((seq = __atomic_load_n(&live_seq, __ATOMIC_ACQUIRE)) & 1)
		asm volatile("pause");
	return seq;
}

static bool view_ok(uint64_t seq)
{
	/* The reads of inflight[] before, the count after. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&live_seq, __ATOMIC_ACQUIRE) == seq;
}

/*
 * The in-flight site with the greatest address <= at, copied to *out;
 * false if none. Binary search over inflight[] as it is now: callers
 * validate the copy against live_seq (see patch_live_write()).
 */
static bool lookup_le(uintptr_t at, struct live_site *out)
{
	unsigned lo = 0, hi = __atomic_load_n(&inflight_n, __ATOMIC_ACQUIRE);

	if (hi > PATCH_QUEUE_MAX)
		return false; /* a torn count: the seqlock retries */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (inflight[mid].at <= at)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return false;
	*out = inflight[lo - 1];
	return true;
}

/*
 * How often in a row one CPU may find QEMU running a stale translation
 * of the same site, with no batch begun or ended in between, before that
 * is reported as the bug it is: each time the handler has already
 * dropped the translation (stale_int3()), so a second time is rare and a
 * thousandth never seen. (Over a stress run one site goes stale hundreds
 * of times, each time after a new batch: that is not in a row.)
 */
#define STALE_LIMIT 1000
#define STALE_CPUS 64
static struct {
	uintptr_t at;
	uint64_t seq;
	unsigned n;
} stale_last[STALE_CPUS];

/*
 * An int3 no batch owns, at the first byte of a recorded site that no
 * longer holds one: this CPU ran a copy of the site fetched before the
 * head was restored. A CPU cannot, architecturally: it acknowledges the
 * last round only after its #BP is over (interrupts are off in it), and
 * after serialising. QEMU's multi-threaded TCG can: a vCPU translates a
 * block while another writes the page, and if the write lands between
 * the translator's read and its registering the block on the page, the
 * block keeps the old bytes and nothing ever drops it (QEMU 7.2; seen in
 * the static-call stress as every caller looping on a stale int3 for
 * good, doc/patching.md). So drop it: a locked no-op write to the site's
 * first byte through the alias is a write to a page with translated
 * code, which makes QEMU discard every block holding that byte (on a CPU
 * it changes nothing). Then go back and run the bytes there now, as
 * Linux's kprobes do for a removed breakpoint. A real breakpoint still
 * holds its int3 and is reported.
 */
static bool stale_int3(uint64_t *rip, uint64_t seq)
{
	uintptr_t at = (uintptr_t)*rip - 1;

	if (at < (uintptr_t)_text_start || at >= (uintptr_t)_text_end ||
	    *(const volatile uint8_t *)at == 0xcc)
		return false;
	for (const struct patch_site *r = __patch_sites_start;
	     r < __patch_sites_end; r++)
		if (patch_site_addr(r) == at)
			goto stale;
	return false;
stale:;
	unsigned me = seam_cpu() % STALE_CPUS;
	if (stale_last[me].at == at && stale_last[me].seq == seq) {
		if (++stale_last[me].n >= STALE_LIMIT)
			panic("patch: cpu %u ran a stale copy of the site at "
			      "%016lx %u times in a row (it holds %02x; "
			      "dropping the copy did not help)",
			      seam_cpu(), (unsigned long)at, stale_last[me].n,
			      *(const volatile uint8_t *)at);
	} else {
		stale_last[me].at = at;
		stale_last[me].seq = seq;
		stale_last[me].n = 1;
	}
	uintptr_t alias = seam_poke_enter(); /* nests if in it already */
	touch(alias + (at - (uintptr_t)_text_start));
	seam_poke_leave();
	seam_serialise();
	*rip = at;
	__atomic_fetch_add(&patch_stats.bp_stale, 1, __ATOMIC_RELAXED);
	return true;
}

/*
 * An interrupt or exception is about to return to rip in kernel text.
 * If rip lies inside (not at the start of) a site the batch in flight is
 * rewriting, and the batch has not finished writing tails, return to the
 * site's first byte instead. Only the CS path leaves a CPU inside a site
 * (resumed after the prefix); if it is then interrupted there, before
 * the call ran, it may acknowledge the next batch's first round while
 * still there, and run the call while that batch's pass 2 rewrites it.
 * From the first byte it meets the int3 (or, once pass 3 has begun, the
 * whole new instruction) instead.
 */
void patch_live_iret(uint64_t *rip)
{
	struct live_site s;
	uintptr_t at = (uintptr_t)*rip;

	if (!__atomic_load_n(&inflight_n, __ATOMIC_ACQUIRE))
		return;
	/* The writer runs a site only from the test hook, between its own
	 * passes: nothing is written under it. */
	if (seam_cpu() == writer_cpu &&
	    __atomic_load_n(&active, __ATOMIC_ACQUIRE))
		return;
	for (;;) {
		uint64_t seq = view_begin();
		unsigned ph = __atomic_load_n(&phase, __ATOMIC_ACQUIRE);
		bool inside = lookup_le(at - 1, &s) && at < s.at + s.len &&
			      (ph == 1 || ph == 2);
		if (!view_ok(seq))
			continue;
		if (inside) {
			*rip = s.at;
			__atomic_fetch_add(&patch_stats.iret_rewound, 1,
					   __ATOMIC_RELAXED);
		}
		return;
	}
}

bool patch_live_bp(uint64_t *rip, uint64_t *rsp, uint64_t *rax)
{
	struct live_site copy, *s = &copy;
	uintptr_t at = (uintptr_t)*rip - 1;

	/*
	 * Decide only on a view no batch began or ended during: an int3 of
	 * the last batch (a stale one, see stale_int3()) may be looked up
	 * while the next batch publishes its sites.
	 */
	uint64_t seq;
	for (;;) {
		seq = view_begin();
		bool found = lookup_le(at, s) && s->at == at;
		if (!view_ok(seq))
			continue;
		if (found)
			break;
		if (stale_int3(rip, seq))
			return true;
		if (view_ok(seq))
			return false; /* a real breakpoint */
	}
	if (s->how == CS) {
		/*
		 * Resume at the call after the prefix, but only once its new
		 * rel32 is written: resumed earlier, this CPU could take the
		 * next sync's IPI right after iret, still at the call, and run
		 * it while pass 2 writes the rel32. So wait for pass 2 to end
		 * (acknowledging syncs meanwhile, or the writer never gets
		 * there; round 3 cannot end while we are in #BP), then fetch
		 * afresh. Interrupted at the call after iret, patch_live_iret()
		 * sees to the next batch. The writer itself runs a site only
		 * from the test hook, in order: no wait.
		 */
		if (seam_cpu() != writer_cpu) {
			uint64_t spins = 0;
			while (__atomic_load_n(&live_seq, __ATOMIC_ACQUIRE) ==
				   seq &&
			       __atomic_load_n(&phase, __ATOMIC_ACQUIRE) < 3) {
				if (++spins > SEAM_SPIN_LIMIT)
					panic("patch: cpu %u: the writer did "
					      "not write the tails of a "
					      "batch",
					      seam_cpu());
				seam_sync_serve();
				asm volatile("pause");
			}
			seam_serialise();
		}
		*rip = at + 1;
		__atomic_fetch_add(&patch_stats.bp_cs, 1, __ATOMIC_RELAXED);
		return true;
	}
	switch (s->emul) {
	case EM_CALL:
		*rsp -= 8; /* into the #BP entry's stack gap */
		*(uint64_t *)*rsp = s->at + s->len;
		*rip = s->target;
		break;
	case EM_JMP:
		*rip = s->target;
		break;
	case EM_RET:
		*rip = *(const uint64_t *)*rsp;
		*rsp += 8;
		break;
	case EM_JMP_MEM:
		*rip = *(const volatile uint64_t *)s->target;
		break;
	case EM_ZERO_EAX: /* writes eax, zero-extended; no flags */
		*rax = 0;
		*rip = s->at + s->len;
		break;
	default:
		*rip = s->at + s->len;
		break;
	}
	__atomic_fetch_add(&patch_stats.bp_emulated, 1, __ATOMIC_RELAXED);
	return true;
}
