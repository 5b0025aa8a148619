/*
 * apic.c - local APIC (x2APIC when the CPU has it, xAPIC otherwise), its
 * timer as the periodic tick, and TSC calibration against the PIT.
 */
#include "alternative.h"
#include "cpufeature.h"
#include "kernel.h"
#include "mm.h"
#include "pio.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"
#include "trap.h"

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_EN (1ULL << 11)
#define APIC_BASE_X2 (1ULL << 10)
#define MSR_X2APIC(reg) (0x800 + ((reg) >> 4))

#define APIC_ID 0x20
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR 0x390
#define APIC_TIMER_DIV 0x3e0
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)

#define PIT_HZ 1193182
#define CAL_MS 10

uint64_t tsc_khz;
static bool x2apic;
static volatile uint32_t *xapic;
static uint32_t apic_per_ms;

static void apic_write(uint32_t reg, uint32_t v)
{
	if (x2apic)
		write_msr(MSR_X2APIC(reg), v);
	else
		xapic[reg / 4] = v;
}

static uint32_t apic_read(uint32_t reg)
{
	if (x2apic)
		return (uint32_t)read_msr(MSR_X2APIC(reg));
	return xapic[reg / 4];
}

const char *apic_mode(void)
{
	return x2apic ? "x2apic" : "xapic";
}

/* Called through a pvop thunk: the native apic_eoi(). */
uint64_t native_apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
	return 0;
}

/*
 * One PIT channel-2 countdown of CAL_MS, measuring the TSC and the LAPIC
 * timer over the same window. Wall-clock bound, so cheap even where every
 * instruction is emulated.
 */
static void calibrate(void)
{
	uint16_t count = PIT_HZ * CAL_MS / 1000;
	uint8_t gate = pio_inb(0x61);

	/* Everything but the PIT's last write first: it starts the window. */
	apic_write(APIC_TIMER_DIV, 0x3); /* divide by 16 */
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	pio_outb(0x61, (gate & ~0x02) | 0x01); /* gate on, speaker off */
	pio_outb(0x43, 0xb0);		       /* channel 2, lo/hi, mode 0 */
	pio_outb(0x42, count & 0xff);
	apic_write(APIC_TIMER_INIT, 0xffffffff);
	uint64_t t0 = rdtsc();
	pio_outb(0x42, count >> 8); /* counting starts here */
	uint64_t spins = 0;
	while (!(pio_inb(0x61) & 0x20)) {
		if (++spins > 100000000)
			panic("timer: PIT channel 2 never counted down");
	}
	uint64_t t1 = rdtsc();
	uint32_t left = apic_read(APIC_TIMER_CUR);
	apic_write(APIC_TIMER_INIT, 0);

	/* The window is count PIT ticks long (9999.3 us), not CAL_MS. */
	uint64_t div = (uint64_t)count * 1000;
	tsc_khz = (t1 - t0) * PIT_HZ / div;
	apic_per_ms = (uint32_t)((uint64_t)(0xffffffffu - left) * PIT_HZ / div);
	if (!tsc_khz || !apic_per_ms)
		panic("timer: calibration failed (tsc %lu, apic %u)", t1 - t0,
		      0xffffffffu - left);
}

static void timer_irq(struct trap_frame *f)
{
	(void)f;
	static_call(tick)();
	apic_eoi();
}

/*
 * The firmware left the 8259 PICs delivering the PIT on vector 8, which
 * would look like a double fault. Remap them above the exceptions and
 * mask every line: the LAPIC is our only interrupt source.
 */
static void pic_disable(void)
{
	pio_outb(0x20, 0x11); /* ICW1: init, ICW4 follows */
	pio_outb(0xa0, 0x11);
	pio_outb(0x21, 0xf0); /* ICW2: vector bases 0xf0, 0xf8 */
	pio_outb(0xa1, 0xf8);
	pio_outb(0x21, 0x04); /* ICW3: slave on IRQ2 */
	pio_outb(0xa1, 0x02);
	pio_outb(0x21, 0x01); /* ICW4: 8086 mode */
	pio_outb(0xa1, 0x01);
	pio_outb(0x21, 0xff); /* mask all */
	pio_outb(0xa1, 0xff);
}

void apic_init(void)
{
	pic_disable();
	uint64_t base = read_msr(MSR_APIC_BASE);

	x2apic = cpu_has_x2apic();
	base |= APIC_BASE_EN;
	if (x2apic)
		base |= APIC_BASE_X2;
	write_msr(MSR_APIC_BASE, base);
	if (!x2apic)
		xapic = phys_to_virt(base & PTE_ADDR);
	apic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);
	calibrate();
	irq_register(VEC_TIMER, timer_irq);
}

/* An AP: its LAPIC on, in the boot CPU's mode (x2APIC or xAPIC). */
void apic_init_ap(void)
{
	uint64_t base = read_msr(MSR_APIC_BASE) | APIC_BASE_EN;

	if (x2apic)
		base |= APIC_BASE_X2;
	write_msr(MSR_APIC_BASE, base);
	apic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);
}

uint32_t apic_id(void)
{
	uint32_t id = apic_read(APIC_ID);
	return x2apic ? id : id >> 24;
}

