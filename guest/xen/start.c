/*
 * start.c - the Xen PV boot path and the xen-pv platform.
 *
 * entry/pvh.S:xen_start calls start_xen_pv() with Xen's start_info. Xen
 * has mapped the image at KERNEL_VBASE, filled the hypercall page and
 * started us in ring 3 with events masked. Before the first pvop runs we
 * must: return from traps via the iret hypercall, point %gs at percpu0,
 * move vcpu_info into percpu0 (the Xen templates address it via %gs) and
 * point pv_ops at the Xen backend. Then the common kernel_main().
 */
#include "bench.h"
#include "cmdline.h"
#include "hypercall.h"
#include "kernel.h"
#include "mm.h"
#include "percpu.h"
#include "pio.h"
#include "platform.h"
#include "pvclock.h"
#include "pvop_backend.h"
#include "timer.h"
#include "trap.h"
#include "user.h"
#include "xen.h"

start_info_t *xen_start_info;
struct shared_info *xen_shared;
const unsigned long *xen_p2m;
uint64_t xen_version_word;
uint64_t xen_premapped_end;

static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(4096)));
static char xen_cmdline[MAX_GUEST_CMDLINE];
static char xen_extraversion[XEN_EXTRAVERSION_LEN];
static uint32_t xen_features[XENFEAT_NR_SUBMAPS];

extern char xen_trap_stubs[], xen_upcall_entry[], xen_failsafe_entry[];

/*
 * Xen copies at most MAX_GUEST_CMDLINE - 1 characters of dom0's command
 * line and drops the rest without a word: say so when it is that long.
 */
static void copy_cmdline(const start_info_t *si)
{
	memcpy(xen_cmdline, si->cmd_line, sizeof(xen_cmdline) - 1);
	size_t len = strlen(xen_cmdline);
	if (len >= sizeof(xen_cmdline) - 1)
		printk("warning: the command line is %zu characters, Xen's "
		       "limit for dom0 (MAX_GUEST_CMDLINE %d with its NUL); "
		       "anything past it was dropped\n",
		       len, MAX_GUEST_CMDLINE);
}

uint64_t xen_virt_to_mfn(const void *va)
{
	uint64_t pfn = ((uint64_t)va - KERNEL_VBASE) >> PAGE_SHIFT;
	return xen_p2m[pfn];
}

static void xen_console_write(const char *s, size_t n)
{
	HYPERVISOR_console_io(CONSOLEIO_write, (int)n, s);
}

static void __noreturn xen_exit(int code)
{
	struct physdev_set_iopl iopl = {.iopl = 1};
	struct sched_shutdown sd = {.reason = SHUTDOWN_poweroff};

	/* dom0 may drive QEMU's isa-debug-exit port once it has I/O rights. */
	if (HYPERVISOR_physdev_op(PHYSDEVOP_set_iopl, &iopl) == 0)
		pio_outb(DEBUG_EXIT_PORT, (uint8_t)code);
	printk("tinypv: isa-debug-exit did not end QEMU; shutting down dom0 "
	       "(exit code %#x)\n",
	       code);
	for (;;)
		HYPERVISOR_sched_op(SCHEDOP_shutdown, &sd);
}

void xen_failsafe(void)
{
	panic("xen: failsafe callback (bad segment on return to guest)");
}

/*
 * Before pv_ops points at the Xen backend even panic() cannot run (its
 * irq_disable would be a cli in ring 3): say why on Xen's console and
 * shut the domain down.
 */
static void __noreturn xen_early_fatal(const char *msg)
{
	struct sched_shutdown sd = {.reason = SHUTDOWN_crash};
	HYPERVISOR_console_io(CONSOLEIO_write, (int)strlen(msg), msg);
	for (;;)
		xen_hypercall2(__HYPERVISOR_sched_op, SCHEDOP_shutdown,
			       (unsigned long)&sd);
}

