/*
 * test_xmodify.c - cross-modifying a live call site on real silicon.
 *
 * Issue 11 asks whether the single-store static-call update is safe: one
 * CPU executes `call rel32` while another rewrites the rel32 with one
 * store, with no int3 and no serialisation of the executing CPU. The seed
 * 000 mail rests it on an assumption ("intra-cacheline call destination
 * writes are atomic with respect to instruction decoder reads") that no
 * manual states. This program asks the build machine's CPU, in user space:
 *
 *   - a code region is mapped twice from one memfd: executable (read+exec)
 *     where a caller thread runs it, writable (read+write) where a writer
 *     thread stores into it, as the kernel writes its text through a
 *     private poke alias; `--map=rwx` uses one read+write+exec mapping;
 *   - it is filled with int3 and sits in the middle of a 4 GiB PROT_NONE
 *     reservation, so a call whose rel32 is anything but one of the three
 *     valid targets lands on int3 (SIGTRAP) or on PROT_NONE (SIGSEGV): no
 *     rel32 can reach other code of this process;
 *   - the site is a `call rel32` built by the engine's relocator
 *     (patch_reloc_scan() decodes an assembled call, patch_reloc_apply()
 *     aims it from the site, as patch_queue_reloc() does), checked with
 *     insn_decode();
 *   - each target increments its own counter (and a count of changes when
 *     the previous call went elsewhere) and returns; the three rel32
 *     values differ in each of their three low bytes, so any mix of old
 *     and new bytes is none of them, and every mix lands inside the int3
 *     fill (they all lie between the smallest and the largest target);
 *   - the caller (pinned to one CPU) calls the site in a counted loop; the
 *     writer (pinned to another) rewrites the rel32 `writes` times among
 *     the three targets; after each store it waits until the caller has
 *     reached the target just written, then stores the next one after a
 *     pseudo-random delay, so every store lands at an arbitrary point of a
 *     caller that is running (not descheduled by a loaded host);
 *   - a signal at a wrong target is counted and the stray call undone in
 *     the handler (RIP = the return address on the stack, RSP += 8): not
 *     fatal; the landing address is logged.
 *
 * Cases (the site's position in a 64-byte line):
 *   a  rel32 at line+0x19..0x1c, inside the aligned word 0x18..0x1f;
 *      written by one aligned 8-byte store of that word (the single-store
 *      update path of issue 11);
 *   a4 rel32 at line+0x18..0x1b: an aligned 4-byte word, 4-byte store;
 *   c  rel32 at line+0x1e..0x21: crosses the 8-byte word boundary at 0x20
 *      but not the line; one unaligned 4-byte store;
 *   b  rel32 at line+0x3e..0x41: crosses the 64-byte line (two bytes in
 *      each); one unaligned 4-byte store (a split store);
 *   b1 rel32 at line+0x3f..0x42: the same with one byte before the line
 *      boundary and three after. (A 3+1 split is not run: byte 3 of the
 *      three rel32 values is the same, so such a tear would be invisible.)
 *   p  as b, at the end of a 4 KiB page: two bytes in each page.
 *
 * What make test asserts, and why (doc/static-calls.md, "What silicon
 * says"): in every case, the calls made equal the targets' counts plus
 * the wrong targets caught (nothing lost), the writer's writes all
 * happened, the caller reached every write's target and changed target
 * exactly once per write (never back to older bytes); a self-test case proves
 * the detector catches a torn rel32. In cases a and a4 it also asserts 0
 * wrong targets and 0 signals, because the kernel's single-store path relies on
 * exactly that: if this CPU ever shows otherwise, that is a real finding
 * against the path (turn it off: the boot switch), and the test must say
 * so loudly. Cases b, b1, p and c are the ones the engine never updates with
 * one store; their counts are reported, not asserted.
 *
 * Usage: test_xmodify [--writes=N] [--map=alias|rwx] [--bench]
 *   default: KTAP, 500,000 writes per case (a few seconds in all here);
 *   --bench: also "bench: xmodify ..." lines for scripts/bench.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "insn.h"
#include "ktap.h"
#include "patch.h"

/*
 * An assembled call (to just past itself, so its target lies outside the
 * 5 bytes the relocator scans): the relocator finds its rel32 by decoding.
 */
