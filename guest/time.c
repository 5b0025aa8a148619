/*
 * time.c - the tick counter and busy waits, common to all platforms.
 */
#include "kernel.h"
#include "percpu.h"
#include "pvops.h"
#include "static_call.h"
#include "timer.h"

/*
 * Every platform's tick interrupt calls static_call(tick)(): a direct call
 * to tick_handler_common() once patched, retargeted at run time by whoever
 * wants the tick (tests/kernel/test_static_call.c hooks it).
 */
DEFINE_STATIC_CALL(tick, tick_handler_common);

uint64_t ticks(void)
{
	return READ_ONCE(this_cpu()->ticks);
}

void tick_handler_common(void)
{
	this_cpu()->ticks++;
}

void delay_ns(uint64_t ns)
{
	uint64_t end = clock_read() + ns;
	while (clock_read() < end)
		;
}
