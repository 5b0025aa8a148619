/*
 * user.h - the user task: one small program (guest/user_prog.S) run in
 * user mode at USER_CODE_VA (layout.h) until it exits or faults.
 *
 *   struct user_result r;
 *   user_run(uprog_syscalls, 5, &r);    // returns when the task ends
 *   if (r.end == USER_EXITED && r.status == 12) ...
 *
 * Entering goes through the iret_user pvop, system calls come back
 * through `syscall` (natively MSR_LSTAR, under Xen PV the syscall
 * callback) and return through sysret_user; a trap from user mode takes
 * the usual trap path, whose entry and exit are pvop sites too (swapgs,
 * iret_user). Under Xen PV the task runs on page tables of its own
 * (MMUEXT_NEW_USER_BASEPTR) that map only the task's pages.
 *
 * A fault in user mode, a bad system call number or a bad pointer handed
 * to the kernel ends the task with a report line naming the user RIP;
 * the kernel carries on. Only one task exists, and only the CPU that ran
 * it first may run it (the system call entry is set up on that CPU).
 */
#ifndef TINYPV_USER_H
#define TINYPV_USER_H

/* System call numbers (%rax). */
#define SYS_EXIT 0	/* rdi: status; does not return */
#define SYS_NOP 1	/* returns 0 */
#define SYS_ADD 2	/* returns rdi + rsi + rdx */
#define SYS_WRITE 3	/* rdi: buffer, rsi: length (at most 256); returns it */
#define SYS_WAIT_TICK 4 /* waits (1 s at most) for a timer tick: 1, or 0 */
#define SYS_NR 5

#define USER_BAD_STATUS 0xbad	/* a program's own check failed */
#define USER_PROBE_VALUE 0x5a5a /* %rax after a handled probe fault */
#define USER_SHARED_IRQS 0	/* struct user_shared.irqs_from_user */

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>

enum user_end {
	USER_EXITED,	  /* SYS_EXIT: status */
	USER_FAULT,	  /* an exception in user mode: vector, error, cr2 */
	USER_BAD_SYSCALL, /* status: the number */
	USER_BAD_POINTER, /* cr2: the pointer */
	/*
	 * A `syscall` that did not enter the kernel: the CPU went to the
	 * syscall entry point but stayed in user mode (and faulted there).
	 * This host's KVM (kvm_pvm, a software hypervisor) does that.
	 */
	USER_SYSCALL_STAYED_USER,
};

struct user_result {
	enum user_end end;
	uint64_t status;
	uint64_t vector, error, cr2;
	uint64_t rip;	   /* user RIP of the last entry to the kernel */
	uint64_t syscalls; /* system calls made */
	uint64_t irqs;	   /* interrupts taken while in user mode */
	uint64_t probes;   /* handled faults (uprog_fault_loop) */
	char written[257]; /* what SYS_WRITE received, NUL-terminated */
};

/* The data page, readable by the task (USER_DATA_VA). */
struct user_shared {
	volatile uint64_t irqs_from_user;
};

/* Programs (user_prog.S): run them with user_run(). */
extern char uprog_syscalls[], uprog_cli[], uprog_read[], uprog_write_code[],
    uprog_ud2[], uprog_noncanonical[], uprog_bad_syscall[], uprog_bad_pointer[],
    uprog_int80[], uprog_wait_irq[], uprog_syscall_loop[], uprog_fault_loop[],
    uprog_fault_loop_done[], uprog_wait_irq_seen[], uprog_wait_tick[];

/* Runs prog in user mode with %rdi = arg until it ends; fills *r. */
void user_run(const char *prog, uint64_t arg, struct user_result *r);
/* Set: user_run() prints no report line (the benchmark). */
extern bool user_quiet;
/* Whether this platform runs the task (it is set up at first use). */
bool user_supported(const char **why);
const char *user_end_name(enum user_end e);

struct trap_frame;
/* trap.c: an exception from user mode (ends the task or returns). */
void user_exception(struct trap_frame *f, uint64_t cr2);
void user_interrupt_seen(void);

/* Platform parts (struct platform: user_init, user_map, user_activate). */
void native_user_init(void);
void native_user_map(uint64_t va, const void *kva, bool writable, bool exec);
void xen_user_init(void);
void xen_user_map(uint64_t va, const void *kva, bool writable, bool exec);
void xen_user_activate(void);
/* Xen: the task's own L4 (mapped read-only), for the tests. */
extern const uint64_t *xen_user_l4;
extern uint64_t user_cs, user_ss; /* entry/user.S pushes them */
extern char __user_text_start[], __user_text_end[];
#endif

#endif
