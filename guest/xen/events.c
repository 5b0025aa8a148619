/*
 * events.c - Xen event channels (2-level ABI) and the timer tick.
 *
 * Xen raises an upcall (entry/traps.S: xen_upcall_entry, delivered with
 * events masked) when vcpu_info.evtchn_upcall_pending is set and the mask
 * is clear. The handler clears upcall_pending, takes the selector word
 * (which 64-port groups have news), and for each pending, unmasked port
 * bound to this CPU clears its pending bit and calls the port's handler;
 * it loops until Xen has nothing more. The pending bits are shared by all
 * vCPUs: a port of another vCPU is left alone (its owner was told through
 * its own selector), or one vCPU would take, say, another's timer tick. Returning through the iret hypercall restores the
 * mask from the saved IF.
 *
 * IPIs: each vCPU binds one port per IPI vector (EVTCHNOP_bind_ipi, which
 * delivers to the vCPU that bound it); send_ipi is EVTCHNOP_send on the
 * target's port, and the port's handler hands the vector to
 * smp_ipi_handle() on the bound vCPU.
 *
 * The tick: VIRQ_TIMER bound to a port, Xen's default periodic timer
 * stopped, and each tick arms the next set_timer_op one-shot.
 */
#include "hypercall.h"
#include "kernel.h"
#include "percpu.h"
#include "platform.h"
#include "pvclock.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"
#include "trap.h"
#include "xen.h"

#define NR_PORTS 1024

static evtchn_handler_t handlers[NR_PORTS];
/*
 * The vCPU a port is bound to (its Xen id, struct percpu apic_id; not the
 * CPU number, which the next vCPU reuses when one fails to come up).
 */
static uint16_t port_vcpu[NR_PORTS];
static uint64_t delivered;
static uint64_t tick_period_ns;

uint64_t xen_events_delivered(void)
{
	return delivered;
}

static void clear_bit_atomic(volatile xen_ulong_t *word, unsigned bit)
{
	asm volatile("lock btrq %1, %0"
		     : "+m"(*word)
		     : "r"((uint64_t)bit)
		     : "memory", "cc");
}

static void handle_port(evtchn_port_t port)
{
	__atomic_fetch_add(&delivered, 1, __ATOMIC_RELAXED);
	if (port < NR_PORTS && handlers[port])
		handlers[port](port);
	else
		printk("xen: event on unbound port %u\n", port);
}

static void upcall(struct trap_frame *f)
{
	struct vcpu_info *v = &this_cpu()->vcpu_info;
	(void)f;

	this_cpu()->irqs++;
	while (READ_ONCE(v->evtchn_upcall_pending)) {
		WRITE_ONCE(v->evtchn_upcall_pending, 0);
		xen_ulong_t sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0,
						      __ATOMIC_SEQ_CST);
		while (sel) {
			unsigned w = __builtin_ctzl(sel);
			sel &= sel - 1;
			xen_ulong_t pend =
			    READ_ONCE(xen_shared->evtchn_pending[w]) &
			    ~READ_ONCE(xen_shared->evtchn_mask[w]);
			while (pend) {
				unsigned b = __builtin_ctzl(pend);
				pend &= pend - 1;
				/* Another vCPU's port: its own upcall takes it. */
				if (port_vcpu[w * 64 + b] !=
				    this_cpu()->apic_id)
					continue;
				clear_bit_atomic(&xen_shared->evtchn_pending[w],
						 b);
				handle_port(w * 64 + b);
			}
		}
	}
}

/* Handle port on this CPU (the one its event was bound to deliver to). */
void xen_evtchn_bind(evtchn_port_t port, evtchn_handler_t fn)
{
	BUG_ON(port >= NR_PORTS);
	port_vcpu[port] = (uint16_t)this_cpu()->apic_id;
	handlers[port] = fn;
	/* Xen's unmask re-raises an event that arrived while masked. */
	struct evtchn_unmask unmask = {.port = port};
	HYPERVISOR_event_channel_op(EVTCHNOP_unmask, &unmask);
}

evtchn_port_t xen_bind_virq(uint32_t virq, uint32_t vcpu)
{
	struct evtchn_bind_virq b = {.virq = virq, .vcpu = vcpu};
	if (HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &b))
		panic("xen: cannot bind VIRQ %u", virq);
	return b.port;
}

void xen_events_init(void)
{
	irq_register(VEC_XEN_UPCALL, upcall);
}

static uint64_t system_time_now(void)
{
	return pvclock_read_system(&this_cpu()->vcpu_info.time);
}

/*
 * Re-arm on the period grid, so upcall latency does not stretch it. Each
 * vCPU has its own VIRQ_TIMER port, its own deadline and set_timer_op
 * (which arms the calling vCPU's timer).
 */
