/*
 * test_patch.c - the real patcher, templates and backends, in user space.
 *
 * Compiles pvops/{plan,templates,native,kvm,xen,ops}.c and the engine's
 * patch/{nops,reloc,insn}.c unchanged, prepares every backend and plans
 * sites (engine records) laid out in an executable buffer, for every
 * backend, op, mode and padding style. Then:
 *   - objdump decodes each patched site: the instructions must be the
 *     template's (same targets after relocation), or a call to the
 *     backend's function, or the original indirect call, then NOPs only,
 *     ending exactly at the site's end;
 *   - the sequences legal in ring 3 are executed (native save_fl, cpuid;
 *     the Xen mask ops against a fake per-CPU area in %gs; every call
 *     mode to fake thunks), and every register outside the site's clobber
 *     mask must survive;
 *   - the original-bytes validator accepts gas's padding and refuses
 *     anything else.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ktap.h"
#include "kvm.h"
#include "percpu.h"
#include "pvop_backend.h"

/* ---- fake thunks: obey the convention (only %rax), record the call ---- */

volatile int fake_called;

#define FAKE_THUNK(name, id)                                                   \
	asm(".text\n.globl " #name "\n" #name ":\n\t"                          \
	    "movl $" #id ", fake_called(%rip)\n\t"                             \
	    "mov $" #id "000, %eax\n\t"                                        \
	    "ret\n");

FAKE_THUNK(native_apic_eoi_thunk, 1)
FAKE_THUNK(native_clock_read_thunk, 2)
FAKE_THUNK(kvm_apic_eoi_thunk, 3)
FAKE_THUNK(kvm_clock_read_thunk, 4)
FAKE_THUNK(xen_force_upcall_thunk, 5)
FAKE_THUNK(xen_restore_fl_thunk, 6)
FAKE_THUNK(xen_safe_halt_thunk, 7)
FAKE_THUNK(xen_halt_thunk, 8)
FAKE_THUNK(xen_write_cr3_thunk, 9)
FAKE_THUNK(xen_flush_tlb_one_thunk, 10)
FAKE_THUNK(xen_clock_read_thunk, 11)
FAKE_THUNK(native_send_ipi_thunk, 12)
FAKE_THUNK(native_send_ipi_mask_thunk, 13)
FAKE_THUNK(native_flush_tlb_others_thunk, 14)
FAKE_THUNK(kvm_send_ipi_thunk, 15)
FAKE_THUNK(kvm_send_ipi_mask_thunk, 16)
FAKE_THUNK(xen_send_ipi_thunk, 17)
FAKE_THUNK(xen_send_ipi_mask_thunk, 18)
FAKE_THUNK(xen_flush_tlb_others_thunk, 19)
FAKE_THUNK(native_lock_wait_thunk, 20)
FAKE_THUNK(xen_lock_wait_thunk, 21)
FAKE_THUNK(xen_lock_kick_thunk, 22)
FAKE_THUNK(kvm_flush_tlb_others_thunk, 23)
FAKE_THUNK(xen_set_pte_thunk, 24)
FAKE_THUNK(xen_set_pmd_thunk, 25)
FAKE_THUNK(xen_set_pud_thunk, 26)
FAKE_THUNK(xen_set_pgd_thunk, 27)
FAKE_THUNK(xen_make_pte_thunk, 28)
FAKE_THUNK(xen_pte_val_thunk, 29)
FAKE_THUNK(xen_alloc_pt_thunk, 30)
FAKE_THUNK(xen_release_pt_thunk, 31)
FAKE_THUNK(xen_lazy_mmu_enter_thunk, 32)
FAKE_THUNK(xen_lazy_mmu_leave_thunk, 33)
FAKE_THUNK(native_load_sp0_thunk, 34)
FAKE_THUNK(xen_load_sp0_thunk, 35)
/* The Xen iret_user/sysret_user templates jump into it; never run here. */
char hypercall_page[4096];

/* ---- run code with every register set, and read them all back ---- */

