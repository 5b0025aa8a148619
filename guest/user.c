/*
 * user.c - the user task: its address space, running it, its system
 * calls, and what ends it (user.h).
 *
 * The task's pages are the code section (.user.text, read-only and
 * executable), a data page the kernel also writes (struct user_shared)
 * and a stack page, mapped at USER_*_VA by the platform (natively into
 * the kernel's page tables with the user bit, under Xen PV into a
 * separate user L4 that Xen loads whenever the vCPU is in user mode).
 * Entries from user mode run on user_kstack (load_sp0); when the task
 * ends, user_return_to_kernel() abandons that stack and resumes the
 * caller of user_enter().
 */
#include "user.h"
#include "kernel.h"
#include "layout.h"
#include "platform.h"
#include "pvops.h"
#include "trap.h"

uint64_t user_kernel_rsp; /* entry/user.S: the kernel's stack in user_run */
uint64_t user_cs, user_ss;
bool user_quiet;

static uint8_t user_data_page[PAGE_SIZE] __attribute__((aligned(4096)));
static uint8_t user_stack_page[PAGE_SIZE] __attribute__((aligned(4096)));
static uint8_t user_kstack[4 * PAGE_SIZE] __attribute__((aligned(16)));
static bool user_ready;
static struct percpu *user_cpu; /* the CPU whose entry state was set up */
static struct user_result *cur;

void user_enter(uint64_t rip, uint64_t rsp, uint64_t arg);
extern char uentry_syscall_native[];
void __noreturn user_return_to_kernel(void);
void user_syscall(struct trap_frame *f);

#define shared ((struct user_shared *)user_data_page)

/* The probe fault the benchmark takes: mov (%rsi),%rax at USER_HOLE_VA. */
static const uint8_t probe_insn[3] = {0x48, 0x8b, 0x06};

bool user_supported(const char **why)
{
	if (!platform->user_init) {
		*why = "this platform has no user mode";
		return false;
	}
	return true;
}

const char *user_end_name(enum user_end e)
{
	switch (e) {
	case USER_EXITED:
		return "exited";
	case USER_FAULT:
		return "fault";
	case USER_BAD_SYSCALL:
		return "bad system call";
	case USER_BAD_POINTER:
		return "bad pointer";
	case USER_SYSCALL_STAYED_USER:
		return "syscall stayed in user mode";
	}
	return "?";
}

static void setup(void)
{
	platform->user_init();
	platform->user_map(USER_CODE_VA, __user_text_start, false, true);
	platform->user_map(USER_DATA_VA, user_data_page, true, false);
	platform->user_map(USER_STACK_VA, user_stack_page, true, false);
	if (platform->user_activate)
		platform->user_activate();
	user_cpu = this_cpu();
	user_ready = true;
}

static void report(const struct user_result *r)
{
	switch (r->end) {
	case USER_EXITED:
		printk("user: task exited with status %lu after %lu system "
		       "calls\n",
		       r->status, r->syscalls);
		break;
	case USER_FAULT:
		printk("user: task killed: %s (vector %lu) error %#lx at user "
		       "RIP %016lx",
		       exception_name(r->vector), r->vector, r->error, r->rip);
		if (r->vector == VEC_PF)
			printk(", CR2 %016lx", r->cr2);
		printk("\n");
		break;
	case USER_BAD_SYSCALL:
		printk("user: task killed: bad system call number %lu at user "
		       "RIP %016lx\n",
		       r->status, r->rip);
		break;
	case USER_BAD_POINTER:
		printk("user: task killed: bad pointer %016lx (%s) passed to "
		       "the kernel at user RIP %016lx\n",
		       r->cr2, r->status ? "unmapped" : "not a user address",
		       r->rip);
		break;
	case USER_SYSCALL_STAYED_USER:
		printk("user: task killed: its syscall reached the entry point "
		       "%016lx still in user mode (%s, error %#lx): this CPU "
		       "does not enter the kernel on syscall\n",
		       r->rip, exception_name(r->vector), r->error);
		break;
	}
}

