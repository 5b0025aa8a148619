/*
 * test_user.c - the user task (guest/user.c): it starts, makes each
 * system call, exits with a status; what it may not do ends it with a
 * report, and the kernel carries on. Runs on every platform and in every
 * patch mode (the boot rows of scripts/test.py).
 */
#include "cmdline.h"
#include "ktest.h"
#include "layout.h"
#include "mm.h"
#include "platform.h"
#include "pvop_asm.h"
#include "pvop_backend.h"
#include "smp.h"
#include "timer.h"
#include "trap.h"
#include "user.h"

#define USER_RIP(prog) (USER_CODE_VA + (uint64_t)((prog)-__user_text_start))

static bool need_user(struct ktest_ctx *t)
{
	const char *why;
	if (!user_supported(&why)) {
		t->skip_reason = why;
		return false;
	}
	return true;
}

/*
 * This host's KVM is kvm_pvm, a software hypervisor (platform-facts.md):
 * a `syscall` from CPL 3 jumps to MSR_LSTAR but stays in user mode, and
 * `int N` from CPL 3 raises #UD. Tests that need a system call skip there
 * when (and only when) that is what happened; anywhere else it fails.
 */
#define KVM_NO_SYSCALL                                                         \
	"this host's KVM (kvm_pvm) runs the syscall entry in user mode: no "   \
	"system call reaches the kernel"
#define NEED_SYSCALLS(t, r)                                                    \
	do {                                                                   \
		if ((r).end == USER_SYSCALL_STAYED_USER) {                     \
			if (platform->id == PLATFORM_KVM)                      \
				KT_SKIP(t, KVM_NO_SYSCALL);                    \
			KT_ASSERT(t, false,                                    \
				  "syscall did not enter the kernel");         \
		}                                                              \
	} while (0)

KTEST(user, syscalls_and_exit)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_syscalls, 5, &r);
	NEED_SYSCALLS(t, r);
	KT_ASSERT(t, r.end == USER_EXITED,
		  "task ended by %s (vector %lu at %lx)", user_end_name(r.end),
		  r.vector, r.rip);
	KT_EXPECT(t, r.status == 12,
		  "exit status %lu, want 12 (0xbad: the "
		  "program's own check failed)",
		  r.status);
	KT_EXPECT(t, r.syscalls == 4, "%lu system calls, want 4", r.syscalls);
	KT_EXPECT(t, !strcmp(r.written, "hello from ring 3"), "write got '%s'",
		  r.written);
	/* Twice: the kernel stack and the entry state are reusable. */
	user_run(uprog_syscalls, 100, &r);
	KT_EXPECT(t, r.end == USER_EXITED && r.status == 107,
		  "second run: %s, status %lu", user_end_name(r.end), r.status);
}

static void expect_fault(struct ktest_ctx *t, const struct user_result *r,
			 unsigned vector, const char *prog)
{
	KT_EXPECT(t, r->end == USER_FAULT, "task ended by %s, want a fault",
		  user_end_name(r->end));
	KT_EXPECT(t, r->vector == vector, "vector %lu, want %u", r->vector,
		  vector);
	KT_EXPECT(t, r->rip == USER_RIP(prog), "user RIP %lx, want %lx", r->rip,
		  USER_RIP(prog));
	KT_EXPECT(t, r->syscalls == 0, "%lu system calls before the fault",
		  r->syscalls);
}

KTEST(user, cli_faults)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_cli, 0, &r);
	expect_fault(t, &r, VEC_GP, uprog_cli);
}

KTEST(user, cannot_read_kernel_memory)
{
	struct user_result r;
	uint64_t kva = (uint64_t)_text_start;

	if (!need_user(t))
		return;
	user_run(uprog_read, kva, &r);
	expect_fault(t, &r, VEC_PF, uprog_read);
	KT_EXPECT(t, r.cr2 == kva, "CR2 %lx, want %lx", r.cr2, kva);
	KT_EXPECT(t, r.error & 4, "error %#lx: not a user-mode access",
		  r.error);
	/*
	 * Natively the kernel's page is there but not user-accessible (a
	 * protection fault); under Xen PV the user page tables do not map
	 * the kernel at all.
	 */
	if (platform->id == PLATFORM_XEN_PV)
		KT_EXPECT(t, !(r.error & 1),
			  "error %#lx: the kernel page is mapped in the user "
			  "page tables",
			  r.error);
	else
		KT_EXPECT(t, r.error & 1, "error %#lx: want a protection fault",
			  r.error);
	/* Also the direct map / the page allocator's pages. */
	user_run(uprog_read, (uint64_t)&percpu0, &r);
	expect_fault(t, &r, VEC_PF, uprog_read);
}

