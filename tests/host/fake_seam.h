/*
 * fake_seam.h - the parts of the engine's seam (guest/include/
 * patch_seam.h) that the host tests of the engine (test_engine.c,
 * test_alt.c, test_live.c) fake alike: interrupt state, serialising,
 * unlocking, serving syncs and, with FAKE_SEAM_ONE_CPU defined before the
 * include, a machine of one CPU (the live path is never taken). Each test
 * writes its own seam_lock(), poke mapping and stop/resume: that is where
 * they check different things.
 */
#ifndef TINYPV_FAKE_SEAM_H
#define TINYPV_FAKE_SEAM_H

#include "patch_seam.h"

void seam_unlock(struct seam_lock *l)
{
	l->held = 0;
}

unsigned long seam_irq_save(void)
{
	return 0;
}

void seam_irq_restore(unsigned long flags)
{
	(void)flags;
}

void seam_serialise(void)
{
}

void seam_sync_serve(void)
{
}

#ifdef FAKE_SEAM_ONE_CPU
unsigned seam_cpu(void)
{
	return 0;
}

bool seam_others_online(void)
{
	return false;
}

unsigned seam_sync_others(void)
{
	return 0;
}
#endif

#endif