void user_run(const char *prog, uint64_t arg, struct user_result *r)
{
	BUG_ON(prog < __user_text_start || prog >= __user_text_end);
	BUG_ON(cur);
	if (!user_ready)
		setup();
	/* The system call MSRs (Xen: the callback) are this CPU's only. */
	if (this_cpu() != user_cpu)
		panic("user: the task runs on cpu %lu only (asked on cpu %lu)",
		      user_cpu->cpu, this_cpu()->cpu);
	memset(r, 0, sizeof(*r));
	memset(user_data_page, 0, sizeof(user_data_page));
	cur = r;
	uint64_t top = (uint64_t)user_kstack + sizeof(user_kstack);
	this_cpu()->user_kstack = top;
	load_sp0(top);
	unsigned long fl = irq_save();
	user_enter(USER_CODE_VA + (uint64_t)(prog - __user_text_start),
		   USER_STACK_VA + PAGE_SIZE, arg);
	irq_restore(fl);
	cur = NULL;
	if (!user_quiet)
		report(r);
}

static void __noreturn end_task(enum user_end how)
{
	cur->end = how;
	user_return_to_kernel();
}

/*
 * Copies n bytes from the task. False, with *bad the first refused
 * address and *unmapped whether it was unmapped (else: outside the
 * task's address space, e.g. a kernel address).
 */
static bool copy_from_user(void *dst, uint64_t src, uint64_t n, uint64_t *bad,
			   bool *unmapped)
{
	if (src < USER_BASE || src > USER_END_VA || n > USER_END_VA - src) {
		*bad = src;
		*unmapped = false;
		return false;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint8_t v = 0;
		bool ok = false;
		asm volatile("1: movb (%[p]), %[v]\n\t"
			     "movb $1, %[ok]\n"
			     "2:\n" EXTABLE_JUMP("1b", "2b", "2b")
			     : [v] "+q"(v), [ok] "+q"(ok)
			     : [p] "r"(src + i)
			     : "memory");
		if (!ok) {
			*bad = src + i;
			*unmapped = true;
			return false;
		}
		((uint8_t *)dst)[i] = v;
	}
	return true;
}

void user_syscall(struct trap_frame *f)
{
	uint64_t bad;
	bool unmapped;

	BUG_ON(!cur);
	cur->syscalls++;
	cur->rip = f->rip;
	switch (f->rax) {
	case SYS_EXIT:
		cur->status = f->rdi;
		end_task(USER_EXITED);
	case SYS_NOP:
		f->rax = 0;
		return;
	case SYS_ADD:
		f->rax = f->rdi + f->rsi + f->rdx;
		return;
	case SYS_WRITE:
		if (f->rsi >= sizeof(cur->written)) {
			f->rax = -22UL; /* EINVAL */
			return;
		}
		if (!copy_from_user(cur->written, f->rdi, f->rsi, &bad,
				    &unmapped)) {
			cur->cr2 = bad;
			cur->status = unmapped;
			end_task(USER_BAD_POINTER);
		}
		cur->written[f->rsi] = '\0';
		if (!user_quiet)
			printk("user: write: %s\n", cur->written);
		f->rax = f->rsi;
		return;
	case SYS_WAIT_TICK: {
		/* Interrupts are on here (the entry's irq_enable site): a tick
		 * arrives on this stack and returns to this loop. */
		uint64_t ticks = this_cpu()->ticks;
		uint64_t until = clock_read() + 1000000000;
		while (this_cpu()->ticks == ticks && clock_read() < until)
			asm volatile("pause");
		f->rax = this_cpu()->ticks != ticks;
		return;
	}
	default:
		cur->status = f->rax;
		end_task(USER_BAD_SYSCALL);
	}
}

void user_exception(struct trap_frame *f, uint64_t cr2)
{
	uint8_t insn[3];
	uint64_t bad;
	bool unmapped;

	if (!cur) {
		dump_frame(f);
		panic("%s from user mode with no user task",
		      exception_name(f->vector));
	}
	cur->rip = f->rip;
	if (f->vector == VEC_PF && cr2 == USER_HOLE_VA &&
	    copy_from_user(insn, f->rip, 3, &bad, &unmapped) &&
	    !memcmp(insn, probe_insn, 3)) {
		cur->probes++;
		f->rax = USER_PROBE_VALUE;
		f->rip += 3;
		return;
	}
	cur->vector = f->vector;
	cur->error = f->error;
	cur->cr2 = cr2;
	end_task(f->rip == (uint64_t)uentry_syscall_native
		     ? USER_SYSCALL_STAYED_USER
		     : USER_FAULT);
}

void user_interrupt_seen(void)
{
	if (!cur)
		return;
	cur->irqs++;
	shared->irqs_from_user++;
}