struct regs {
	uint64_t rax, rcx, rdx, rbx, rsp_unused, rbp, rsi, rdi;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

void run_code(void *code, struct regs *r);
asm(".text\n.globl run_code\nrun_code:\n\t"
    "push %rbp\n\tpush %rbx\n\tpush %r12\n\tpush %r13\n\t"
    "push %r14\n\tpush %r15\n\t"
    "push %rsi\n\tpush %rdi\n\t"
    "mov 0(%rsi), %rax\n\tmov 8(%rsi), %rcx\n\tmov 16(%rsi), %rdx\n\t"
    "mov 24(%rsi), %rbx\n\tmov 40(%rsi), %rbp\n\tmov 56(%rsi), %rdi\n\t"
    "mov 64(%rsi), %r8\n\tmov 72(%rsi), %r9\n\tmov 80(%rsi), %r10\n\t"
    "mov 88(%rsi), %r11\n\tmov 96(%rsi), %r12\n\tmov 104(%rsi), %r13\n\t"
    "mov 112(%rsi), %r14\n\tmov 120(%rsi), %r15\n\t"
    "mov 48(%rsi), %rsi\n\t"
    "call *(%rsp)\n\t"
    "push %rsi\n\tmov 16(%rsp), %rsi\n\t"
    "mov %rax, 0(%rsi)\n\tmov %rcx, 8(%rsi)\n\tmov %rdx, 16(%rsi)\n\t"
    "mov %rbx, 24(%rsi)\n\tmov %rbp, 40(%rsi)\n\tmov %rdi, 56(%rsi)\n\t"
    "mov %r8, 64(%rsi)\n\tmov %r9, 72(%rsi)\n\tmov %r10, 80(%rsi)\n\t"
    "mov %r11, 88(%rsi)\n\tmov %r12, 96(%rsi)\n\tmov %r13, 104(%rsi)\n\t"
    "mov %r14, 112(%rsi)\n\tmov %r15, 120(%rsi)\n\t"
    "pop %rax\n\tmov %rax, 48(%rsi)\n\t"
    "add $16, %rsp\n\t"
    "pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbx\n\t"
    "pop %rbp\n\tret\n");

static const char *const reg_names[16] = {
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15",
};

/* ---- the site layout ---- */

#define SITE_STRIDE 64

static uint8_t *text; /* RWX, below 2 GiB so rel32 reaches everything */
static struct percpu fake_cpu;

/*
 * One engine record per op, as the kernel's site macro emits them: the
 * site and payload fields are relative to the fields themselves.
 */
static struct patch_site recs[PVOP_NR];

static struct patch_site *site_for(int op)
{
	struct patch_site *r = &recs[op];
	uintptr_t at = (uintptr_t)(text + op * SITE_STRIDE);

	r->site = (int32_t)(at - (uintptr_t)&r->site);
	r->payload =
	    (int32_t)((uintptr_t)&pv_ops.fn[op] - (uintptr_t)&r->payload);
	r->kind = PATCH_KIND_PVOP;
	r->len = pvop_slots[op];
	r->flags = 0;
	r->reserved = 0;
	r->arg = (uint16_t)op;
	r->arg2 = pvop_clobbers[op];
	return r;
}

/* Writes the original site (as gas does: indirect call + .nops) + ret. */
static void lay_out_originals(void)
{
	memset(text, 0xcc, PVOP_NR * SITE_STRIDE);
	for (int op = 0; op < PVOP_NR; op++) {
		struct patch_site *r = site_for(op);
		uint8_t *p = (uint8_t *)patch_site_addr(r);
		uint8_t orig[PATCH_MAX_LEN];
		pvop_site_original(r, orig);
		memcpy(p, orig, r->len);
		p[r->len] = 0xc3;
	}
}

/* ---- objdump ---- */

static void normalise(char *t);

struct insn {
	uint64_t addr;
	unsigned len;
	char text[128];
};

/* Disassembles [addr, addr+len) as x86-64; returns the instruction count. */
static int disasm(uint64_t addr, const uint8_t *p, unsigned len,
		  struct insn *out, int max)
{
	char path[] = "/tmp/tinypv-patch-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, p, len) != (ssize_t)len)
		return -1;
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "objdump -D -w -b binary -m i386:x86-64 --adjust-vma=%#lx %s",
		 (unsigned long)addr, path);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	char line[256];
	int n = 0;
	while (fgets(line, sizeof(line), f) && n < max) {
		unsigned long a;
		char bytes[64], txt[128];
		if (sscanf(line, " %lx:\t%63[0-9a-f ]\t%127[^\n]", &a, bytes,
			   txt) != 3)
			continue;
		out[n].addr = a;
		unsigned digits = 0;
		for (const char *c = bytes; *c; c++)
			digits += *c != ' ';
		out[n].len = digits / 2;
		snprintf(out[n].text, sizeof(out[n].text), "%s", txt);
		n++;
	}
	pclose(f);
	unlink(path);
	return n;
}