static void register_vcpu_info(void)
{
	struct vcpu_register_vcpu_info info = {
	    .mfn = xen_virt_to_mfn(&percpu0),
	    .offset = offsetof(struct percpu, vcpu_info),
	};
	/* Runs before pv_ops points at the Xen backend: no panic() yet. */
	if (HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &info))
		xen_early_fatal("tinypv: PANIC: xen: cannot place vcpu_info in "
				"the per-CPU area\n");
}

static void map_shared_info(void)
{
	uint64_t pte =
	    xen_start_info->shared_info | PTE_P | PTE_W | PTE_A | PTE_D;
	if (HYPERVISOR_update_va_mapping((unsigned long)shared_info_page, pte,
					 UVMF_INVLPG))
		panic("xen: cannot map shared_info");
	xen_shared = (struct shared_info *)shared_info_page;
}

/*
 * Exceptions 0-31 go to the same stubs as natively (after rcx/r11). The
 * trap table and callbacks are per vCPU in Xen: every vCPU installs them
 * (the boot vCPU here, the others in xen_ap_main).
 */
void xen_traps_cpu_init(void)
{
	static struct trap_info table[33]; /* ends with a zero entry */
	int n = 0;

	for (int v = 0; v < 32; v++) {
		if (v == 2 || v == 15 || (v >= 22 && v != 29 && v != 30))
			continue; /* NMI is a callback; reserved vectors */
		table[n].vector = v;
		table[n].flags = 4; /* TI_SET_IF: mask events, like a gate */
		table[n].cs = FLAT_KERNEL_CS;
		table[n].address = (unsigned long)xen_trap_stubs + 16 * v;
		n++;
	}
	if (HYPERVISOR_set_trap_table(table))
		panic("xen: set_trap_table refused");

	struct callback_register event = {
	    .type = CALLBACKTYPE_event,
	    .flags = CALLBACKF_mask_events,
	    .address = (unsigned long)xen_upcall_entry,
	};
	struct callback_register failsafe = {
	    .type = CALLBACKTYPE_failsafe,
	    .flags = CALLBACKF_mask_events,
	    .address = (unsigned long)xen_failsafe_entry,
	};
	if (HYPERVISOR_callback_op(CALLBACKOP_register, &event) ||
	    HYPERVISOR_callback_op(CALLBACKOP_register, &failsafe))
		panic("xen: cannot register callbacks");
}

/*
 * All of dom0's pseudo-physical memory, at KERNEL_VBASE + pa (the same
 * place Xen mapped the image, so phys_to_virt() is one addition). Xen
 * mapped the image, its bootstrap structures and some padding (at least
 * 512 KiB); everything past that, up to start_info.nr_pages, gets new
 * page tables through the MMU pvops (mmu_map_range(): each new L1 is
 * filled, pinned and linked into the bootstrap L2), built from pages of
 * that padding. Xen maps all of it executable, so first everything but
 * text becomes no-execute (doc/xen-pv.md).
 */
#define XEN_DIRECT_MAP_MAX (1UL << 30) /* KERNEL_VBASE + 1 GiB */

static void xen_memory_init(void)
{
	uint64_t pt_end = xen_start_info->pt_base +
			  (xen_start_info->nr_pt_frames + 1) * PAGE_SIZE;
	uint64_t lo = pt_end - KERNEL_VBASE;
	uint64_t end = xen_start_info->nr_pages * PAGE_SIZE;
	uint64_t hi = lo;

	phys_map_base = KERNEL_VBASE;
	xen_mmu_choose(opts.xenmmu);
	mmu_use_nx();
	xen_nx_outside_text();
	if (end > XEN_DIRECT_MAP_MAX) {
		printk("warning: dom0 has %lu MiB; tinypv maps the first %lu "
		       "MiB\n",
		       end >> 20, XEN_DIRECT_MAP_MAX >> 20);
		end = XEN_DIRECT_MAP_MAX;
	}
	while (hi < end && (mmu_lookup(KERNEL_VBASE + hi) & PTE_P))
		hi += PAGE_SIZE;
	pmm_add_range(lo, hi);
	xen_premapped_end = hi;
	if (hi < end) {
		mmu_map_range(KERNEL_VBASE + hi, hi, (end - hi) >> PAGE_SHIFT,
			      PTE_P | PTE_W | mmu_nx_bit());
		pmm_add_range(hi, end);
	}
	boot.memmap[0] = (struct mem_range){
	    .start = 0,
	    .size = xen_start_info->nr_pages * PAGE_SIZE,
	    .type = 1,
	};
	boot.memmap_nr = 1;
}

