/*
 * printk.c - formatted output to the platform console.
 */
#include "kernel.h"
#include "percpu.h"
#include "platform.h"
#include "pvops.h"
#include "serial.h"
#include "static_call.h"
#include "timer.h"

/*
 * Every message goes out through a static call: a direct call to the
 * platform's console once patched. Until a platform is selected it is
 * the no-op (there is nowhere to write).
 */
DEFINE_STATIC_CALL_NULL(console_write, serial_write);

void platform_select(const struct platform *p)
{
	platform = p;
	static_call_update(console_write, p->console_write);
}

/*
 * One CPU writes a message at a time, so lines from several CPUs never
 * mix. The owner may re-enter (a fault while printing); a CPU waits at
 * most about a second for the lock, then writes anyway (the owner may
 * have died holding it), so a report is never lost to a stuck lock.
 */
static volatile int console_owner = -1;

static bool console_lock(void)
{
	int me = (int)this_cpu()->cpu, free = -1;
	uint64_t t0 = rdtsc(), limit = (tsc_khz ? tsc_khz : 1000000) * 1000;

	if (console_owner == me)
		return false; /* nested: the outer call unlocks */
	while (!__atomic_compare_exchange_n(&console_owner, &free, me, false,
					    __ATOMIC_ACQUIRE,
					    __ATOMIC_RELAXED)) {
		free = -1;
		if (rdtsc() - t0 > limit)
			return false;
		asm volatile("pause");
	}
	return true;
}

static void console_unlock(bool locked)
{
	if (locked)
		__atomic_store_n(&console_owner, -1, __ATOMIC_RELEASE);
}

#define PRINTK_MAX 512 /* bytes of one printk, with the NUL */

/*
 * A message longer than the buffer is cut: what fits is written, then a
 * marker saying how much was lost, then a newline, so the next message
 * still starts a line of its own.
 */
int vprintk(const char *fmt, va_list ap)
{
	char buf[PRINTK_MAX];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (!platform || !platform->console_write || n < 0)
		return n;
	unsigned long fl = irq_save();
	bool locked = console_lock();
	if (n < (int)sizeof(buf)) {
		static_call(console_write)(buf, n);
		console_unlock(locked);
		irq_restore(fl);
		return n;
	}
	char mark[48];
	int m = snprintf(mark, sizeof(mark), " [printk: %d more bytes cut]\n",
			 n - (int)(sizeof(buf) - 1));
	static_call(console_write)(buf, sizeof(buf) - 1);
	static_call(console_write)(mark, m);
	console_unlock(locked);
	irq_restore(fl);
	return n;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}