/* One interprocessor interrupt command; false if xAPIC never sent it. */
static bool apic_icr(uint32_t dest, uint32_t cmd)
{
	if (x2apic) {
		write_msr(MSR_X2APIC(APIC_ICR_LO), (uint64_t)dest << 32 | cmd);
		return true;
	}
	apic_write(APIC_ICR_HI, dest << 24);
	apic_write(APIC_ICR_LO, cmd);
	uint64_t end = clock_read() + 1000000;	    /* 1 ms */
	while (apic_read(APIC_ICR_LO) & (1u << 12)) /* delivery pending */
		if (clock_read() > end)
			return false;
	return true;
}

#define ICR_FIXED 0x4000   /* fixed delivery, physical destination */
#define ICR_INIT 0x4500	   /* INIT, level assert */
#define ICR_STARTUP 0x4600 /* start-up, vector in bits 0-7 */

/*
 * The MP start-up sequence: INIT, 10 ms, then two start-up IPIs 200 us
 * apart, each telling the CPU to start in real mode at vector << 12.
 */
bool apic_start_cpu(uint32_t dest, uint8_t vector)
{
	if (!apic_icr(dest, ICR_INIT))
		return false;
	delay_ns(10000000);
	for (int i = 0; i < 2; i++) {
		if (!apic_icr(dest, ICR_STARTUP | vector))
			return false;
		delay_ns(200000);
	}
	return true;
}

/* Back to wait-for-SIPI: a CPU that missed its start-up deadline. */
void apic_stop_cpu(uint32_t dest)
{
	apic_icr(dest, ICR_INIT);
}

/*
 * The native send_ipi pvops (through thunks): the ICR, one destination at
 * a time. The x2APIC ICR write is not serialising, so the fence makes the
 * sender's stores (a mailbox, a sequence number) visible first, as Linux's
 * weak_wrmsr_fence does. The xAPIC's two ICR writes must not be split by
 * an interrupt that sends an IPI of its own.
 */
static void ipi_one_x2apic(unsigned cpu, unsigned vector)
{
	if (cpu >= smp_online)
		return;
	uint32_t dest = smp_cpus[cpu]->apic_id;
	asm volatile("mfence; lfence" ::: "memory");
	write_msr(MSR_X2APIC(APIC_ICR_LO),
		  (uint64_t)dest << 32 | ICR_FIXED | vector);
}

/* Either mode: the original of the select below, right everywhere. */
static void ipi_one_any(unsigned cpu, unsigned vector)
{
	if (cpu >= smp_online)
		return;
	if (x2apic) {
		ipi_one_x2apic(cpu, vector);
		return;
	}
	uint32_t dest = smp_cpus[cpu]->apic_id;
	unsigned long fl = irq_save();
	if (!apic_icr(dest, ICR_FIXED | vector))
		printk("warning: apic: IPI %#x to cpu %u still pending after "
		       "1 ms\n",
		       vector, cpu);
	irq_restore(fl);
}

/*
 * The LAPIC runs in x2APIC mode exactly when the CPU has the feature
 * (apic_init()), so on such a CPU the sender goes straight to the MSR
 * write: a function-level alternative (alt/include/alternative.h), chosen
 * once at boot. IPIs are only sent after boot patching (smp_boot() runs
 * after it); with noalternatives the original still serves both modes.
 */
ALTERNATIVE_SELECT(ipi_one, ipi_one_any, ipi_one_x2apic, X86_FEATURE_X2APIC)

bool apic_ipi_is_x2apic_only(void)
{
	return ipi_one() == ipi_one_x2apic;
}

uint64_t native_send_ipi(uint64_t arg)
{
	ipi_one()((unsigned)(arg >> 8), arg & 0xff);
	return 0;
}

uint64_t native_send_ipi_mask(uint64_t arg)
{
	for (uint64_t m = arg >> 8; m; m &= m - 1)
		ipi_one()(__builtin_ctzll(m), arg & 0xff);
	return 0;
}

static void ipi_irq(struct trap_frame *f)
{
	smp_ipi_handle((unsigned)f->vector);
	apic_eoi();
}

/* The IDT is shared: the vectors' handlers once, on the boot CPU. */
void native_ipi_init_cpu(struct percpu *p)
{
	if (p != &percpu0)
		return;
	for (unsigned v = VEC_IPI_BASE; v < VEC_IPI_BASE + SMP_IPI_NR; v++)
		irq_register(v, ipi_irq);
}

void native_tick_start(unsigned hz)
{
	apic_write(APIC_TIMER_DIV, 0x3);
	apic_write(APIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
	apic_write(APIC_TIMER_INIT, apic_per_ms * 1000 / hz);
}

/* ---- the TSC clock ---- */

static uint64_t tsc0;

void tsc_clock_init(void)
{
	tsc0 = rdtsc();
}

uint64_t tsc_clock_read(void)
{
	uint64_t d = rdtsc() - tsc0;
	/* ns = d * 1e6 / khz, split to avoid overflow for long uptimes. */
	return d / tsc_khz * 1000000 + d % tsc_khz * 1000000 / tsc_khz;
}
