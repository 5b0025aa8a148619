/*
 * spinlock.c - the ticket lock and its paravirtual slow path
 * (spinlock.h).
 *
 * The waiter publishes (lock, ticket) in its struct percpu, then reads the
 * head; the unlocker writes the head, then reads the waiters. A full fence
 * between each side's write and read means at least one sees the other:
 * the waiter its turn, or the unlocker the waiter to kick. A kick that
 * comes before the waiter sleeps is not lost (Xen leaves the port pending,
 * and SCHEDOP_poll returns at once).
 */
#include "spinlock.h"
#include "kernel.h"
#include "percpu.h"
#include "pvops.h"
#include "smp.h"

#define NATIVE_WAIT_SPINS 1024

uint64_t native_lock_wait(const volatile uint32_t *ptr, uint64_t val)
{
	for (unsigned i = 0; i < NATIVE_WAIT_SPINS && *ptr == val; i++)
		asm volatile("pause");
	return 0;
}

static void slow_path(struct spinlock *l, uint32_t me)
{
	struct percpu *p = this_cpu();

	__atomic_fetch_add(&l->slow_entries, 1, __ATOMIC_RELAXED);
	p->lock_ticket = me;
	__atomic_store_n(&p->lock_waiting, l, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (;;) {
		uint32_t h = __atomic_load_n(&l->head, __ATOMIC_ACQUIRE);
		if (h == me)
			break;
		smp_serve_pending(); /* the rule: patch_seam.h */
		lock_wait(&l->head, h);
	}
	__atomic_store_n(&p->lock_waiting, NULL, __ATOMIC_RELAXED);
}

void spin_lock(struct spinlock *l)
{
	uint32_t me = __atomic_fetch_add(&l->tail, 1, __ATOMIC_ACQ_REL);

	for (unsigned i = 0; i < SPIN_THRESHOLD; i++) {
		if (__atomic_load_n(&l->head, __ATOMIC_ACQUIRE) == me)
			return;
		asm volatile("pause");
	}
	slow_path(l, me);
}

void spin_unlock(struct spinlock *l)
{
	uint32_t next = l->head + 1;

	__atomic_store_n(&l->head, next, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (unsigned c = 0; c < smp_online; c++) {
		struct percpu *p = smp_cpus[c];
		if (READ_ONCE(p->lock_waiting) == l && p->lock_ticket == next) {
			__atomic_fetch_add(&l->kicks, 1, __ATOMIC_RELAXED);
			lock_kick(c);
			break;
		}
	}
}