static void xen_platform_init(void)
{
	xen_memory_init();
	xen_traps_cpu_init();
	xen_events_init();
	xen_clock_init();
}

/* The window's own PTE, through the MMU pvops (no flush: the caller's). */
static void set_window(uintptr_t window, uintptr_t target)
{
	uint64_t *pte = mmu_pte(window);
	if (!pte)
		panic("text_poke: no PTE for the window %lx", window);
	set_pte(pte, make_pte((target - KERNEL_VBASE) | PTE_P | PTE_W | PTE_A |
			      PTE_D | mmu_nx_bit()));
}

static void xen_alias_map(uintptr_t window, uintptr_t target)
{
	set_window(window, target);
}

static void xen_alias_unmap(uintptr_t window)
{
	set_window(window, window);
}

/* Through set_pte like every PTE change (a refusal panics, named). */
static void xen_guard_page(uintptr_t va)
{
	uint64_t *pte = mmu_pte(va);
	if (!pte)
		panic("smp: no PTE for the guard page %lx", va);
	set_pte(pte, 0);
	flush_tlb_one(va);
}

/*
 * Text read-only; rodata read-only, no-execute. Data and everything else
 * are no-execute already (xen_nx_outside_text(), from xen_memory_init()).
 * One lazy section, then one flush for all of it.
 */
static void xen_protect_text(void)
{
	uint64_t *pte = NULL;

	mmu_lazy_begin();
	for (uintptr_t va = (uintptr_t)_text_start; va < (uintptr_t)_rodata_end;
	     va += PAGE_SIZE) {
		uint64_t flags = PTE_P | PTE_A;
		if (va >= (uintptr_t)_rodata_start)
			flags |= mmu_nx_bit();
		/* One walk per L1: a walk issues the queue (it reads). */
		if (!pte || !(va & (LARGE_PAGE_SIZE - 1)))
			pte = mmu_pte(va);
		else
			pte++;
		if (!pte)
			panic("xen: no PTE for %lx", va);
		set_pte(pte, make_pte((va - KERNEL_VBASE) | flags));
	}
	mmu_lazy_end();
	write_cr3(read_cr3());
}

static void xen_report(void)
{
	printk("xen version: %lu.%lu%s\n", xen_version_word >> 16,
	       xen_version_word & 0xffff, xen_extraversion);
	printk("xen features:");
	static const char *const names[] = {
	    [XENFEAT_writable_page_tables] = "writable_page_tables",
	    [XENFEAT_writable_descriptor_tables] = "writable_descriptor_tables",
	    [XENFEAT_auto_translated_physmap] = "auto_translated_physmap",
	    [XENFEAT_supervisor_mode_kernel] = "supervisor_mode_kernel",
	    [XENFEAT_pae_pgdir_above_4gb] = "pae_pgdir_above_4gb",
	    [XENFEAT_mmu_pt_update_preserve_ad] = "mmu_pt_update_preserve_ad",
	    [XENFEAT_highmem_assist] = "highmem_assist",
	    [XENFEAT_gnttab_map_avail_bits] = "gnttab_map_avail_bits",
	    [XENFEAT_hvm_callback_vector] = "hvm_callback_vector",
	    [XENFEAT_hvm_safe_pvclock] = "hvm_safe_pvclock",
	    [XENFEAT_hvm_pirqs] = "hvm_pirqs",
	    [XENFEAT_dom0] = "dom0",
	    [XENFEAT_memory_op_vnode_supported] = "memory_op_vnode_supported",
	    [XENFEAT_ARM_SMCCC_supported] = "ARM_SMCCC_supported",
	    [XENFEAT_linux_rsdp_unrestricted] = "linux_rsdp_unrestricted",
	    [XENFEAT_not_direct_mapped] = "not_direct_mapped",
	    [XENFEAT_direct_mapped] = "direct_mapped",
	};
	for (unsigned i = 0; i < 32; i++) {
		if (!(xen_features[0] & (1u << i)))
			continue;
		if (i < ARRAY_SIZE(names) && names[i])
			printk(" %s", names[i]);
		else
			printk(" bit%u", i);
	}
	printk("\n");
	printk("xen start_info: %lu pages, pt_base %#lx, %lu pt frames\n",
	       xen_start_info->nr_pages, xen_start_info->pt_base,
	       xen_start_info->nr_pt_frames);
	printk("xen events delivered: %lu\n", xen_events_delivered());
	printk("xen mmu: %s; direct map to %lu MiB (Xen mapped %lu KiB); "
	       "%lu hypercalls, %lu entries by mmu_update, %lu emulated, %lu "
	       "tables pinned\n",
	       xen_mmu_names[xen_mmu_strategy],
	       (xen_start_info->nr_pages * PAGE_SIZE) >> 20,
	       xen_premapped_end >> 10, xen_mmu_stats.hypercalls,
	       xen_mmu_stats.updates, xen_mmu_stats.emulated,
	       xen_mmu_stats.pinned);
}