static bool is_nop_text(const char *t)
{
	return strstr(t, "nop") == t || strstr(t, "cs nop") == t ||
	       strstr(t, "data16") == t || !strcmp(t, "xchg %ax,%ax") ||
	       !strcmp(t, "xchg   %ax,%ax") || strstr(t, "jmp") == t;
}

/*
 * Same instruction text, ignoring the address columns objdump adds. A
 * short (rel8) branch is compared by displacement: the patcher copies it
 * unchanged. Other branches (the relocated rel32) by absolute target.
 */
static void normalise_insn(struct insn *in)
{
	char *hex = strstr(in->text, " 0x");
	if (hex && in->text[0] == 'j' && in->len == 2) {
		uint64_t target = strtoull(hex + 1, NULL, 16);
		sprintf(hex, " .%+ld", (long)(target - in->addr));
	}
	normalise(in->text);
}

static void normalise(char *t)
{
	char *c = strstr(t, "  <");
	if (c)
		*c = '\0';
	c = strstr(t, " #");
	if (c)
		*c = '\0';
	/* One space between words, none at the end. */
	char *w = t;
	for (const char *r = t; *r; r++)
		if (*r != ' ' || (w > t && w[-1] != ' '))
			*w++ = *r;
	while (w > t && w[-1] == ' ')
		w--;
	*w = '\0';
}

static void check_decoding(const char *ctx, const struct patch_site *s,
			   const struct pvop_impl *impl, int kind,
			   const uint8_t *bytes)
{
	struct insn got[32], tpl[16];
	int n = disasm(patch_site_addr(s), bytes, s->len, got, 32);
	int first_pad = 1;

	KTAP_CHECK(n > 0, "%s: objdump failed", ctx);
	if (n <= 0)
		return;
	unsigned total = 0;
	for (int i = 0; i < n; i++)
		total += got[i].len;
	KTAP_CHECK(total == s->len, "%s: decodes to %u bytes, site is %u", ctx,
		   total, s->len);

	/*
	 * PATCH_PAD_PREFIX: objdump prints a long prefix run as a line of its
	 * own; fold it into the next instruction, then drop the prefixes.
	 */
	if (n > 1 && !strncmp(got[0].text, "ds ", 3) &&
	    !strspn(got[0].text + strspn(got[0].text, "ds "),
		    "abcdefghijklmnopqrstuvwxyz")) {
		got[1].addr = got[0].addr;
		got[1].len += got[0].len;
		memmove(&got[0], &got[1], (n - 1) * sizeof(got[0]));
		n--;
	}
	while (!strncmp(got[0].text, "ds ", 3))
		memmove(got[0].text, got[0].text + 3, strlen(got[0].text) - 2);

	if (kind == PVOP_KIND_INLINE) {
		const struct pvop_template *t = impl->tpl;
		int m = disasm(t->addr, (const uint8_t *)(uintptr_t)t->addr,
			       t->len, tpl, 16);
		first_pad = m;
		for (int i = 0; i < m && i < n; i++) {
			normalise_insn(&got[i]);
			normalise_insn(&tpl[i]);
			/* Branches print absolute targets: equal after reloc. */
			KTAP_CHECK(!strcmp(got[i].text, tpl[i].text),
				   "%s: insn %d is '%s', template has '%s'",
				   ctx, i, got[i].text, tpl[i].text);
		}
	} else if (kind == PVOP_KIND_CALL) {
		char want[64];
		snprintf(want, sizeof(want), "call 0x%lx",
			 (unsigned long)(uintptr_t)impl->call);
		normalise(got[0].text);
		/* A 6-byte slot carries its spare byte as a CS prefix. */
		const char *call = got[0].text;
		if (s->len == PVOP_DIRECT_CALL_LEN + 1 &&
		    !strncmp(call, "cs ", 3))
			call += 3;
		KTAP_CHECK(!strcmp(call, want), "%s: '%s', want '%s'", ctx,
			   got[0].text, want);
	} else if (kind == PVOP_KIND_INDIRECT) {
		normalise(got[0].text);
		KTAP_CHECK(strstr(got[0].text, "call *") == got[0].text,
			   "%s: '%s' is not an indirect call", ctx,
			   got[0].text);
	} else {
		first_pad = 0;
	}
	for (int i = first_pad; i < n; i++)
		KTAP_CHECK(is_nop_text(got[i].text),
			   "%s: padding insn %d is '%s'", ctx, i, got[i].text);
}