KTEST(user, xen_user_tables_hold_no_kernel_mapping)
{
	if (platform->id != PLATFORM_XEN_PV)
		KT_SKIP(t,
			"Xen PV only: natively user and kernel share tables");
	struct user_result r;
	user_run(uprog_syscalls, 0,
		 &r); /* the tables exist from the first run */
	KT_ASSERT(t, xen_user_l4, "no user L4");
	unsigned task = (USER_BASE >> 39) & 511;
	for (unsigned i = 0; i < 512; i++) {
		/* Xen's own slots (256-271) are Xen's, not the guest kernel's. */
		if (i >= 256 && i < 272)
			continue;
		bool present = xen_user_l4[i] & PTE_P;
		KT_EXPECT(t, present == (i == task), "user L4 slot %u %s", i,
			  present ? "present" : "missing");
	}
}

KTEST(user, write_to_code_faults)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_write_code, 0, &r);
	KT_EXPECT(t, r.end == USER_FAULT && r.vector == VEC_PF, "%s vector %lu",
		  user_end_name(r.end), r.vector);
	KT_EXPECT(t, (r.error & 7) == 7,
		  "error %#lx, want user write protection", r.error);
	KT_EXPECT(t, r.cr2 == USER_RIP(uprog_write_code), "CR2 %lx", r.cr2);
}

KTEST(user, ud2_faults)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_ud2, 0, &r);
	expect_fault(t, &r, VEC_UD, uprog_ud2);
}

KTEST(user, noncanonical_faults)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_noncanonical, 0, &r);
	KT_EXPECT(t, r.end == USER_FAULT && r.vector == VEC_GP, "%s vector %lu",
		  user_end_name(r.end), r.vector);
}

KTEST(user, bad_syscall_number)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_bad_syscall, 0, &r);
	NEED_SYSCALLS(t, r);
	KT_EXPECT(t, r.end == USER_BAD_SYSCALL, "ended by %s",
		  user_end_name(r.end));
	KT_EXPECT(t, r.status == SYS_NR + 1000, "number %lu", r.status);
	KT_EXPECT(t,
		  r.rip > USER_RIP(uprog_bad_syscall) &&
		      r.rip <= USER_RIP(uprog_bad_syscall) + 8,
		  "user RIP %lx, want just after the syscall at %lx", r.rip,
		  USER_RIP(uprog_bad_syscall));
}

KTEST(user, bad_pointers)
{
	struct user_result r;
	static const struct {
		uint64_t ptr;
		bool unmapped;
	} cases[] = {
	    {USER_HOLE_VA, true},
	    {USER_HOLE_VA - 4, true}, /* its first 4 bytes are mapped */
	    {0xffffffff80100000UL, false},
	    {0, false},
	    {USER_END_VA - 4, false}, /* runs off the task's space */
	};

	if (!need_user(t))
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		user_run(uprog_bad_pointer, cases[i].ptr, &r);
		NEED_SYSCALLS(t, r);
		KT_EXPECT(t, r.end == USER_BAD_POINTER, "%lx: ended by %s",
			  cases[i].ptr, user_end_name(r.end));
		KT_EXPECT(t, r.status == cases[i].unmapped, "%lx: unmapped %lu",
			  cases[i].ptr, r.status);
		uint64_t want = cases[i].ptr == USER_HOLE_VA - 4 ? USER_HOLE_VA
								 : cases[i].ptr;
		KT_EXPECT(t, r.cr2 == want, "%lx: bad address %lx, want %lx",
			  cases[i].ptr, r.cr2, want);
	}
}

/*
 * A system call runs with interrupts on (the entry's irq_enable site,
 * whose saves are consumed natively): a tick arrives on the task's kernel
 * stack during the call and returns into it.
 */
KTEST(user, interrupt_during_system_call)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_wait_tick, 0, &r);
	NEED_SYSCALLS(t, r);
	KT_ASSERT(t, r.end == USER_EXITED, "ended by %s (vector %lu at %lx)",
		  user_end_name(r.end), r.vector, r.rip);
	KT_EXPECT(
	    t, r.status == 1,
	    "no tick within 1 s of the system call: interrupts off in it?");
	KT_EXPECT(t, r.irqs == 0, "%lu interrupts counted as from user mode",
		  r.irqs);
}

/*
 * int $0x80 from ring 3 through a DPL-0 gate is #GP with error code
 * 0x80 << 3 | 2. QEMU 7.2 gets that code wrong for 64-bit IDT entries
 * (vector << 4 | 2: /work/shared/platform-facts.md, QEMU issue 1382).
 */
