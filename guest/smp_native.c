/*
 * smp_native.c - native and KVM: list the CPUs from the ACPI MADT, start
 * each with INIT-SIPI-SIPI through the real-mode trampoline (entry/ap.S),
 * and the AP's first C code.
 *
 * The trampoline and its memory: the code is copied to the page at
 * AP_TRAMPOLINE_PA (low RAM the firmware no longer needs and the page
 * allocator never hands out: it starts above the image) once, before the
 * first AP; its page tables (mmu_trampoline_tables) are built once too.
 * Both stay in place after bring-up, unused, so an AP that was abandoned
 * after a late start-up never runs through freed memory. One AP starts at
 * a time: they share the parameter block.
 */
#include "acpi.h"
#include "kernel.h"
#include "kvm.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"
#include "smp.h"
#include "timer.h"
#include "trap.h"

#define MSR_EFER 0xc0000080
#define EFER_LME (1ULL << 8)
#define EFER_NXE (1ULL << 11)

struct ap_trampoline_params {
	uint64_t cr3, efer, kernel_cr3, stack, percpu, entry;
};

extern char ap_trampoline[], ap_trampoline_end[], ap_trampoline_params[];
extern char pvh_ap_start64[];

_Static_assert(AP_TRAMPOLINE_PA % PAGE_SIZE == 0 && AP_TRAMPOLINE_PA < 0x100000,
	       "a start-up IPI starts a CPU at a page below 1 MiB");

static uint64_t trampoline_cr3;

static bool low_page_is_ram(uint64_t pa)
{
	for (unsigned i = 0; i < boot.memmap_nr; i++) {
		const struct mem_range *r = &boot.memmap[i];
		if (r->type == 1 && r->start <= pa &&
		    pa + PAGE_SIZE <= r->start + r->size)
			return true;
	}
	return false;
}

unsigned native_cpus_list(uint32_t *ids, unsigned max)
{
	struct acpi_cpus c = acpi_find_cpus(boot.rsdp_pa, ids, max);
	uint32_t me = apic_id();

	if (!c.present) {
		printk("warning: smp: %s; running on the boot CPU only\n",
		       c.problem);
		return 0;
	}
	/* The boot CPU first; it may sit anywhere in the MADT. */
	for (unsigned i = 0; i < c.listed; i++)
		if (ids[i] == me) {
			ids[i] = ids[0];
			ids[0] = me;
			return c.present;
		}
	printk("warning: smp: the boot CPU (apic id %u) is not in the MADT; "
	       "running on it only\n",
	       me);
	return 0;
}

static bool trampoline_setup(void)
{
	size_t len = ap_trampoline_end - ap_trampoline;

	if (trampoline_cr3)
		return true;
	if (!low_page_is_ram(AP_TRAMPOLINE_PA)) {
		printk("warning: smp: page %#lx is not RAM in the memory map; "
		       "no trampoline for the other CPUs\n",
		       AP_TRAMPOLINE_PA);
		return false;
	}
	BUG_ON(len > PAGE_SIZE);
	memcpy(phys_to_virt(AP_TRAMPOLINE_PA), ap_trampoline, len);
	trampoline_cr3 = mmu_trampoline_tables();
	return true;
}

bool native_cpu_start(struct percpu *p)
{
	if (!trampoline_setup())
		return false;
	struct ap_trampoline_params *tp = phys_to_virt(
	    AP_TRAMPOLINE_PA + (ap_trampoline_params - ap_trampoline));
	*tp = (struct ap_trampoline_params){
	    .cr3 = trampoline_cr3,
	    .efer = EFER_LME | (mmu_nx_bit() ? EFER_NXE : 0),
	    .kernel_cr3 = read_cr3(),
	    .stack = p->stack_top,
	    .percpu = (uint64_t)p,
	    .entry = (uint64_t)pvh_ap_start64,
	};
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return apic_start_cpu(p->apic_id, AP_TRAMPOLINE_PA >> PAGE_SHIFT);
}

void native_cpu_abandon(struct percpu *p)
{
	apic_stop_cpu(p->apic_id);
}

/* entry/ap.S: pvh_ap_start64, on this AP's stack, %gs at its percpu. */
void __attribute__((noreturn)) ap_main_native(struct percpu *p);
void ap_main_native(struct percpu *p)
{
	trap_init_cpu(percpu_slot(p));
	apic_init_ap();
	if (platform->id == PLATFORM_KVM)
		kvm_init_cpu();
	native_tick_start(TICK_HZ);
	smp_ap_online(p);
}
