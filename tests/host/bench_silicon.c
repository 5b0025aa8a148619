/*
 * bench_silicon.c - the dispatch modes on real silicon, in user space.
 *
 * The kernel's figures come from emulators; this program measures the same
 * call-site variants in hardware cycles on the build machine. It links the
 * real patcher, templates and backends (as tests/host/test_patch.c does),
 * generates a counted loop around one call site in an executable buffer,
 * fills the site with what pvop_site_plan() produces for each mode, and
 * times batches with lfence;rdtsc ... rdtscp;lfence, subtracting the same
 * loop with an empty site. Only sequences legal in ring 3 are measured:
 * native save_fl (pushf; pop), the Xen-style irq ops and CR2/CR3 reads
 * against a fake per-CPU area in %gs, and an op that is nothing.
 *
 * Then the static-call cells (issue 11, bench_static_calls() below): the
 * ways a call to a rarely changed target can be made, to an empty
 * function and to a "return 0" one, each site built by the engine's
 * relocator or NOP filler where the kernel would use them.
 *
 * Output: "bench:" lines in the kernel's format (doc/benchmarks.md),
 * unit=cycles; scripts/bench.py parses them.
 */

/*
 * run() calls the generated loop from inline asm, and the loop pushes and
 * calls: each writes below %rsp. In user space the SysV ABI lets the
 * compiler keep live data in the 128-byte red zone below %rsp without
 * moving %rsp, and an asm() that calls does not stop GCC from treating
 * its function as a leaf that may do so. So this file is built with
 * -mno-red-zone. GCC predefines no macro for that flag: the Makefile
 * passes -DNO_RED_ZONE with it, and a build without both stops here.
 */
#ifndef NO_RED_ZONE
#error "build with -mno-red-zone -DNO_RED_ZONE: asm calls here write below %rsp"
#endif

#define _GNU_SOURCE
#include <asm/prctl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_select.h"
#include "nops.h"
#include "patch.h"
#include "percpu.h"
#include "pvop_backend.h"

/* The C halves the backends name: never reached by the measured ops. */
#define STUB_THUNK(name) asm(".text\n.globl " #name "\n" #name ":\n\tud2\n");
STUB_THUNK(native_apic_eoi_thunk)
STUB_THUNK(native_clock_read_thunk)
STUB_THUNK(kvm_apic_eoi_thunk)
STUB_THUNK(kvm_clock_read_thunk)
STUB_THUNK(xen_force_upcall_thunk)
STUB_THUNK(xen_restore_fl_thunk)
STUB_THUNK(xen_safe_halt_thunk)
STUB_THUNK(xen_halt_thunk)
STUB_THUNK(xen_write_cr3_thunk)
STUB_THUNK(xen_flush_tlb_one_thunk)
STUB_THUNK(xen_clock_read_thunk)
STUB_THUNK(native_send_ipi_thunk)
STUB_THUNK(native_send_ipi_mask_thunk)
STUB_THUNK(native_flush_tlb_others_thunk)
STUB_THUNK(kvm_send_ipi_thunk)
STUB_THUNK(kvm_send_ipi_mask_thunk)
STUB_THUNK(kvm_flush_tlb_others_thunk)
STUB_THUNK(xen_send_ipi_thunk)
STUB_THUNK(xen_send_ipi_mask_thunk)
STUB_THUNK(xen_flush_tlb_others_thunk)
STUB_THUNK(native_lock_wait_thunk)
STUB_THUNK(xen_lock_wait_thunk)
STUB_THUNK(xen_lock_kick_thunk)
STUB_THUNK(xen_set_pte_thunk)
STUB_THUNK(xen_set_pmd_thunk)
STUB_THUNK(xen_set_pud_thunk)
STUB_THUNK(xen_set_pgd_thunk)
STUB_THUNK(xen_make_pte_thunk)
STUB_THUNK(xen_pte_val_thunk)
STUB_THUNK(xen_alloc_pt_thunk)
STUB_THUNK(xen_release_pt_thunk)
STUB_THUNK(xen_lazy_mmu_enter_thunk)
STUB_THUNK(xen_lazy_mmu_leave_thunk)
STUB_THUNK(native_load_sp0_thunk)
STUB_THUNK(xen_load_sp0_thunk)
/* The Xen iret_user/sysret_user templates jump into it; never run here. */
char hypercall_page[4096];

enum mode {
	M_RAW,
	M_INDIRECT,
	M_CALL,
	M_INLINE,
	M_IF,
	M_RETPOLINE,
	M_PAD0, /* + pvop_pad */
	M_NR = M_PAD0 + PATCH_PAD_NR,
};