/* ---- execution ---- */

static sigjmp_buf crash_env;
static volatile sig_atomic_t crash_signal;

static void on_crash(int sig)
{
	crash_signal = sig;
	siglongjmp(crash_env, 1);
}

static bool executable_here(int backend, int op, int kind)
{
	/* The entry ops leave for user mode (or swap GS): never run here. */
	if (op == PVOP_SWAPGS || op == PVOP_IRET_USER || op == PVOP_SYSRET_USER)
		return false;
	if (kind == PVOP_KIND_CALL || kind == PVOP_KIND_NOP)
		return op != PVOP_CPUID || backend != PVOP_BACKEND_XEN;
	if (kind == PVOP_KIND_INDIRECT)
		return false; /* covered by CALL: same target, via pv_ops */
	switch (op) {
	case PVOP_SAVE_FL:
		return true;
	case PVOP_CPUID:
		return backend != PVOP_BACKEND_XEN; /* ud2 prefix */
	case PVOP_IRQ_DISABLE:
	case PVOP_IRQ_ENABLE:
	case PVOP_READ_CR2:
	case PVOP_READ_CR3:
		return backend == PVOP_BACKEND_XEN;
	case PVOP_MAKE_PTE:
	case PVOP_PTE_VAL:
		return backend != PVOP_BACKEND_XEN; /* mov %rdi, %rax */
	default:
		return false;
	}
}

/* Native stubs that fault in ring 3 cannot be called either. */
static bool stub_callable(int backend, int op)
{
	if (backend == PVOP_BACKEND_XEN)
		return op != PVOP_CPUID && op != PVOP_READ_MSR &&
		       op != PVOP_WRITE_MSR;
	return op == PVOP_SAVE_FL || op == PVOP_CPUID || op == PVOP_APIC_EOI ||
	       op == PVOP_CLOCK_READ || op == PVOP_SEND_IPI ||
	       op == PVOP_SEND_IPI_MASK || op == PVOP_FLUSH_TLB_OTHERS ||
	       op == PVOP_LOCK_WAIT || op == PVOP_LOCK_KICK ||
	       op == PVOP_MAKE_PTE || op == PVOP_PTE_VAL ||
	       op == PVOP_ALLOC_PT || op == PVOP_RELEASE_PT ||
	       op == PVOP_LAZY_MMU_ENTER || op == PVOP_LAZY_MMU_LEAVE ||
	       (op == PVOP_IO_DELAY && backend == PVOP_BACKEND_KVM);
}

