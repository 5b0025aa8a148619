/*
 * spinlock.h - a ticket lock between CPUs whose slow path waits through
 * the lock_wait / lock_kick pvops (pvops.h).
 *
 * A CPU takes the next ticket and spins (pause) for SPIN_THRESHOLD rounds
 * for its turn. If its turn has not come, it enters the slow path: it
 * says which lock and ticket it waits for in its struct percpu, counts the
 * entry in the lock, and waits with lock_wait() until the lock's head
 * moves (native: a bounded pause loop; Xen PV: SCHEDOP_poll on its own
 * lock event channel, so a waiting vCPU gives up its physical CPU). The
 * unlocker advances the head and, if the CPU holding the next ticket is in
 * the slow path, lock_kick()s it (native: nothing; Xen: EVTCHNOP_send).
 *
 *   static struct spinlock l;
 *   spin_lock(&l);
 *   ... at most one CPU here ...
 *   spin_unlock(&l);
 *
 * Not re-entrant; interrupts stay as they are (a lock also taken by an
 * interrupt handler must be taken with interrupts off).
 */
#ifndef TINYPV_SPINLOCK_H
#define TINYPV_SPINLOCK_H

#include <stdint.h>

#define SPIN_THRESHOLD 256

struct spinlock {
	volatile uint32_t head; /* the ticket being served */
	volatile uint32_t tail; /* the next ticket to hand out */
	uint64_t slow_entries;	/* times a CPU went to lock_wait for it */
	uint64_t kicks;		/* lock_kick()s its unlockers sent */
};

void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);

/* The native lock_wait (through a thunk): pause while *ptr == val. */
uint64_t native_lock_wait(const volatile uint32_t *ptr, uint64_t val);

#endif