static const char *mode_name(int m)
{
	static const char *const names[] = {"raw",    "indirect", "call",
					    "inline", "if",	  "retpoline"};
	static char pad[32];
	if (m < M_PAD0)
		return names[m];
	snprintf(pad, sizeof(pad), "pad-%s", patch_pad_names[m - M_PAD0]);
	return pad;
}

struct op_case {
	const char *label; /* what the table row says */
	int backend;	   /* PVOP_BACKEND_* whose implementation runs */
	int op;
};

static const struct op_case cases[] = {
    {"save_fl", PVOP_BACKEND_NATIVE, PVOP_SAVE_FL},
    {"irq_disable", PVOP_BACKEND_XEN, PVOP_IRQ_DISABLE},
    {"irq_enable", PVOP_BACKEND_XEN, PVOP_IRQ_ENABLE},
    {"save_fl", PVOP_BACKEND_XEN, PVOP_SAVE_FL},
    {"read_cr2", PVOP_BACKEND_XEN, PVOP_READ_CR2},
    {"read_cr3", PVOP_BACKEND_XEN, PVOP_READ_CR3},
    {"io_delay", PVOP_BACKEND_KVM, PVOP_IO_DELAY}, /* nothing */
};

/* guest/bench_thunks.S: one retpoline-style thunk per op. */
extern char bench_retpoline_0[], bench_retpoline_1[], bench_retpoline_2[],
    bench_retpoline_3[], bench_retpoline_4[], bench_retpoline_5[],
    bench_retpoline_6[], bench_retpoline_7[], bench_retpoline_8[],
    bench_retpoline_9[], bench_retpoline_10[], bench_retpoline_11[],
    bench_retpoline_12[], bench_retpoline_13[], bench_retpoline_14[],
    bench_retpoline_15[];
static char *const retpoline[PVOP_NR] = {
    bench_retpoline_0,	bench_retpoline_1,  bench_retpoline_2,
    bench_retpoline_3,	bench_retpoline_4,  bench_retpoline_5,
    bench_retpoline_6,	bench_retpoline_7,  bench_retpoline_8,
    bench_retpoline_9,	bench_retpoline_10, bench_retpoline_11,
    bench_retpoline_12, bench_retpoline_13, bench_retpoline_14,
    bench_retpoline_15,
};
/*
 * A retpoline thunk in the shape of Linux's __x86_indirect_thunk_rax: the
 * call pushes a return address that points into a pause/lfence loop (where
 * a mispredicted return is caught), the mov replaces it with the target
 * in %rax, and ret goes there.
 */
asm(".text\n"
    ".balign 16\n"
    "bench_thunk_rax:\n"
    "\tcall 1f\n"
    "2:\tpause\n"
    "\tlfence\n"
    "\tjmp 2b\n"
    "1:\tmov %rax, (%rsp)\n"
    "\tret\n"
    /* Templates the relocator re-aims: a call and a jmp, as assembled. */
    ".pushsection .rodata\n"
    "bench_call_tpl: call 1f\n"
    "\tint3\n"
    "1:\n"
    "bench_jmp_tpl: {disp32} jmp 1f\n"
    "\tint3\n"
    "1:\n"
    ".popsection\n");
extern const char bench_thunk_rax[];
extern const uint8_t bench_call_tpl[], bench_jmp_tpl[];
static void *volatile scall_ptr; /* the indirect and retpoline cells' target */

static struct percpu fake_cpu;
static volatile uint8_t if_native; /* the `if` mode's platform variable */
static uint8_t *code;

/*
 * Emits: push %r12; mov $n,%r12; L: <body>; dec %r12; jnz L; pop %r12; ret
 * and returns where the body starts (the caller writes it there).
 */
static uint8_t *emit_loop(uint8_t *p, unsigned body_len, unsigned n,
			  uint8_t **body)
{
	static const uint8_t head[] = {0x41, 0x54, 0x49, 0xc7, 0xc4};
	memcpy(p, head, sizeof(head));
	put32(p + 5, (int32_t)n);
	*body = p + 9;
	uint8_t *t = *body + body_len;
	t[0] = 0x49, t[1] = 0xff, t[2] = 0xcc; /* dec %r12 */
	t[3] = 0x75;
	t[4] = (uint8_t)(int8_t)(-(int)(body_len + 5)); /* jnz L */
	t[5] = 0x41, t[6] = 0x5c, t[7] = 0xc3;		/* pop %r12; ret */
	return t + 8;
}