static void execute(const char *ctx, const struct patch_site *s,
		    const struct pvop_impl *impl, int backend, int kind)
{
	struct regs in, r;
	uint64_t *iv = (uint64_t *)&in, *rv = (uint64_t *)&r;

	if (!executable_here(backend, s->arg, kind))
		return;
	if (kind == PVOP_KIND_CALL && !stub_callable(backend, s->arg))
		return;
	for (int i = 0; i < 16; i++)
		iv[i] = 0x1111111111111111ULL * (i + 1);
	in.rax = 0; /* cpuid leaf 0 */
	in.rcx = 0;
	in.rdi = X86_EFLAGS_IF;
	fake_cpu.vcpu_info.evtchn_upcall_mask = 0;
	fake_cpu.vcpu_info.evtchn_upcall_pending = 1;
	fake_cpu.vcpu_info.arch.cr2 = 0xc2c2c2c2;
	fake_cpu.cr3 = 0xc3c3c3c3;
	fake_called = 0;
	r = in;
	if (sigsetjmp(crash_env, 1)) {
		KTAP_CHECK(false, "%s: executing the site raised signal %d",
			   ctx, (int)crash_signal);
		return;
	}
	run_code((void *)patch_site_addr(s), &r);

	for (int i = 0; i < 16; i++) {
		/*
		 * What the bytes may destroy is what their record declares
		 * (template or function), which must itself fit the site: a
		 * record that under-declares is caught here.
		 */
		uint16_t allowed =
		    kind == PVOP_KIND_INLINE ? impl->tpl->clobbers
		    : kind == PVOP_KIND_CALL ? impl->call_clobbers
					     : s->arg2;
		if (i == 4 || (allowed & (1u << i)))
			continue;
		KTAP_CHECK(rv[i] == iv[i], "%s: %s changed (%#lx -> %#lx)", ctx,
			   reg_names[i], (unsigned long)iv[i],
			   (unsigned long)rv[i]);
	}
	if (kind != PVOP_KIND_INLINE || backend != PVOP_BACKEND_XEN)
		goto semantics_common;
	switch (s->arg) {
	case PVOP_IRQ_DISABLE:
		KTAP_CHECK(fake_cpu.vcpu_info.evtchn_upcall_mask == 1,
			   "%s: mask not set", ctx);
		break;
	case PVOP_IRQ_ENABLE:
		/* Pending was set: the relocated call must reach the thunk. */
		KTAP_CHECK(fake_cpu.vcpu_info.evtchn_upcall_mask == 0,
			   "%s: mask not cleared", ctx);
		KTAP_CHECK(fake_called == 5,
			   "%s: pending event did not call the upcall thunk",
			   ctx);
		break;
	case PVOP_READ_CR2:
		KTAP_CHECK(r.rax == 0xc2c2c2c2, "%s: cr2 %#lx", ctx,
			   (unsigned long)r.rax);
		break;
	case PVOP_READ_CR3:
		KTAP_CHECK(r.rax == 0xc3c3c3c3, "%s: cr3 %#lx", ctx,
			   (unsigned long)r.rax);
		break;
	}
semantics_common:
	if (s->arg == PVOP_SAVE_FL)
		KTAP_CHECK(r.rax & X86_EFLAGS_IF,
			   "%s: save_fl %#lx lacks IF (user mode has IF=1)",
			   ctx, (unsigned long)r.rax);
	if (s->arg == PVOP_CPUID && kind != PVOP_KIND_NOP)
		KTAP_CHECK(r.rbx && r.rax, "%s: cpuid(0) gave eax %#lx", ctx,
			   (unsigned long)r.rax);
}

/* ---- the cases ---- */

static void make_backend(int id, struct pvop_backend *b)
{
	static const struct pvop_kvm_caps all = {.nop_io_delay = true,
						 .pv_eoi = true,
						 .kvmclock = true,
						 .pv_tlb_flush = true};
	if (id == PVOP_BACKEND_NATIVE)
		pvop_backend_native(b);
	else if (id == PVOP_BACKEND_KVM)
		pvop_backend_kvm(b, &all);
	else
		pvop_backend_xen(b);
	pvop_backend_prepare(b);
}

