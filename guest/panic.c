/*
 * panic.c - the way out when something is wrong: say why, show registers
 * and the call chain, and end QEMU with a failing status.
 */
#include "kernel.h"
#include "layout.h"
#include "percpu.h"
#include "platform.h"
#include "pvops.h"

static int in_panic;

static bool kernel_text(uint64_t a)
{
	return a >= (uint64_t)_text_start && a < (uint64_t)_text_end;
}

static bool kernel_stack_addr(uint64_t a)
{
	return a >= (uint64_t)_kernel_start && a < (uint64_t)_kernel_end &&
	       !(a & 7);
}

/* Walks the frame-pointer chain (the kernel builds with frame pointers). */
void backtrace_from(uint64_t rbp, uint64_t rip)
{
	printk("Call trace:\n");
	if (rip)
		printk("  [<%016lx>]\n", rip);
	for (int depth = 0; depth < 32 && kernel_stack_addr(rbp); depth++) {
		uint64_t *frame = (uint64_t *)rbp;
		uint64_t ret = frame[1];
		if (!kernel_text(ret))
			break;
		printk("  [<%016lx>]\n", ret);
		rbp = frame[0];
	}
}

void machine_exit(int code)
{
	if (platform && platform->exit)
		platform->exit(code);
	for (;;)
		halt();
}

void panic(const char *fmt, ...)
{
	va_list ap;
	uint64_t rsp, rbp;

	irq_disable();
	/* The first CPU to panic reports; another one waits for the end. */
	int me = (int)this_cpu()->cpu + 1, none = 0;
	if (!__atomic_compare_exchange_n(&in_panic, &none, me, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (none != me)
			for (;;)
				halt();
		printk("tinypv: PANIC: nested panic\n");
		machine_exit(EXIT_PANIC);
	}

	/*
	 * One printk for the whole line: another CPU's output (one still
	 * starting, say) lands before or after it, never inside it, and the
	 * harness reads the reason from this line.
	 */
	static char why[256];
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	printk("tinypv: PANIC: %s\n", why);

	asm volatile("mov %%rsp, %0; mov %%rbp, %1" : "=r"(rsp), "=r"(rbp));
	printk("cpu %lu RSP: %016lx RBP: %016lx CR2: %016lx CR3: %016lx\n",
	       this_cpu()->cpu, rsp, rbp, read_cr2(), read_cr3());
	backtrace_from(rbp, 0); /* panic's own frame leads to its caller */
	machine_exit(EXIT_PANIC);
}