/* The body of one cell; returns its length, -1 if the mode does not apply. */
static int make_body(const struct op_case *c, int mode, uint8_t *at,
		     uint8_t *out)
{
	static struct pvop_backend b;
	static const struct pvop_kvm_caps caps = {.nop_io_delay = true};
	if (c->backend == PVOP_BACKEND_NATIVE)
		pvop_backend_native(&b);
	else if (c->backend == PVOP_BACKEND_KVM)
		pvop_backend_kvm(&b, &caps);
	else
		pvop_backend_xen(&b);
	pvop_backend_prepare(&b);
	const struct pvop_impl *impl = &b.op[c->op];
	pv_ops.fn[c->op] = impl->call;

	/* An engine record for the site at `at`, as the site macro emits. */
	static struct patch_site rec;
	struct patch_site *s = &rec;
	rec = (struct patch_site){
	    .site = (int32_t)((uintptr_t)at - (uintptr_t)&rec.site),
	    .payload = (int32_t)((uintptr_t)&pv_ops.fn[c->op] -
				 (uintptr_t)&rec.payload),
	    .kind = PATCH_KIND_PVOP,
	    .len = pvop_slots[c->op],
	    .arg = (uint16_t)c->op,
	    .arg2 = pvop_clobbers[c->op],
	};
	const char *why;

	switch (mode) {
	case M_RAW: /* hand-written: the template's bytes, or nothing */
		if (impl->nop)
			return 0;
		memcpy(out, (void *)(uintptr_t)impl->tpl->addr, impl->tpl->len);
		return impl->tpl->len;
	case M_INDIRECT:
		return pvop_site_plan(s, impl, PVOP_MODE_INDIRECT,
				      PATCH_PAD_DEFAULT, out, &why) < 0
			   ? -1
			   : s->len;
	case M_CALL:
		return pvop_site_plan(s, impl, PVOP_MODE_CALL,
				      PATCH_PAD_DEFAULT, out, &why) < 0
			   ? -1
			   : s->len;
	case M_INLINE:
		return pvop_site_plan(s, impl, PVOP_MODE_INLINE,
				      PATCH_PAD_DEFAULT, out, &why) < 0
			   ? -1
			   : s->len;
	case M_IF: {
		/* cmpb $0,if_native(%rip); je 1f; <raw>; jmp 2f; 1: call f; 2: */
		unsigned raw = impl->nop ? 0 : impl->tpl->len;
		uint8_t *p = out;
		p[0] = 0x80, p[1] = 0x3d;
		put32(p + 2,
		      (int32_t)((intptr_t)&if_native - (intptr_t)(at + 7)));
		p[6] = 0;
		p[7] = 0x74, p[8] = (uint8_t)(raw + 2);
		if (raw)
			memcpy(p + 9, (void *)(uintptr_t)impl->tpl->addr, raw);
		p[9 + raw] = 0xeb, p[10 + raw] = 5;
		p[11 + raw] = 0xe8;
		put32(p + 12 + raw, (int32_t)((intptr_t)impl->call -
					      (intptr_t)(at + 16 + raw)));
		return 16 + raw;
	}
	case M_RETPOLINE:
		out[0] = 0xe8;
		put32(out + 1, (int32_t)((intptr_t)retpoline[c->op] -
					 (intptr_t)(at + 5)));
		return 5;
	default:
		return pvop_site_plan(s, impl, PVOP_MODE_INLINE, mode - M_PAD0,
				      out, &why) < 0
			   ? -1
			   : s->len;
	}
}

static inline uint64_t t_start(void)
{
	uint32_t lo, hi;
	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
}

static inline uint64_t t_end(void)
{
	uint32_t lo, hi, aux;
	asm volatile("rdtscp; lfence"
		     : "=a"(lo), "=d"(hi), "=c"(aux)::"memory");
	return (uint64_t)hi << 32 | lo;
}

