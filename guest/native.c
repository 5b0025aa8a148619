/*
 * native.c - the PVH boot path and the native and KVM platforms.
 *
 * start_pvh() is called by entry/pvh.S in long mode on the boot page
 * tables. It reads struct hvm_start_info (Xen's public header: QEMU fills
 * the same structure), picks native or KVM from CPUID and hands over to
 * kernel_main().
 */
#include "xen_public.h"

#include "bench.h"
#include "kernel.h"
#include "kvm.h"
#include "mm.h"
#include "percpu.h"
#include "pio.h"
#include "platform.h"
#include "pvop_backend.h"
#include "serial.h"
#include "timer.h"
#include "trap.h"
#include "user.h"

#define MSR_GS_BASE 0xc0000101

unsigned native_cpus_list(uint32_t *ids, unsigned max);
bool native_cpu_start(struct percpu *p);
void native_cpu_abandon(struct percpu *p);
void native_alias_map(uintptr_t window, uintptr_t target);
void native_alias_unmap(uintptr_t window);
void native_guard_page(uintptr_t va);

static void native_platform_init(void);

static void native_pvop_backend(struct pvop_backend *b)
{
	pvop_backend_native(b);
}

static void kvm_pvop_backend(struct pvop_backend *b)
{
	struct pvop_kvm_caps caps = {
	    .nop_io_delay = KVM_HAS(NOP_IO_DELAY),
	    .pv_eoi = KVM_HAS(PV_EOI),
	    .kvmclock = KVM_HAS(CLOCKSOURCE2),
	    .pv_send_ipi = KVM_HAS(PV_SEND_IPI),
	    .pv_tlb_flush = KVM_HAS(PV_TLB_FLUSH),
	};
	pvop_backend_kvm(b, &caps);
}

static void __noreturn native_exit(int code)
{
	pio_outb(DEBUG_EXIT_PORT, (uint8_t)code);
	/* Only reached without isa-debug-exit: stop here, visibly. */
	printk("tinypv: isa-debug-exit absent; halting (exit code %#x)\n",
	       code);
	for (;;) {
		irq_disable();
		halt();
	}
}

static void native_protect_text(void)
{
	/* mmu_init_native() mapped text read-only from the start. */
}

static void native_report(void)
{
	printk("apic: %s\n", apic_mode());
}

const struct platform platform_native = {
    .name = "native",
    .id = PLATFORM_NATIVE,
    .console_write = serial_write,
    .init = native_platform_init,
    .pvop_backend = native_pvop_backend,
    .exit = native_exit,
    .tick_start = native_tick_start,
    .alias_map = native_alias_map,
    .alias_unmap = native_alias_unmap,
    .poke_tables = mmu_poke_tables,
    .protect_text = native_protect_text,
    .cpus_list = native_cpus_list,
    .cpu_start = native_cpu_start,
    .cpu_abandon = native_cpu_abandon,
    .guard_page = native_guard_page,
    .ipi_init_cpu = native_ipi_init_cpu,
    .user_init = native_user_init,
    .user_map = native_user_map,
    .report = native_report,
};

static void kvm_platform_report(void)
{
	native_report();
	kvm_report();
}

const struct platform platform_kvm = {
    .name = "kvm",
    .id = PLATFORM_KVM,
    .console_write = serial_write,
    .init = native_platform_init,
    .pvop_backend = kvm_pvop_backend,
    .exit = native_exit,
    .tick_start = native_tick_start,
    .alias_map = native_alias_map,
    .alias_unmap = native_alias_unmap,
    .poke_tables = mmu_poke_tables,
    .protect_text = native_protect_text,
    .cpus_list = native_cpus_list,
    .cpu_start = native_cpu_start,
    .cpu_abandon = native_cpu_abandon,
    .guard_page = native_guard_page,
    .ipi_init_cpu = native_ipi_init_cpu,
    .smp_ready = kvm_smp_ready,
    .user_init = native_user_init,
    .user_map = native_user_map,
    .report = kvm_platform_report,
};

static void read_start_info(uint32_t pa)
{
	const struct hvm_start_info *si = phys_to_virt(pa);

	if (si->magic != XEN_HVM_START_MAGIC_VALUE)
		panic("PVH: bad hvm_start_info magic %#x at %#x", si->magic,
		      pa);
	boot.boot_path = "pvh";
	boot.cmdline = si->cmdline_paddr ? phys_to_virt(si->cmdline_paddr) : "";
	boot.rsdp_pa = si->rsdp_paddr;
	if (si->version < 1 || !si->memmap_paddr)
		panic("PVH: hvm_start_info v%u has no memory map", si->version);
	const struct hvm_memmap_table_entry *e = phys_to_virt(si->memmap_paddr);
	for (uint32_t i = 0; i < si->memmap_entries && i < MEMMAP_MAX; i++) {
		boot.memmap[i].start = e[i].addr;
		boot.memmap[i].size = e[i].size;
		boot.memmap[i].type = e[i].type;
		boot.memmap_nr++;
	}
}

/* Usable RAM above the image and below the 4 GiB direct map. */
static void native_memory_init(void)
{
	uint64_t img_end = (uint64_t)_kernel_end - KERNEL_VBASE;

	for (unsigned i = 0; i < boot.memmap_nr; i++) {
		const struct mem_range *r = &boot.memmap[i];
		uint64_t lo = MAX(r->start, img_end);
		uint64_t hi = MIN(r->start + r->size, PHYS_MAP_SIZE);
		if (r->type == XEN_HVM_MEMMAP_TYPE_RAM && lo < hi)
			pmm_add_range(lo, hi);
	}
	if (!pmm_total_pages())
		panic("PVH: no usable RAM above the kernel image");
	mmu_init_native();
}

static void native_platform_init(void)
{
	native_memory_init();
	trap_init_native();
	apic_init();
	tsc_clock_init();
	if (platform->id == PLATFORM_KVM)
		kvm_init();
}

void start_pvh(uint32_t start_info_pa)
{
	boot_tsc_entry = rdtsc();
	percpu0.self = &percpu0;
	write_msr(MSR_GS_BASE, (uint64_t)&percpu0);
	platform_select(&platform_native);
	serial_init();
	read_start_info(start_info_pa);
	cpu_detect();
	if (!strcmp(boot.hv_signature, "KVMKVMKVM"))
		platform_select(&platform_kvm);
	kernel_main();
}