static void patch_everything(int backend, enum pvop_mode mode)
{
	static const char *const mode_names[] = {"off", "noinline", "on"};
	static struct pvop_backend b;
	char name[64];

	make_backend(backend, &b);
	snprintf(name, sizeof(name), "%s_pvops_%s", b.name, mode_names[mode]);
	ktap_case(name);
	for (int op = 0; op < PVOP_NR; op++)
		pv_ops.fn[op] = b.op[op].call;
	for (int pad = 0; pad < PATCH_PAD_NR; pad++) {
		lay_out_originals();
		for (int op = 0; op < PVOP_NR; op++) {
			struct patch_site *s = site_for(op);
			uint8_t *p = (uint8_t *)patch_site_addr(s);
			uint8_t want[PVOP_MAX_SLOT];
			const char *why = "";
			char ctx[96];
			snprintf(ctx, sizeof(ctx), "%s/%s/pad=%s", b.name,
				 pvop_names[op], patch_pad_names[pad]);

			KTAP_CHECK(pvop_site_is_original(s, p),
				   "%s: fresh site not recognised", ctx);
			int kind =
			    pvop_site_plan(s, &b.op[op], mode, pad, want, &why);
			KTAP_CHECK(kind >= 0, "%s: plan failed: %s", ctx, why);
			if (kind < 0)
				continue;
			if (mode == PVOP_MODE_INDIRECT)
				KTAP_CHECK(kind == PVOP_KIND_INDIRECT,
					   "%s: pvops=off changed the site",
					   ctx);
			if (mode == PVOP_MODE_CALL)
				KTAP_CHECK(kind == PVOP_KIND_CALL,
					   "%s: noinline gave kind %d", ctx,
					   kind);
			memcpy(p, want, s->len);
			check_decoding(ctx, s, &b.op[op], kind, p);
			execute(ctx, s, &b.op[op], backend, kind);
			/* Idempotent: planning again yields the same bytes. */
			uint8_t again[PVOP_MAX_SLOT];
			pvop_site_plan(s, &b.op[op], mode, pad, again, &why);
			KTAP_CHECK(!memcmp(want, again, s->len),
				   "%s: second plan differs", ctx);
		}
	}
	ktap_end_case();
}

/* What the boot report promises: every native irq op inline. */
static void inline_expectations(void)
{
	static struct pvop_backend nat, xen;
	ktap_case("inline_expectations");
	make_backend(PVOP_BACKEND_NATIVE, &nat);
	make_backend(PVOP_BACKEND_XEN, &xen);
	int irq_ops[] = {PVOP_IRQ_DISABLE, PVOP_IRQ_ENABLE, PVOP_SAVE_FL,
			 PVOP_RESTORE_FL};
	uint8_t out[PVOP_MAX_SLOT];
	const char *why;
	for (unsigned i = 0; i < 4; i++) {
		struct patch_site *s = site_for(irq_ops[i]);
		int k = pvop_site_plan(s, &nat.op[s->arg], PVOP_MODE_INLINE,
				       PATCH_PAD_NOPS, out, &why);
		KTAP_CHECK(k == PVOP_KIND_INLINE, "native %s not inline",
			   pvop_names[s->arg]);
	}
	struct patch_site *s = site_for(PVOP_IRQ_DISABLE);
	int k = pvop_site_plan(s, &xen.op[s->arg], PVOP_MODE_INLINE,
			       PATCH_PAD_NOPS, out, &why);
	KTAP_CHECK(k == PVOP_KIND_INLINE, "xen irq_disable not inline");
	/* A record whose clobbers are not its op's is refused. */
	s = site_for(PVOP_CPUID);
	s->arg2 = PVREG_RAX;
	k = pvop_site_plan(s, &nat.op[s->arg], PVOP_MODE_INLINE, PATCH_PAD_NOPS,
			   out, &why);
	KTAP_CHECK(k < 0, "cpuid planned into a site that keeps rbx/rcx/rdx");
	/* A record whose length is not its op's slot is refused. */
	s = site_for(PVOP_IRQ_ENABLE);
	s->len = 6;
	k = pvop_site_plan(s, &xen.op[s->arg], PVOP_MODE_INLINE, PATCH_PAD_NOPS,
			   out, &why);
	KTAP_CHECK(k < 0, "a 6-byte irq_enable record was planned (kind %d)",
		   k);
	ktap_end_case();
}