KTEST(user, int80_gp_error_code)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_int80, 0, &r);
	if (platform->id == PLATFORM_KVM && r.end == USER_FAULT &&
	    r.vector == VEC_UD)
		KT_SKIP(t,
			"this host's KVM (kvm_pvm) raises #UD for int N from "
			"CPL 3");
	KT_ASSERT(t, r.end == USER_FAULT && r.vector == VEC_GP,
		  "int $0x80: %s vector %lu", user_end_name(r.end), r.vector);
	if (r.error == (0x80 << 4 | 2))
		KT_SKIP(t, "QEMU 7.2 defect: #GP error code of int N from CPL3 "
			   "indexes a 64-bit IDT as 16-byte units (QEMU issue "
			   "1382)");
	KT_EXPECT(t, r.error == (0x80 << 3 | 2), "error %#lx, want %#x",
		  r.error, 0x80 << 3 | 2);
}

KTEST(user, interrupt_in_user_mode)
{
	struct user_result r;

	if (!need_user(t))
		return;
	/* Bounded: at most 2^30 iterations (the tick is 10 ms). */
	user_run(uprog_wait_irq, 1UL << 30, &r);
	KT_ASSERT(t, r.end == USER_FAULT && r.vector == VEC_UD,
		  "ended by %s (vector %lu)", user_end_name(r.end), r.vector);
	KT_EXPECT(
	    t, r.rip == USER_RIP(uprog_wait_irq_seen) && r.irqs > 0,
	    "no interrupt reached the kernel from user mode (ended at %lx, "
	    "irqs %lu)",
	    r.rip, r.irqs);
}

/* A fault the kernel handles and returns from, ten times over. */
KTEST(user, handled_fault_returns)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_fault_loop, 10, &r);
	KT_EXPECT(t,
		  r.end == USER_FAULT && r.vector == VEC_UD &&
		      r.rip == USER_RIP(uprog_fault_loop_done),
		  "ended by %s (vector %lu) at %lx, want the ud2 at %lx",
		  user_end_name(r.end), r.vector, r.rip,
		  USER_RIP(uprog_fault_loop_done));
	KT_EXPECT(t, r.probes == 10, "%lu faults handled, want 10", r.probes);
}

KTEST(user, syscall_loop)
{
	struct user_result r;

	if (!need_user(t))
		return;
	user_run(uprog_syscall_loop, 1000, &r);
	NEED_SYSCALLS(t, r);
	KT_EXPECT(t, r.end == USER_EXITED && r.status == 0,
		  "ended by %s, status %lu", user_end_name(r.end), r.status);
	KT_EXPECT(t, r.syscalls == 1001, "%lu system calls", r.syscalls);
}

/*
 * The entry sites hold what the boot report says: in inline mode,
 * natively swapgs / swapgs; iretq / the sysretq sequence, under Xen the
 * iret hypercall (swapgs: NOPs); and the saves around the syscall
 * entry's irq_enable are gone exactly where the inline bytes clobber no
 * saved register (native sti) and pvsaves=keep was not given.
 */
