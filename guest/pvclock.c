/*
 * pvclock.c - read a pvclock (struct vcpu_time_info, the layout Xen and
 * KVM share) as nanoseconds.
 *
 * The hypervisor bumps `version` to odd before updating and to even after,
 * so a reader retries until it sees the same even version on both sides
 * of its reads.
 */
#include "pvclock.h"
#include "kernel.h"
#include "timer.h"

static uint64_t scale_delta(uint64_t delta, uint32_t mul, int8_t shift)
{
	if (shift < 0)
		delta >>= -shift;
	else
		delta <<= shift;
	return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

uint64_t pvclock_read_system(const volatile struct vcpu_time_info *t)
{
	uint32_t version;
	uint64_t ns;

	do {
		version = t->version;
		barrier();
		uint64_t delta = rdtsc_ordered() - t->tsc_timestamp;
		ns = t->system_time +
		     scale_delta(delta, t->tsc_to_system_mul, t->tsc_shift);
		barrier();
	} while ((version & 1) || version != t->version);
	return ns;
}

uint64_t pvclock_tsc_khz(const volatile struct vcpu_time_info *t)
{
	/* ns = ((tsc << shift) * mul) >> 32, so khz = 1e6 * 2^32 / mul / 2^shift */
	uint64_t khz = (1000000ULL << 32) / t->tsc_to_system_mul;
	if (t->tsc_shift < 0)
		khz <<= -t->tsc_shift;
	else
		khz >>= t->tsc_shift;
	return khz;
}