/*
 * A site with its register saves (PATCH_KIND_PVOP_SAVES): irq_enable between a
 * push and a pop of rax, as the syscall entry has it. Consumed exactly
 * where the plan is inline and the template clobbers no saved register
 * (native, KVM: sti) and consumption is asked for; otherwise the saves
 * stay around the op's plan. objdump checks both shapes.
 */
static void saves_sites(void)
{
	static struct pvop_backend b;
	struct patch_site saved_rec;
	uint8_t *at = text + PVOP_NR * SITE_STRIDE;
	uint8_t orig[PATCH_MAX_LEN];
	uint16_t mask = 0;

	ktap_case("saves_sites");
	for (int be = 0; be < PVOP_BACKEND_NR; be++) {
		make_backend(be, &b);
		for (int op = 0; op < PVOP_NR; op++)
			pv_ops.fn[op] = b.op[op].call;
		for (int mode = 0; mode < PVOP_MODE_NR; mode++)
			for (int consume = 0; consume < 2; consume++) {
				struct patch_site *x =
				    site_for(PVOP_IRQ_ENABLE);
				saved_rec = *x;
				x->site = (int32_t)((uintptr_t)at -
						    (uintptr_t)&x->site);
				x->len = (uint8_t)(pvop_slots[x->arg] + 2);
				x->kind = PATCH_KIND_PVOP_SAVES;
				pvop_saves_original(x, PVREG_RAX, orig);
				memcpy(at, orig, x->len);
				KTAP_CHECK(pvop_saves_parse(x, at, &mask) &&
					       mask == PVREG_RAX,
					   "%s: saves site not parsed", b.name);
				KTAP_CHECK(pvop_site_is_original(x, at),
					   "%s: saves site not original",
					   b.name);
				struct pvop_plan pl;
				bool consumed = false;
				const char *why = "";
				int kind = pvop_saves_plan(
				    x, &b.op[x->arg], mode, PATCH_PAD_SINGLE,
				    consume, PVREG_RAX, &pl, &consumed, &why);
				KTAP_CHECK(kind >= 0, "%s: saves plan: %s",
					   b.name, why);
				uint8_t out[PATCH_MAX_LEN];
				KTAP_CHECK(pvop_plan_apply(&pl, (uintptr_t)at,
							   out, &why),
					   "%s: apply: %s", b.name, why);
				bool want = consume &&
					    mode == PVOP_MODE_INLINE &&
					    be != PVOP_BACKEND_XEN;
				KTAP_CHECK(consumed == want,
					   "%s mode %d consume %d: consumed %d",
					   b.name, mode, consume, consumed);
				struct insn in[32];
				int n =
				    disasm((uintptr_t)at, out, x->len, in, 32);
				unsigned total = 0;
				for (int i = 0; i < n; i++)
					total += in[i].len;
				KTAP_CHECK(n > 0 && total == x->len,
					   "%s: decodes to %u of %u bytes",
					   b.name, total, x->len);
				if (n <= 0)
					continue;
				if (want) {
					KTAP_CHECK(!strcmp(in[0].text, "sti"),
						   "%s: consumed site starts "
						   "'%s'",
						   b.name, in[0].text);
					for (int i = 0; i < n; i++)
						KTAP_CHECK(
						    !strstr(in[i].text,
							    "push") &&
							!strstr(in[i].text,
								"pop"),
						    "%s: '%s' left", b.name,
						    in[i].text);
				} else {
					KTAP_CHECK(out[0] == 0x50 &&
						       out[x->len - 1] == 0x58,
						   "%s mode %d: saves not kept "
						   "(%02x ... %02x)",
						   b.name, mode, out[0],
						   out[x->len - 1]);
				}
				/* Pops that do not mirror are not a site. */
				at[x->len - 1] = 0x59;
				KTAP_CHECK(
				    !pvop_saves_parse(x, at, &mask),
				    "pop %%rcx after push %%rax accepted");
				*x = saved_rec;
			}
	}
	ktap_end_case();
}