const struct platform platform_xen_pv = {
    .name = "xen-pv",
    .id = PLATFORM_XEN_PV,
    .console_write = xen_console_write,
    .init = xen_platform_init,
    .pvop_backend = pvop_backend_xen,
    .exit = xen_exit,
    .tick_start = xen_tick_start,
    .alias_map = xen_alias_map,
    .alias_unmap = xen_alias_unmap,
    .poke_tables = xen_poke_tables,
    .protect_text = xen_protect_text,
    .cpus_list = xen_cpus_list,
    .cpu_start = xen_cpu_start,
    .cpu_abandon = xen_cpu_abandon,
    .guard_page = xen_guard_page,
    .ipi_init_cpu = xen_ipi_init_cpu,
    .user_init = xen_user_init,
    .user_map = xen_user_map,
    .user_activate = xen_user_activate,
    .report = xen_report,
};

static void read_version(void)
{
	xen_feature_info_t fi = {.submap_idx = 0};

	xen_version_word =
	    (uint64_t)HYPERVISOR_xen_version(XENVER_version, NULL);
	HYPERVISOR_xen_version(XENVER_extraversion, xen_extraversion);
	xen_extraversion[XEN_EXTRAVERSION_LEN - 1] = '\0';
	if (HYPERVISOR_xen_version(XENVER_get_features, &fi) == 0)
		xen_features[0] = fi.submap;
}

void start_xen_pv(start_info_t *si)
{
	static struct pvop_backend early;

	boot_tsc_entry = rdtsc();
	if (memcmp(si->magic, "xen-3.0-x86_64", 14))
		xen_early_fatal("tinypv: PANIC: start_info magic is not "
				"xen-3.0-x86_64\n");
	trap_return_via_xen = 1;
	xen_start_info = si;
	xen_p2m = (const unsigned long *)si->mfn_list;
	percpu0.self = &percpu0;
	if (HYPERVISOR_set_segment_base(SEGBASE_GS_KERNEL,
					(unsigned long)&percpu0))
		xen_early_fatal("tinypv: PANIC: xen: cannot set the GS base\n");
	register_vcpu_info();
	percpu0.cr3 = xen_p2m[(si->pt_base - KERNEL_VBASE) >> PAGE_SHIFT]
		      << PAGE_SHIFT;
	pvop_backend_xen(&early);
	pvop_install_table(&early);

	platform_select(&platform_xen_pv);
	copy_cmdline(si);
	boot.boot_path = "xen-pv";
	boot.cmdline = xen_cmdline;
	map_shared_info();
	read_version();
	cpu_detect();
	kernel_main();
}
