/*
 * time.c - the tick counter and busy waits, common to all platforms.
 */
#include "kernel.h"
#include "percpu.h"
#include "pvops.h"
#include "timer.h"

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