asm(".pushsection .rodata\n"
    ".globl xm_call_tpl\n"
    "xm_call_tpl: call 1f\n"
    "\tint3\n"
    "1:\n"
    ".popsection\n");
extern const uint8_t xm_call_tpl[];

#define GiB (1ull << 30)
#define RESERVE (4 * GiB + (64u << 20))
#define CODE_SIZE (1u << 20)
#define LOOP_CALLS 4096 /* calls per run of the generated loop */
#define NTARGET 3
#define FREE_WAIT_EVERY 1024 /* free pace: writes between waits */
#define LAST 3		     /* counter slots: the target called last, */
#define CHANGES 4	     /* how often it differed from the one before */
#define WAIT_SECONDS 20 /* per wait for the caller: generous, loaded host */
#define LOG_MAX 8

/*
 * The rel32 of each target: bytes 0..2 all differ between targets (byte 3
 * is 0), so a mix of bytes from two values is neither; every mix lies in
 * [0x10040, 0x380c0], inside the int3 fill.
 */
static const int32_t target_rel[NTARGET] = {0x00010040, 0x00024080, 0x000380c0};

struct xm_case {
	const char *name;
	unsigned rel_off; /* rel32's offset in its 64-byte line */
	int word_store;	  /* 1: aligned 8-byte store, 0: 4-byte store */
	int page_end;	  /* in the page's last line (else its fifth) */
	const char *what;
};