KTEST(user, entry_sites_patched_as_reported)
{
	static const uint8_t native_swapgs[] = {0x0f, 0x01, 0xf8};
	static const uint8_t native_iret[] = {0x0f, 0x01, 0xf8, 0x48, 0xcf};
	static const uint8_t native_sysret_end[] = {0x0f, 0x01, 0xf8,
						    0x48, 0x0f, 0x07};
	static const uint8_t xen_iret[] = {0x6a, 0x00, 0xe9};
	static const uint8_t xen_sysret[] = {0x68, 0x00, 0x01,
					     0x00, 0x00, 0xe9};
	bool xen = pvop_current->id == PVOP_BACKEND_XEN;
	unsigned seen[PVOP_NR] = {0};

	if (pvop_mode != PVOP_MODE_INLINE)
		KT_SKIP(t,
			"patch mode is not inline (sites_hold_intended_bytes "
			"checks the other modes)");
	for (const struct pvop_asm_site *a = __pvop_asm_start;
	     a < __pvop_asm_end; a++) {
		const uint8_t *p =
		    (const uint8_t *)((uintptr_t)&a->site + (intptr_t)a->site);
		seen[a->op]++;
		switch (a->op) {
		case PVOP_SWAPGS:
			KT_EXPECT(t,
				  xen ? p[0] == 0x90 || p[0] == 0x66 ||
					    p[0] == 0x0f
				      : !memcmp(p, native_swapgs, 3),
				  "swapgs site %p: %02x %02x %02x", p, p[0],
				  p[1], p[2]);
			if (xen)
				KT_EXPECT(t, memcmp(p, native_swapgs, 3),
					  "swapgs inline under Xen");
			break;
		case PVOP_IRET_USER:
			KT_EXPECT(t,
				  xen ? !memcmp(p, xen_iret, 3)
				      : !memcmp(p, native_iret, 5),
				  "iret_user site %p: %02x %02x %02x", p, p[0],
				  p[1], p[2]);
			break;
		case PVOP_SYSRET_USER:
			KT_EXPECT(t,
				  xen ? !memcmp(p, xen_sysret, 6)
				      : !memcmp(p + 8, native_sysret_end, 6),
				  "sysret_user site %p: %02x %02x %02x", p,
				  p[0], p[1], p[2]);
			break;
		case PVOP_IRQ_ENABLE:
			if (!a->saved)
				break;
			bool consume = !xen && pvop_consume_saves;
			KT_EXPECT(
			    t, consume ? p[0] == 0xfb : p[0] == 0x50,
			    "irq_enable saves site %p starts %02x, want %s", p,
			    p[0], consume ? "sti (consumed)" : "push %rax");
			KT_EXPECT(t,
				  pvop_saves_nr == 1 &&
				      pvop_saves[0].consumed == consume,
				  "report says saves %s",
				  pvop_saves_nr && pvop_saves[0].consumed
				      ? "consumed"
				      : "kept");
			break;
		}
	}
	KT_EXPECT(t,
		  seen[PVOP_SWAPGS] == 1 && seen[PVOP_IRET_USER] == 2 &&
		      seen[PVOP_SYSRET_USER] == 1,
		  "asm sites: swapgs %u iret_user %u sysret_user %u",
		  seen[PVOP_SWAPGS], seen[PVOP_IRET_USER],
		  seen[PVOP_SYSRET_USER]);
}

/*
 * Guest instructions per empty system call: (T(2n) - T(n)) / n, the
 * median of 3 (a tick in one of the runs moves one of them).
 */
static uint64_t syscall_cost(struct user_result *r)
{
	uint64_t d[3];
	const unsigned n = 100;

	user_quiet = true;
	user_run(uprog_syscall_loop, n, r); /* the first run after patching */
	for (int b = 0; b < 3; b++) {
		uint64_t t0 = rdtsc_ordered();
		user_run(uprog_syscall_loop, n, r);
		uint64_t t1 = rdtsc_ordered();
		user_run(uprog_syscall_loop, 2 * n, r);
		uint64_t t2 = rdtsc_ordered();
		d[b] = t2 - t1 > t1 - t0 ? ((t2 - t1) - (t1 - t0)) / n : 0;
	}
	user_quiet = false;
	uint64_t lo = d[0] < d[1] ? d[0] : d[1], hi = d[0] < d[1] ? d[1] : d[0];
	return d[2] < lo ? lo : d[2] > hi ? hi : d[2];
}

/*
 * Exact, under icount: patching the saves away natively takes exactly
 * the push and the pop out of every system call; under Xen they stay
 * (the inline irq_enable clobbers rax) and so does the count. Re-patches
 * with pvsaves=keep and back, as make bench compares in two boots.
 */
KTEST(user, consumed_saves_are_two_instructions)
{
	struct user_result r;
	bool was = pvop_consume_saves;

	if (!opts.icount)
		KT_SKIP(t, "needs icount (exact guest instruction counts)");
	if (smp_online > 1)
		KT_SKIP(t, "another CPU's instructions advance the same clock");
	if (pvop_mode != PVOP_MODE_INLINE)
		KT_SKIP(t, "patch mode is not inline: nothing is consumed");
	if (!need_user(t))
		return;
	pvop_consume_saves = true;
	pvop_patch_all(pvop_current, pvop_mode, pvop_pad);
	uint64_t consumed = syscall_cost(&r);
	NEED_SYSCALLS(t, r);
	pvop_consume_saves = false;
	pvop_patch_all(pvop_current, pvop_mode, pvop_pad);
	uint64_t kept = syscall_cost(&r);
	pvop_consume_saves = was;
	pvop_patch_all(pvop_current, pvop_mode, pvop_pad);
	printk("    # user.saves: %lu guest instructions per system call with "
	       "the saves consumed, %lu kept\n",
	       consumed, kept);
	uint64_t want = pvop_current->id == PVOP_BACKEND_XEN ? 0 : 2;
	KT_EXPECT(t, kept - consumed == want,
		  "kept %lu - consumed %lu = %lu, want %lu", kept, consumed,
		  kept - consumed, want);
}