static void timer_event(evtchn_port_t port)
{
	struct percpu *p = this_cpu();
	(void)port;
	static_call(tick)();
	uint64_t now = system_time_now();
	p->next_tick += tick_period_ns;
	if ((int64_t)(p->next_tick - now) <= 0)
		p->next_tick = now + tick_period_ns;
	HYPERVISOR_set_timer_op(p->next_tick);
}

/* This vCPU's tick (the boot vCPU through tick_start, APs themselves). */
void xen_tick_start(unsigned hz)
{
	struct percpu *p = this_cpu();

	tick_period_ns = 1000000000ULL / hz;
	/* Xen may run a default periodic timer; we want our one-shots. */
	HYPERVISOR_vcpu_op(VCPUOP_stop_periodic_timer, (int)p->apic_id, NULL);
	evtchn_port_t port = xen_bind_virq(VIRQ_TIMER, p->apic_id);
	xen_evtchn_bind(port, timer_event);
	p->next_tick = system_time_now() + tick_period_ns;
	HYPERVISOR_set_timer_op(p->next_tick);
}

/* ---- IPIs ---- */

static uint8_t port_vector[NR_PORTS]; /* an IPI port's VEC_IPI_* */

static void ipi_event(evtchn_port_t port)
{
	smp_ipi_handle(port_vector[port]);
}

/* On the vCPU itself: xen_evtchn_bind() records the vCPU it runs on. */
void xen_ipi_init_cpu(struct percpu *p)
{
	for (unsigned i = 0; i < SMP_IPI_NR; i++) {
		struct evtchn_bind_ipi b = {.vcpu = p->apic_id};
		long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &b);
		if (rc)
			panic("xen: vcpu %u: cannot bind an IPI port: %ld (%s)",
			      p->apic_id, rc, xen_errno_name(rc));
		BUG_ON(b.port >= NR_PORTS);
		port_vector[b.port] = (uint8_t)(VEC_IPI_BASE + i);
		p->ipi_port[i] = b.port;
		xen_evtchn_bind(b.port, ipi_event);
	}
	/* The lock port stays masked: only SCHEDOP_poll waits on it. */
	struct evtchn_bind_ipi b = {.vcpu = p->apic_id};
	long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &b);
	if (rc)
		panic("xen: vcpu %u: cannot bind its lock port: %ld (%s)",
		      p->apic_id, rc, xen_errno_name(rc));
	BUG_ON(b.port >= NR_PORTS);
	__atomic_fetch_or(&xen_shared->evtchn_mask[b.port / 64],
			  1ULL << (b.port % 64), __ATOMIC_SEQ_CST);
	port_vcpu[b.port] = (uint16_t)p->apic_id;
	p->lock_port = b.port;
}

/*
 * The Xen lock_wait: clear this vCPU's lock port, re-check the word, and
 * poll the port. A kick after the clear leaves it pending, so the poll
 * returns at once; a spurious return only makes the caller look again.
 */
uint64_t xen_lock_wait(const volatile uint32_t *ptr, uint64_t val)
{
	evtchn_port_t port = this_cpu()->lock_port;

	clear_bit_atomic(&xen_shared->evtchn_pending[port / 64], port % 64);
	if (*ptr != val)
		return 0;
	/*
	 * Also wake for a live-patching sync (its port is unmasked but the
	 * upcall is off here): the caller serves it (seam_sync_serve).
	 */
	evtchn_port_t ports[2] = {
	    port, this_cpu()->ipi_port[VEC_IPI_SYNC - VEC_IPI_BASE]};
	struct sched_poll poll = {.nr_ports = ports[1] ? 2 : 1, .timeout = 0};
	set_xen_guest_handle(poll.ports, ports);
	HYPERVISOR_sched_op(SCHEDOP_poll, &poll);
	return 0;
}

uint64_t xen_lock_kick(uint64_t cpu)
{
	if (cpu >= smp_online || !smp_cpus[cpu]->lock_port)
		return 0;
	struct evtchn_send send = {.port = smp_cpus[cpu]->lock_port};
	HYPERVISOR_event_channel_op(EVTCHNOP_send, &send);
	return 0;
}

static void ipi_one(unsigned cpu, unsigned vector)
{
	unsigned i = vector - VEC_IPI_BASE;

	if (cpu >= smp_online || i >= SMP_IPI_NR || !smp_cpus[cpu]->ipi_port[i])
		return;
	struct evtchn_send send = {.port = smp_cpus[cpu]->ipi_port[i]};
	HYPERVISOR_event_channel_op(EVTCHNOP_send, &send);
}

/* The Xen send_ipi pvops (through thunks). */
uint64_t xen_send_ipi(uint64_t arg)
{
	ipi_one((unsigned)(arg >> 8), arg & 0xff);
	return 0;
}

uint64_t xen_send_ipi_mask(uint64_t arg)
{
	for (uint64_t m = arg >> 8; m; m &= m - 1)
		ipi_one(__builtin_ctzll(m), arg & 0xff);
	return 0;
}