static const struct xm_case cases[] = {
    {"a", 0x19, 1, 0, "rel32 inside one aligned 8-byte word, 8-byte store"},
    {"a4", 0x18, 0, 0, "rel32 is one aligned 4-byte word, 4-byte store"},
    {"c", 0x1e, 0, 0, "rel32 crosses an 8-byte word, not a line, 4-byte store"},
    {"b", 0x3e, 0, 0, "rel32 crosses a 64-byte line (2+2 bytes), 4-byte store"},
    {"b1", 0x3f, 0, 0,
     "rel32 crosses a 64-byte line (1+3 bytes), 4-byte store"},
    {"p", 0x3e, 0, 1, "rel32 crosses a 4 KiB page (2+2 bytes), 4-byte store"},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* One run: what the caller and the writer share, and what was seen. */
struct xm_run {
	const struct xm_case *c;
	uint8_t *x;	   /* the code region as executed */
	uint8_t *w;	   /* the same region as written */
	uint64_t site;	   /* the call's address (executable view) */
	uint64_t ret_addr; /* site + 5 */
	uint64_t target[NTARGET];
	volatile uint64_t *counter; /* NTARGET counters, a line apart */
	uint64_t images[NTARGET];   /* what the writer stores, per target */
	uint8_t *store_at;	    /* writable view address of the store */
	unsigned long writes;
	int lockstep; /* wait for the caller after every write */
	/* results */
	_Atomic int caller_ready, writer_done, caller_gone;
	uint64_t calls, wrong, sig[3], unrecoverable;
	unsigned long writes_done, waits_timed_out;
	uint64_t log[LOG_MAX];
	unsigned nlog;
	int caller_cpu, writer_cpu, caller_pinned, writer_pinned;
	sigjmp_buf jb;
};

static struct xm_run *volatile cur;
static pthread_t caller_thread;
static uint8_t *reserve_base;

static int sig_index(int sig)
{
	return sig == SIGTRAP ? 0 : sig == SIGSEGV ? 1 : 2;
}

/*
 * A call that went astray: it pushed the site's return address and landed
 * on int3 (SIGTRAP, RIP one past it), on PROT_NONE (SIGSEGV at RIP) or on
 * something undecodable (SIGILL). Undo the call and count it. Anything
 * else is no stray call of ours: re-raise it as the crash it is.
 */
static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	greg_t *g = uc->uc_mcontext.gregs;
	struct xm_run *r = cur;
	uint64_t rip = (uint64_t)g[REG_RIP], rsp = (uint64_t)g[REG_RSP];
	uint64_t landed = sig == SIGTRAP ? rip - 1 : rip;

	if (r && pthread_equal(pthread_self(), caller_thread) &&
	    rip >= (uint64_t)reserve_base &&
	    rip < (uint64_t)reserve_base + RESERVE) {
		if (*(uint64_t *)rsp == r->ret_addr &&
		    (sig != SIGSEGV || (uint64_t)si->si_addr == rip)) {
			r->wrong++;
			r->sig[sig_index(sig)]++;
			if (r->nlog < LOG_MAX)
				r->log[r->nlog++] = landed;
			g[REG_RIP] = (greg_t)r->ret_addr;
			g[REG_RSP] = (greg_t)(rsp + 8);
			return;
		}
		r->sig[sig_index(sig)]++;
		r->unrecoverable++;
		siglongjmp(r->jb, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pins the calling thread to cpu (none if cpu < 0); 0 if it did not. */
static int pin(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return !pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

/*
 * The site's 5 bytes for a target, the way the engine makes a direct
 * call: the assembled call decoded and its rel32 re-aimed from the site.
 * NULL on success, else why not.
 */
static const char *site_call(uint64_t site, uint64_t target, uint8_t *out)
{
	struct patch_reloc rl;
	const char *why = patch_reloc_scan(
	    xm_call_tpl, 5, (uint64_t)(uintptr_t)xm_call_tpl, 0, &rl);
	if (why)
		return why;
	if (rl.n != 1 || rl.off[0] != 1 || rl.end[0] != 5)
		return "the assembled call has no rel32 at +1";
	memcpy(out, xm_call_tpl, 5);
	rl.target[0] = target;
	why = patch_reloc_apply(&rl, out, site);
	if (why)
		return why;
	struct insn in;
	if (insn_decode(out, 5, 0, &in) != 5 || in.opcode != 0xe8 ||
	    in.rel_size != 4 ||
	    site + 5 + (uint64_t)(int64_t)get32(out + 1) != target)
		return "the built call does not decode as call target";
	return NULL;
}

/*
 * Lays out one case in the region (through the writable view w; x is the
 * executable view): the counted loop around the site, the three targets.
 * Returns the loop's entry in x, or NULL with *why.
 */
static uint8_t *build(struct xm_run *r, unsigned case_no, const char **why)
{
	const struct xm_case *c = r->c;
	/*
	 * Each case in its own page (p's rel32 ends in the next one), the
	 * site's rel32 at c->rel_off in the page's fifth or last line.
	 */
	size_t site_off = 4096 * (case_no + 1) +
			  (c->page_end ? 4096 - 64 : 64 * 4) + c->rel_off - 1;
	uint8_t *w = r->w, *x = r->x;
	memset(w, 0xcc, CODE_SIZE);
	r->site = (uint64_t)(uintptr_t)(x + site_off);
	r->ret_addr = r->site + 5;

	/* push %r12; mov $LOOP_CALLS,%r12; S: call; dec %r12; jnz S; ... */
	uint8_t *p = w + site_off - 9;
	static const uint8_t head[] = {0x41, 0x54, 0x49, 0xc7, 0xc4};
	memcpy(p, head, sizeof(head));
	put32(p + 5, LOOP_CALLS);
	uint8_t *t = w + site_off + 5;
	t[0] = 0x49, t[1] = 0xff, t[2] = 0xcc; /* dec %r12 */
	t[3] = 0x75, t[4] = (uint8_t)(-10);    /* jnz S */
	t[5] = 0x41, t[6] = 0x5c, t[7] = 0xc3; /* pop %r12; ret */

	for (int i = 0; i < NTARGET; i++) {
		r->target[i] = r->ret_addr + (uint64_t)(int64_t)target_rel[i];
		uint8_t *tw = w + (r->target[i] - (uint64_t)(uintptr_t)x);
		/*
		 * cmpb $i,last; je 1f; movb $i,last; incq changes;
		 * 1: incq counter[i]; ret -- 31 bytes, under the 0x40
		 * between any valid rel32 and the nearest mix.
		 */
		uint64_t tx = r->target[i];
		uint64_t last = (uint64_t)(uintptr_t)&r->counter[8 * LAST];
		uint64_t chg = (uint64_t)(uintptr_t)&r->counter[8 * CHANGES];
		uint64_t cnt = (uint64_t)(uintptr_t)&r->counter[8 * i];
		tw[0] = 0x80, tw[1] = 0x3d;
		put32(tw + 2, (int32_t)(last - (tx + 7)));
		tw[6] = (uint8_t)i;
		tw[7] = 0x74, tw[8] = 14;
		tw[9] = 0xc6, tw[10] = 0x05;
		put32(tw + 11, (int32_t)(last - (tx + 16)));
		tw[15] = (uint8_t)i;
		tw[16] = 0x48, tw[17] = 0xff, tw[18] = 0x05;
		put32(tw + 19, (int32_t)(chg - (tx + 23)));
		tw[23] = 0x48, tw[24] = 0xff, tw[25] = 0x05;
		put32(tw + 26, (int32_t)(cnt - (tx + 30)));
		tw[30] = 0xc3;
		r->counter[8 * i] = 0;
	}
	r->counter[8 * LAST] = 0; /* the site first calls target 0 */
	r->counter[8 * CHANGES] = 0;
	uint8_t call[NTARGET][5];
	for (int i = 0; i < NTARGET; i++)
		if ((*why = site_call(r->site, r->target[i], call[i])))
			return NULL;
	memcpy(w + site_off, call[0], 5);

	/* What the writer stores for each target. */
	size_t rel = site_off + 1;
	if (c->word_store) {
		size_t word = rel & ~(size_t)7;
		if (((rel + 3) & ~(size_t)7) != word) {
			*why = "case a's rel32 is not inside one word";
			return NULL;
		}
		for (int i = 0; i < NTARGET; i++) {
			uint8_t img[8];
			memcpy(img, w + word, 8);
			memcpy(img + (rel - word), call[i] + 1, 4);
			memcpy(&r->images[i], img, 8);
		}
		r->store_at = w + word;
	} else {
		for (int i = 0; i < NTARGET; i++)
			r->images[i] = (uint32_t)get32(call[i] + 1);
		r->store_at = w + rel;
	}
	*why = NULL;
	return x + site_off - 9;
}

static void store(struct xm_run *r, int i)
{
	if (r->c->word_store)
		asm volatile("movq %1, %0"
			     : "=m"(*(uint64_t *)r->store_at)
			     : "r"(r->images[i])
			     : "memory");
	else
		asm volatile("movl %1, %0"
			     : "=m"(*(uint32_t *)r->store_at)
			     : "r"((uint32_t)r->images[i])
			     : "memory");
}

static void *writer(void *arg)
{
	struct xm_run *r = arg;
	r->writer_pinned = pin(r->writer_cpu);
	while (!atomic_load(&r->caller_ready))
		asm volatile("pause");
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ r->writes;
	for (unsigned long n = 1; n <= r->writes; n++) {
		if (atomic_load(&r->caller_gone))
			break;
		int t = (int)(n % NTARGET);
		uint64_t before = r->counter[8 * t];
		/*
		 * The caller is running (it reached the last target): after a
		 * pseudo-random delay, mostly short, now and then longer, the
		 * store lands at an arbitrary point of its loop.
		 */
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		unsigned d = (unsigned)(rng & 0xff);
		if (((rng >> 8) & 15) == 0)
			d <<= 4;
		for (unsigned k = 0; k < d; k++)
			asm volatile("");
		store(r, t);
		r->writes_done = n;
		if (!r->lockstep && n % FREE_WAIT_EVERY && n != r->writes)
			continue;
		/* Until the caller has reached the target just written. */
		uint64_t deadline = now_ns() + WAIT_SECONDS * 1000000000ull;
		unsigned spins = 0;
		while (r->counter[8 * t] == before &&
		       !atomic_load(&r->caller_gone)) {
			if (++spins % 4096 == 0) {
				if (now_ns() > deadline) {
					r->waits_timed_out++;
					break;
				}
				sched_yield();
			}
			asm volatile("pause");
		}
	}
	atomic_store(&r->writer_done, 1);
	return NULL;
}

/* The caller: the generated loop, run until the writer is done. */
static void call_until_done(struct xm_run *r, void (*loop)(void))
{
	caller_thread = pthread_self();
	r->caller_pinned = pin(r->caller_cpu);
	cur = r;
	if (sigsetjmp(r->jb, 1)) {
		cur = NULL;
		return; /* unrecoverable signal: counted, run abandoned */
	}
	/* The code was just written: serialise once before running it. */
	unsigned a = 0, b, c = 0, d;
	asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
	atomic_store(&r->caller_ready, 1);
	do {
		loop();
		r->calls += LOOP_CALLS;
	} while (!atomic_load(&r->writer_done));
	cur = NULL;
}

static struct {
	uint8_t *x, *w;
	volatile uint64_t *counters;
	int rwx;
} region;

/* The reservation, the two views of the code, the counters page. */
static const char *map_region(int rwx)
{
	uint8_t *res = mmap(NULL, RESERVE, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return "mmap of the 4 GiB PROT_NONE reservation failed";
	reserve_base = res;
	/* The code 2 GiB in, so no rel32 from it leaves the reservation. */
	uint8_t *x =
	    (uint8_t *)(((uintptr_t)res + 2 * GiB) & ~(uintptr_t)0xfffff);
	uint8_t *cnt = x - 2 * 4096;
	if (mmap(cnt, 4096, PROT_READ | PROT_WRITE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != cnt)
		return "mmap of the counters page failed";
	region.counters = (volatile uint64_t *)cnt;
	region.rwx = rwx;
	if (rwx) {
		if (mmap(x, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != x)
			return "mmap of the RWX code region failed";
		region.x = region.w = x;
		return NULL;
	}
	int fd = memfd_create("tinypv-xmodify", 0);
	if (fd < 0 || ftruncate(fd, CODE_SIZE))
		return "memfd_create/ftruncate failed";
	uint8_t *w =
	    mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED || mmap(x, CODE_SIZE, PROT_READ | PROT_EXEC,
				    MAP_FIXED | MAP_SHARED, fd, 0) != x)
		return "mmap of the memfd's two views failed";
	close(fd);
	region.x = x;
	region.w = w;
	return NULL;
}

static char cpu_model[256] = "unknown";

static void read_cpu_model(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	int family = -1, model = -1, stepping = -1, hv = 0;
	char name[200] = "unknown";
	while (f && fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');
		if (!v)
			continue;
		v += 2;
		if (!strncmp(line, "model name", 10) &&
		    !strcmp(name, "unknown"))
			snprintf(name, sizeof(name), "%.*s",
				 (int)strcspn(v, "\n"), v);
		else if (!strncmp(line, "cpu family", 10) && family < 0)
			family = atoi(v);
		else if (!strncmp(line, "model\t", 6) && model < 0)
			model = atoi(v);
		else if (!strncmp(line, "stepping", 8) && stepping < 0)
			stepping = atoi(v);
		else if (!strncmp(line, "flags", 5) && strstr(v, " hypervisor"))
			hv = 1;
	}
	if (f)
		fclose(f);
	snprintf(cpu_model, sizeof(cpu_model),
		 "%s (family %d model %d stepping %d%s)", name, family, model,
		 stepping, hv ? ", under a hypervisor" : "");
}

/* The first two CPUs this process may run on, or -1. */
static void pick_cpus(int *a, int *b)
{
	cpu_set_t s;
	*a = *b = -1;
	if (sched_getaffinity(0, sizeof(s), &s))
		return;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &s)) {
			if (*a < 0)
				*a = i;
			else if (*b < 0)
				*b = i;
		}
}

/* Runs one case; returns NULL or why it could not run. */
static const char *run_case(struct xm_run *r, unsigned case_no,
			    unsigned long writes, int lockstep, int cpu_a,
			    int cpu_b)
{
	const char *why;
	memset(r, 0, sizeof(*r));
	r->c = &cases[case_no];
	r->x = region.x;
	r->w = region.w;
	r->counter = region.counters;
	r->writes = writes;
	r->lockstep = lockstep;
	r->caller_cpu = cpu_b;
	r->writer_cpu = cpu_a;
	uint8_t *entry = build(r, case_no, &why);
	if (!entry)
		return why;
	pthread_t wt;
	if (pthread_create(&wt, NULL, writer, r))
		return "pthread_create failed";
	call_until_done(r, (void (*)(void))(uintptr_t)entry);
	/* After an unrecoverable signal: stop the writer, and free its wait. */
	atomic_store(&r->caller_ready, 1);
	atomic_store(&r->caller_gone, 1);
	pthread_join(wt, NULL);
	return NULL;
}

static uint64_t counted(const struct xm_run *r)
{
	uint64_t s = 0;
	for (int i = 0; i < NTARGET; i++)
		s += r->counter[8 * i];
	return s;
}

/* Which target each byte of a landed rel32 came from, e.g. "0:t1 1:t1 2:t2". */
static void describe_landing(const struct xm_run *r, uint64_t at, char *buf,
			     size_t n)
{
	int32_t rel = (int32_t)(at - r->ret_addr);
	size_t k = (size_t)snprintf(buf, n, "rel32 %#x, bytes from", rel);
	for (int b = 0; b < 3 && k < n; b++) {
		uint8_t v = (uint8_t)(rel >> (8 * b));
		int from = -1;
		for (int i = 0; i < NTARGET; i++)
			if ((uint8_t)(target_rel[i] >> (8 * b)) == v)
				from = i;
		if (from < 0)
			k += (size_t)snprintf(buf + k, n - k, " %d:none", b);
		else
			k += (size_t)snprintf(buf + k, n - k, " %d:t%d", b,
					      from);
	}
}

static void report(const struct xm_run *r, int bench)
{
	const struct xm_case *c = r->c;
	printf("# case %s, %s pace (%s; site %#lx, rel32 at line+%#x), %s "
	       "mapping, "
	       "writer on cpu %d%s, caller on cpu %d%s: %lu calls, %lu writes, "
	       "%lu target changes seen by the caller, %lu wrong targets "
	       "(SIGTRAP %lu, SIGSEGV %lu, SIGILL %lu), %lu unrecoverable; "
	       "per target %lu %lu %lu\n",
	       c->name, r->lockstep ? "lockstep" : "free", c->what,
	       (unsigned long)r->site, c->rel_off,
	       region.rwx ? "one RWX" : "RW+RX memfd alias", r->writer_cpu,
	       r->writer_pinned ? " (pinned)" : " (not pinned)", r->caller_cpu,
	       r->caller_pinned ? " (pinned)" : " (not pinned)",
	       (unsigned long)r->calls, r->writes_done,
	       (unsigned long)r->counter[8 * CHANGES], (unsigned long)r->wrong,
	       (unsigned long)r->sig[0], (unsigned long)r->sig[1],
	       (unsigned long)r->sig[2], (unsigned long)r->unrecoverable,
	       (unsigned long)r->counter[0], (unsigned long)r->counter[8],
	       (unsigned long)r->counter[16]);
	for (unsigned i = 0; i < r->nlog; i++) {
		char d[128];
		describe_landing(r, r->log[i], d, sizeof(d));
		printf("#   wrong target %u at %#lx: %s\n", i,
		       (unsigned long)r->log[i], d);
	}
	if (bench)
		printf("bench: xmodify case=%s pace=%s map=%s rel_off=%#x "
		       "store=%s "
		       "calls=%lu writes=%lu changes=%lu wrong=%lu sigtrap=%lu "
		       "sigsegv=%lu sigill=%lu unrecoverable=%lu "
		       "cpu=\"%s\"\n",
		       c->name, r->lockstep ? "lockstep" : "free",
		       region.rwx ? "rwx" : "alias", c->rel_off,
		       c->word_store ? "8-byte" : "4-byte",
		       (unsigned long)r->calls, r->writes_done,
		       (unsigned long)r->counter[8 * CHANGES],
		       (unsigned long)r->wrong, (unsigned long)r->sig[0],
		       (unsigned long)r->sig[1], (unsigned long)r->sig[2],
		       (unsigned long)r->unrecoverable, cpu_model);
	fflush(stdout);
}

/* Cases a and a4: what the single-store update path relies on. */
static int in_one_word(const struct xm_case *c)
{
	return (c->rel_off & ~7u) == ((c->rel_off + 3) & ~7u);
}

/* Case checks common to a, b, c: nothing lost, everything seen. */
static void check_run(const struct xm_run *r)
{
	KTAP_CHECK(!r->unrecoverable,
		   "%lu signals that were no stray call of the site",
		   (unsigned long)r->unrecoverable);
	KTAP_CHECK(r->calls == counted(r) + r->wrong,
		   "%lu calls made, but targets counted %lu and %lu wrong "
		   "targets were caught",
		   (unsigned long)r->calls, (unsigned long)counted(r),
		   (unsigned long)r->wrong);
	KTAP_CHECK(r->writes_done == r->writes, "writer made %lu of %lu writes",
		   r->writes_done, r->writes);
	KTAP_CHECK(!r->waits_timed_out,
		   "%lu times the caller did not reach the target just written "
		   "within %d s",
		   r->waits_timed_out, WAIT_SECONDS);
	for (int i = 0; i < NTARGET; i++)
		KTAP_CHECK(r->counter[8 * i] > 0, "target %d never called", i);
	/*
	 * The targets the caller runs, in its order, are the writes' in
	 * theirs, some skipped (free pace) or none (lockstep: each write
	 * is waited for), so it changes target at most (exactly) once per
	 * write; more would mean it went back to older bytes after running
	 * newer ones.
	 */
	uint64_t changes = r->counter[8 * CHANGES];
	KTAP_CHECK(r->lockstep ? r->waits_timed_out || changes == r->writes_done
			       : changes <= r->writes_done,
		   "the caller changed target %lu times for %lu writes (%s)",
		   (unsigned long)changes, r->writes_done,
		   r->lockstep ? "lockstep" : "free");
}

int main(int argc, char **argv)
{
	unsigned long writes = 500000, lockstep_writes = 30000;
	int rwx = 0, bench = 0;
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--writes=", 9)) {
			char *end;
			writes = strtoul(argv[i] + 9, &end, 10);
			if (*end || writes < NTARGET) {
				fprintf(
				    stderr,
				    "test_xmodify: --writes=N needs a whole "
				    "number of at least %d, not '%s'\n",
				    NTARGET, argv[i] + 9);
				return 2;
			}
		} else if (!strncmp(argv[i], "--lockstep-writes=", 18)) {
			char *end;
			lockstep_writes = strtoul(argv[i] + 18, &end, 10);
			if (*end || argv[i][18] == 0) {
				fprintf(stderr,
					"test_xmodify: --lockstep-writes=N "
					"needs a whole number, not '%s'\n",
					argv[i] + 18);
				return 2;
			}
		} else if (!strcmp(argv[i], "--map=rwx")) {
			rwx = 1;
		} else if (!strcmp(argv[i], "--map=alias")) {
			rwx = 0;
		} else if (!strcmp(argv[i], "--bench")) {
			bench = 1;
		} else {
			fprintf(stderr, "usage: test_xmodify [--writes=N] "
					"[--lockstep-writes=N] "
					"[--map=alias|rwx] [--bench]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	read_cpu_model();
	int paces = lockstep_writes ? 2 : 1;
	ktap_begin(2 + paces * (int)NCASES);
	printf("# cpu: %s\n", cpu_model);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTRAP, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);

	const char *why = map_region(rwx);
	int cpu_a, cpu_b;
	pick_cpus(&cpu_a, &cpu_b);
	static struct xm_run run;

	/* 1. The site bytes, from the engine's relocator, in every case. */
	ktap_case("site_bytes_from_engine");
	KTAP_CHECK(!why, "%s (errno %d)", why, errno);
	for (unsigned k = 0; !why && k < NCASES; k++) {
		const char *bwhy;
		memset(&run, 0, sizeof(run));
		run.c = &cases[k];
		run.x = region.x, run.w = region.w,
		run.counter = region.counters;
		KTAP_CHECK(build(&run, k, &bwhy), "case %s: %s", cases[k].name,
			   bwhy);
		unsigned off = (unsigned)((run.site + 1) & 63);
		KTAP_CHECK(off == cases[k].rel_off,
			   "case %s: rel32 at line+%#x", cases[k].name, off);
		KTAP_CHECK(run.x[run.site - (uint64_t)(uintptr_t)run.x] == 0xe8,
			   "case %s: no call at the site", cases[k].name);
	}
	ktap_end_case();

	/*
	 * 2. The detector catches a torn rel32: the site holds a mix (low two
	 * bytes of target 0, high two of target 1) and every call of one
	 * loop run must be caught as a SIGTRAP, and counted nowhere else.
	 */
	ktap_case("detector_catches_a_torn_rel32");
	if (!why) {
		const char *bwhy;
		memset(&run, 0, sizeof(run));
		run.c = &cases[0];
		run.x = region.x, run.w = region.w,
		run.counter = region.counters;
		uint8_t *entry = build(&run, 0, &bwhy);
		int32_t mix =
		    (target_rel[0] & 0xffff) | (target_rel[1] & ~0xffff);
		put32(run.w + (run.site + 1 - (uint64_t)(uintptr_t)run.x), mix);
		run.caller_cpu = run.writer_cpu = -1;
		atomic_store(&run.writer_done, 1);
		if (entry)
			call_until_done(&run, (void (*)(void))(uintptr_t)entry);
		KTAP_CHECK(run.calls == LOOP_CALLS && run.wrong == LOOP_CALLS &&
			       run.sig[0] == LOOP_CALLS && counted(&run) == 0 &&
			       !run.unrecoverable,
			   "calls %lu wrong %lu SIGTRAP %lu counted %lu "
			   "unrecoverable %lu",
			   (unsigned long)run.calls, (unsigned long)run.wrong,
			   (unsigned long)run.sig[0],
			   (unsigned long)counted(&run),
			   (unsigned long)run.unrecoverable);
		KTAP_CHECK(run.nlog &&
			       run.log[0] == run.ret_addr + (int64_t)mix,
			   "landing not logged at site+5+%#x", mix);
	}
	ktap_end_case();

	/* 3.. The races: free pace, then lockstep. */
	for (unsigned j = 0; j < paces * NCASES; j++) {
		unsigned k = j % NCASES;
		int lockstep = j >= NCASES;
		char name[64];
		snprintf(name, sizeof(name), "race_case_%s_%s", cases[k].name,
			 lockstep ? "lockstep" : "free");
		ktap_case(name);
		if (why) {
			ktap_fail(__FILE__, __LINE__, "no region: %s", why);
		} else if (cpu_b < 0) {
			/* One CPU: the threads cannot race; say so. */
			ktap_n++;
			printf("ok %d %s # SKIP this process may run on one "
			       "CPU only: no cross-modification race\n",
			       ktap_n, name);
			continue;
		} else {
			const char *rwhy = run_case(
			    &run, k, lockstep ? lockstep_writes : writes,
			    lockstep, cpu_a, cpu_b);
			KTAP_CHECK(!rwhy, "%s", rwhy);
			if (!rwhy) {
				report(&run, bench);
				check_run(&run);
				if (in_one_word(&cases[k]))
					KTAP_CHECK(!run.wrong && !run.sig[0] &&
						       !run.sig[1] &&
						       !run.sig[2],
						   "FINDING: %lu wrong targets "
						   "with the "
						   "rel32 inside one aligned "
						   "word on %s: "
						   "the single-store update is "
						   "not safe "
						   "on this CPU",
						   (unsigned long)run.wrong,
						   cpu_model);
			}
		}
		ktap_end_case();
	}
	return ktap_finish();
}