static void validator(void)
{
	ktap_case("original_validator");
	lay_out_originals();
	struct patch_site *s = site_for(PVOP_IRQ_ENABLE);
	uint8_t *p = (uint8_t *)patch_site_addr(s);
	KTAP_CHECK(pvop_site_is_original(s, p), "original refused");
	p[6] = 0xcc;
	KTAP_CHECK(!pvop_site_is_original(s, p), "int3 padding accepted");
	lay_out_originals();
	p[2] ^= 8;
	KTAP_CHECK(!pvop_site_is_original(s, p),
		   "call to the wrong pv_ops slot accepted");
	/*
	 * No instruction is longer than 15 bytes: a "NOP" of more raises
	 * #UD, so the validator must refuse it, prefixes and all.
	 */
	/* 7 or 10 operand-size prefixes on nopw 0x0(%rax,%rax,1) */
	static const uint8_t nop15[15] = {0x66, 0x66, 0x66, 0x66, 0x66,
					  0x66, 0x66, 0x0f, 0x1f, 0x84,
					  0x00, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t nop18[18] = {0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
					  0x66, 0x66, 0x66, 0x66, 0x0f, 0x1f,
					  0x84, 0x00, 0x00, 0x00, 0x00, 0x00};
	uint8_t ninety[17];
	memset(ninety, 0x66, 16);
	ninety[16] = 0x90;
	KTAP_CHECK(nop_insn_len(nop15, 15) == 15, "15-byte NOP refused");
	KTAP_CHECK(nop_insn_len(nop18, 18) == 0,
		   "18-byte \"NOP\" accepted as one instruction (%zu)",
		   nop_insn_len(nop18, 18));
	KTAP_CHECK(!nops_valid(nop18, 18), "18-byte \"NOP\" accepted");
	KTAP_CHECK(nop_insn_len(ninety, 17) == 0,
		   "16 prefixes and a 0x90 accepted (%zu)",
		   nop_insn_len(ninety, 17));
	/* The padding gas emits for .nops, from gas itself (see below). */
	extern const uint8_t gas_nops[], gas_nops_end[];
	KTAP_CHECK(nops_valid(gas_nops, gas_nops_end - gas_nops),
		   "gas's .nops output not recognised as NOPs");
	for (unsigned n = 0; n <= PVOP_MAX_SLOT; n++) {
		uint8_t buf[PVOP_MAX_SLOT];
		for (int st = 0; st < PATCH_PAD_NR; st++) {
			nops_fill(buf, n, st);
			KTAP_CHECK(nops_valid(buf, n),
				   "own %u-byte %s padding "
				   "refused",
				   n, patch_pad_names[st]);
		}
	}
	ktap_end_case();
}

asm(".section .rodata\n.globl gas_nops, gas_nops_end\ngas_nops:\n"
    ".nops 1\n.nops 2\n.nops 3\n.nops 4\n.nops 5\n.nops 6\n.nops 7\n"
    ".nops 8\n.nops 9\n.nops 10\n.nops 11\n.nops 15\n.nops 19\n"
    "gas_nops_end:\n.text\n");

int main(void)
{
	text = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (text == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	signal(SIGSEGV, on_crash);
	signal(SIGILL, on_crash);
	signal(SIGBUS, on_crash);
	fake_cpu.self = &fake_cpu;
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, &fake_cpu)) {
		perror("arch_prctl(ARCH_SET_GS)");
		return 2;
	}
	ktap_begin(3 * 3 + 3);
	for (int b = 0; b < PVOP_BACKEND_NR; b++)
		for (int m = 0; m < 3; m++)
			patch_everything(b, m);
	inline_expectations();
	saves_sites();
	validator();
	return ktap_finish();
}