static uint64_t run(void *fn)
{
	uint64_t t0 = t_start();
	asm volatile("call *%0"
		     :
		     : "r"(fn)
		     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
		       "r11", "memory", "cc");
	return t_end() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

#define CALLS 2000
#define BATCHES 301

/* Times the loop at fn against the empty loop; prints one bench: line. */
static void measure(void *fn, void *empty_fn, const char *op, const char *mode,
		    const char *backend)
{
	uint64_t per[BATCHES];
	for (int w = 0; w < 20; w++)
		run(fn), run(empty_fn);
	for (int b = 0; b < BATCHES; b++) {
		uint64_t t = run(fn), e = run(empty_fn);
		per[b] = t > e ? (t - e) * 100 / CALLS : 0;
	}
	qsort(per, BATCHES, sizeof(per[0]), cmp_u64);
	uint64_t mn = per[0], md = per[BATCHES / 2],
		 p99 = per[BATCHES * 99 / 100];
	printf("bench: op=%s mode=%s backend=%s calls=%u "
	       "batches=%u min=%lu.%02lu median=%lu.%02lu "
	       "p99=%lu.%02lu unit=cycles\n",
	       op, mode, backend, CALLS, BATCHES, mn / 100, mn % 100, md / 100,
	       md % 100, p99 / 100, p99 % 100);
}

/* The 5 bytes of tpl (a call or jmp rel32) re-aimed, run at `at`, to `to`. */
static void reaim(const uint8_t *tpl, uint8_t *at, const void *to, uint8_t *out)
{
	struct patch_reloc rl;
	const char *why =
	    patch_reloc_scan(tpl, 5, (uint64_t)(uintptr_t)tpl, 0, &rl);
	if (!why && rl.n != 1)
		why = "no rel32 in the template";
	memcpy(out, tpl, 5);
	if (!why) {
		rl.target[0] = (uint64_t)(uintptr_t)to;
		why = patch_reloc_apply(&rl, out, (uint64_t)(uintptr_t)at);
	}
	if (why) {
		fprintf(stderr, "bench_silicon: relocating a call: %s\n", why);
		exit(2);
	}
}

enum scall_mode {
	SC_DIRECT,	 /* call target, as a compiler writes it */
	SC_INLINE,	 /* the site patched to call target (the relocator) */
	SC_OUTLINE,	 /* call trampoline; trampoline: jmp target */
	SC_INDIRECT,	 /* call *ptr(%rip) */
	SC_RETPOLINE,	 /* mov ptr(%rip),%rax; call bench_thunk_rax */
	SC_INLINE_NULL,	 /* NULL target, inline: the site is a 5-byte NOP */
	SC_OUTLINE_NULL, /* NULL target, outline: call trampoline; ret */
	SC_NR,
};
static const char *const scall_names[SC_NR] = {
    "direct",	 "inline",	"trampoline",	  "indirect",
    "retpoline", "inline-null", "trampoline-null"};

/*
 * The body of a static-call cell at `at`, into out; returns its length.
 * tramp is the trampoline (written here), target the function.
 */
static int scall_body(int mode, uint8_t *at, uint8_t *tramp,
		      const uint8_t *target, uint8_t *out)
{
	memset(tramp, 0xcc, 16);
	scall_ptr = (void *)(uintptr_t)target;
	switch (mode) {
	case SC_DIRECT:
		out[0] = 0xe8;
		put32(out + 1,
		      (int32_t)((intptr_t)target - (intptr_t)(at + 5)));
		return 5;
	case SC_INLINE:
		reaim(bench_call_tpl, at, target, out);
		return 5;
	case SC_OUTLINE:
		reaim(bench_jmp_tpl, tramp, target, tramp);
		reaim(bench_call_tpl, at, tramp, out);
		return 5;
	case SC_INDIRECT:
		out[0] = 0xff, out[1] = 0x15;
		put32(out + 2,
		      (int32_t)((intptr_t)&scall_ptr - (intptr_t)(at + 6)));
		return 6;
	case SC_RETPOLINE:
		out[0] = 0x48, out[1] = 0x8b, out[2] = 0x05;
		put32(out + 3,
		      (int32_t)((intptr_t)&scall_ptr - (intptr_t)(at + 7)));
		reaim(bench_call_tpl, at + 7, bench_thunk_rax, out + 7);
		return 12;
	case SC_INLINE_NULL:
		nops_fill(out, 5, PATCH_PAD_DEFAULT);
		return 5;
	default: /* SC_OUTLINE_NULL */
		tramp[0] = 0xc3;
		reaim(bench_call_tpl, at, tramp, out);
		return 5;
	}
}

/*
 * The static-call cells: op scall (the target is an empty function, as in
 * guest/bench_scall.c) and scall_ret0 (it returns 0, like Linux's
 * __static_call_return0), in the kernel cells' modes; backend=none (no
 * pvop backend is involved).
 */
static void bench_static_calls(uint8_t *cell_fn, uint8_t *empty_fn,
			       uint8_t *scratch)
{
	static const uint8_t fn_ret[] = {0xc3};
	static const uint8_t fn_ret0[] = {0x31, 0xc0, 0xc3};
	static const struct {
		const char *op;
		const uint8_t *bytes;
		unsigned len;
	} targets[] = {{"scall", fn_ret, 1}, {"scall_ret0", fn_ret0, 3}};
	/* Target and trampoline in lines of their own, apart from the loop. */
	uint8_t *target = scratch, *tramp = scratch + 256;
	for (unsigned t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		memset(target, 0xcc, 64);
		memcpy(target, targets[t].bytes, targets[t].len);
		for (int m = 0; m < SC_NR; m++) {
			uint8_t bytes[32], *body;
			int len =
			    scall_body(m, cell_fn + 9, tramp, target, bytes);
			emit_loop(cell_fn, (unsigned)len, CALLS, &body);
			memcpy(body, bytes, (size_t)len);
			measure(cell_fn, empty_fn, targets[t].op,
				scall_names[m], "none");
		}
	}
}

/*
 * The select benchmark (guest/include/bench_select.h): the same loops as
 * the kernel's, its sites assembled in their patched form. The cold
 * cells' clflush is legal here and real: the miss costs what memory costs
 * on this machine.
 */
static void select_cells(void)
{
	for (int m = 0; m < BSEL_NR; m++) {
		if (!bench_sel_available(m))
			continue;
		uint64_t per[BATCHES];
		for (int w = 0; w < 20; w++)
			bench_sel_once(m, CALLS);
		for (int b = 0; b < BATCHES; b++)
			per[b] = bench_sel_once(m, CALLS);
		qsort(per, BATCHES, sizeof(per[0]), cmp_u64);
		uint64_t mn = per[0], md = per[BATCHES / 2],
			 p99 = per[BATCHES * 99 / 100];
		printf("bench: op=select mode=%s backend=user-space calls=%u "
		       "batches=%u min=%lu.%02lu median=%lu.%02lu "
		       "p99=%lu.%02lu unit=cycles\n",
		       bench_sel_names[m], CALLS, BATCHES, mn / 100, mn % 100,
		       md / 100, md % 100, p99 / 100, p99 % 100);
	}
}

int main(void)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	sched_setaffinity(0, sizeof(one), &one); /* best effort */

	code = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (code == MAP_FAILED) {
		perror("bench_silicon: mmap");
		return 2;
	}
	fake_cpu.self = &fake_cpu;
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, &fake_cpu)) {
		perror("bench_silicon: arch_prctl(ARCH_SET_GS)");
		return 2;
	}

	char model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[200];
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *v = strchr(line, ':');
			snprintf(model, sizeof(model), "%s", v ? v + 2 : line);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	printf("bench: begin platform=host backend=user-space pad=%s "
	       "tsc_khz=0 icount=0 cpu=\"%s\"\n",
	       patch_pad_names[PATCH_PAD_DEFAULT], model);

	uint8_t *empty_fn = code, *body;
	emit_loop(empty_fn, 0, CALLS, &body);
	uint8_t *cell_fn = code + 4096;

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct op_case *c = &cases[i];
		for (int m = 0; m < M_NR; m++) {
			uint8_t bytes[64];
			/* The body is placed where emit_loop puts it. */
			int len = make_body(c, m, cell_fn + 9, bytes);
			if (len < 0)
				continue;
			emit_loop(cell_fn, len, CALLS, &body);
			memcpy(body, bytes, len);
			fake_cpu.vcpu_info.evtchn_upcall_pending = 0;
			if_native = c->backend != PVOP_BACKEND_XEN;

			measure(cell_fn, empty_fn, c->label, mode_name(m),
				c->backend == PVOP_BACKEND_XEN	 ? "xen-pv"
				: c->backend == PVOP_BACKEND_KVM ? "kvm"
								 : "native");
		}
	}
	bench_static_calls(cell_fn, empty_fn, code + 8192);

	/* What was subtracted: the empty loop itself, per iteration. */
	uint64_t per[BATCHES];
	for (int b = 0; b < BATCHES; b++)
		per[b] = run(empty_fn) * 100 / CALLS;
	qsort(per, BATCHES, sizeof(per[0]), cmp_u64);
	printf("bench: baseline empty_loop_median=%lu.%02lu calls=%u "
	       "unit=cycles\n",
	       per[BATCHES / 2] / 100, per[BATCHES / 2] % 100, CALLS);
	select_cells();
	printf("bench: end\n");
	return 0;
}
