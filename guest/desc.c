/*
 * desc.c - native descriptor tables: the TSS (with IST stacks for the
 * faults that must not run on a broken stack) and the IDT.
 *
 * Every CPU gets its own GDT (a copy of the boot GDT, entry/pvh.S, with
 * its own TSS descriptor: a loaded TSS is marked busy), TSS and IST
 * stacks; the IDT is shared. lgdt/lidt/ltr appear only in desc_*
 * functions, which the build-time checker allows.
 */
#include "kernel.h"
#include "layout.h"
#include "trap.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct tss) == 104, "TSS is 104 bytes");
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");

extern uint64_t boot_gdt[3];
extern char trap_stubs[];

/* null, code, data, TSS (two), user code32, user data, user code64 */
#define GDT_ENTRIES 8

struct cpu_desc {
	uint64_t gdt[GDT_ENTRIES];
	struct tss tss;
} __attribute__((aligned(16)));

static struct cpu_desc descs[NR_CPUS_MAX];
static struct idt_gate idt[256] __attribute__((aligned(16)));
static uint8_t ist_stack[NR_CPUS_MAX][2][4096] __attribute__((aligned(16)));

/* CS and DS keep their selectors and descriptors: no reload needed. */
static __attribute__((noinline)) void desc_load_gdt(void *base, uint16_t limit)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) p = {limit, (uint64_t)base};
	asm volatile("lgdt %0" : : "m"(p) : "memory");
}

static __attribute__((noinline)) void desc_load_tr(uint16_t sel)
{
	asm volatile("ltr %0" : : "r"(sel));
}

static __attribute__((noinline)) void desc_load_idt(void *base, uint16_t limit)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) p = {limit, (uint64_t)base};
	asm volatile("lidt %0" : : "m"(p));
}

static void set_gate(unsigned v, uint64_t handler, unsigned ist)
{
	idt[v] = (struct idt_gate){
	    .off_lo = handler & 0xffff,
	    .sel = GDT_KERNEL_CS,
	    .ist = ist,
	    .type = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
	    .off_mid = (handler >> 16) & 0xffff,
	    .off_hi = handler >> 32,
	};
}

/*
 * This CPU's GDT, TSS (#DF and NMI on IST stacks of its own) and the IDT,
 * in the descriptor slot of its struct percpu (percpu_slot(), never its
 * CPU number: an abandoned AP that starts late keeps its own).
 */
void trap_init_cpu(unsigned slot)
{
	struct cpu_desc *d = &descs[slot];
	uint64_t base = (uint64_t)&d->tss;

	/*
	 * The shared IDT first: from here a fault on this CPU is reported
	 * (naming it) instead of resetting the machine. Only the IST vectors
	 * (#DF, NMI) need the TSS loaded below.
	 */
	desc_load_idt(idt, sizeof(idt) - 1);
	memcpy(d->gdt, boot_gdt, sizeof(boot_gdt));
	d->tss.ist[0] = (uint64_t)ist_stack[slot][0] + sizeof(ist_stack[0][0]);
	d->tss.ist[1] = (uint64_t)ist_stack[slot][1] + sizeof(ist_stack[0][1]);
	d->tss.iomap_base = sizeof(d->tss);
	d->gdt[GDT_TSS / 8] = (sizeof(d->tss) - 1) | (base & 0xffffff) << 16 |
			      0x89ULL << 40 | ((base >> 24) & 0xff) << 56;
	d->gdt[GDT_TSS / 8 + 1] = base >> 32;
	/* DPL 3: a 32-bit code segment (sysret's layout needs the slot),
	 * data, and 64-bit code (guest/user.c runs the task with them). */
	d->gdt[GDT_USER_BASE / 8] = 0x00cffa000000ffffULL;
	d->gdt[GDT_USER_DS / 8] = 0x00cff2000000ffffULL;
	d->gdt[GDT_USER_CS / 8] = 0x00affa000000ffffULL;
	desc_load_gdt(d->gdt, sizeof(d->gdt) - 1);
	desc_load_tr(GDT_TSS);
}

/* What this CPU loaded: its GDT's base (tests). */
uint64_t desc_current_gdt(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) p;
	asm volatile("sgdt %0" : "=m"(p));
	return p.base;
}

uint64_t desc_gdt_of_slot(unsigned slot)
{
	return (uint64_t)descs[slot].gdt;
}

void trap_init_native(void)
{
	for (unsigned v = 0; v < 256; v++)
		set_gate(v, (uint64_t)trap_stubs + 16 * v, 0);
	set_gate(VEC_DF, (uint64_t)trap_stubs + 16 * VEC_DF, 1);
	set_gate(VEC_NMI, (uint64_t)trap_stubs + 16 * VEC_NMI, 2);
	trap_init_cpu(0);
}

/*
 * The load_sp0 pvop, native: the stack a trap from user mode switches to
 * is this CPU's TSS rsp0, in its descriptor slot (native backend, through
 * a thunk).
 */
uint64_t native_load_sp0(uint64_t top)
{
	descs[percpu_slot(this_cpu())].tss.rsp[0] = top;
	return 0;
}
