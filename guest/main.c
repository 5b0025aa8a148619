/*
 * main.c - common start-up, after either boot head.
 *
 *   boot head (PVH or Xen PV) -> kernel_main():
 *     parse the command line, settle the platform (detected, or forced
 *     where that is safe), platform init (memory, traps, timer), the
 *     private poke mapping, protect text, check every patch-site record,
 *     patch every pvop site, start the other CPUs, print the boot
 *     report, start the tick, run
 *     the tests (or benchmarks), end QEMU with the verdict.
 */
#include "alternative.h"
#include "bench.h"
#include "cmdline.h"
#include "cpufeature.h"
#include "kernel.h"
#include "ktest.h"
#include "layout.h"
#include "mm.h"
#include "patch.h"
#include "percpu.h"
#include "platform.h"
#include "pvop_backend.h"
#include "smp.h"
#include "static_call.h"
#include "timer.h"
#include "trap.h"

struct boot_info boot;
const struct platform *platform;
/* percpu_area[0] is the boot CPU's; %gs points at its own on every CPU. */
struct percpu percpu_area[NR_CPUS_MAX];

/* platform=... may only pick something this boot can really run as. */
static void apply_platform_option(void)
{
	const char *want = opts.platform;

	if (!want || !strcmp(want, platform->name))
		return;
	if (platform->id == PLATFORM_XEN_PV) {
		printk("warning: platform=%s refused: this kernel was entered "
		       "as a Xen PV guest and runs in ring 3; only xen-pv can "
		       "work\n",
		       want);
		return;
	}
	if (!strcmp(want, "native")) {
		platform_select(&platform_native);
		return;
	}
	if (!strcmp(want, "kvm")) {
		if (strcmp(boot.hv_signature, "KVMKVMKVM"))
			printk(
			    "warning: platform=kvm refused: no KVM signature "
			    "at CPUID 0x40000000 (found '%s')\n",
			    boot.hv_signature);
		else
			platform_select(&platform_kvm);
		return;
	}
	if (!strcmp(want, "xen-pv")) {
		printk("warning: platform=xen-pv refused: this boot came "
		       "through the PVH entry, not from a Xen PV domain "
		       "builder; there is no hypercall page or start_info\n");
		return;
	}
	printk("warning: platform=%s unknown (native | kvm | xen-pv); "
	       "using %s\n",
	       want, platform->name);
}

static enum pvop_mode mode_option(void)
{
	if (!opts.pvops || !strcmp(opts.pvops, "on"))
		return PVOP_MODE_INLINE;
	if (!strcmp(opts.pvops, "off"))
		return PVOP_MODE_INDIRECT;
	if (!strcmp(opts.pvops, "noinline"))
		return PVOP_MODE_CALL;
	printk("warning: pvops=%s unknown (on | off | noinline); using on\n",
	       opts.pvops);
	return PVOP_MODE_INLINE;
}

static enum patch_pad pad_option(void)
{
	for (int i = 0; opts.pvpad && i < PATCH_PAD_NR; i++)
		if (!strcmp(opts.pvpad, patch_pad_names[i]))
			return i;
	if (opts.pvpad)
		printk(
		    "warning: pvpad=%s unknown (nops | nop1 | jmp | single | "
		    "prefix); using %s\n",
		    opts.pvpad, patch_pad_names[PATCH_PAD_DEFAULT]);
	return PATCH_PAD_DEFAULT;
}

/* Under QEMU -icount shift=0 a TSC tick is one guest instruction. */
static void patch_cost_report(void)
{
	const char *unit = opts.icount ? "guest instructions" : "TSC ticks";
	unsigned n = pvop_stats.total;

	printk("patch: %u site records checked in %lu %s", patch_nr_sites(),
	       boot.patch_check_ticks, unit);
	for (unsigned k = 1; k < PATCH_KIND_NR; k++)
		if (patch_stats.check_records[k])
			printk("; %s %u in %lu", patch_kind_name(k),
			       patch_stats.check_records[k],
			       (unsigned long)patch_stats.check_ticks[k]);
	printk("\n");
	printk("alternatives: patching took %lu %s (%lu per site)\n",
	       boot.alt_ticks, unit,
	       alt_stats.sites ? boot.alt_ticks / alt_stats.sites : 0);
	printk("pvops: patching took %lu %s (%lu us; %lu per site), %lu "
	       "writes in %lu batch(es)\n",
	       boot.patch_ticks, unit,
	       tsc_khz ? boot.patch_ticks * 1000 / tsc_khz : 0,
	       n ? boot.patch_ticks / n : 0, patch_stats.writes,
	       patch_stats.batches);
	printk("boot ticks: entry to all sites patched %lu\n",
	       boot.patched_tsc - boot_tsc_entry);
}

static void boot_report(void)
{
	uint64_t usable = 0;
	for (unsigned i = 0; i < boot.memmap_nr; i++)
		if (boot.memmap[i].type == 1)
			usable += boot.memmap[i].size;

	printk("boot path: %s\n", boot.boot_path);
	printk("platform: %s\n", platform->name);
	printk("hypervisor signature: %s\n",
	       boot.hv_signature[0] ? boot.hv_signature : "none");
	printk("cpu vendor: %s\n", cpu_vendor());
	printk("cpu model: %s\n", cpu_model());
	cpu_features_report();
	printk("tsc frequency: %lu kHz\n", tsc_khz);
	printk("memory: %lu KiB usable, allocator %lu pages = %lu MiB (%lu "
	       "free)\n",
	       usable >> 10, pmm_total_pages(), pmm_total_pages() >> 8,
	       pmm_free_pages());
	printk("command line: %s\n", boot.cmdline);
	smp_report();
	if (platform->report)
		platform->report();
	alt_report();
	pvop_report();
	static_call_report();
	patch_cost_report();
}

/*
 * inject=corrupt-site: overwrite the first byte of the first pvop site, as
 * a stale or mismatched table would, so the harness can check that the
 * engine refuses it loudly (the boot must panic and name the site).
 * inject=corrupt-patched-site does it after boot patching, then patches
 * again: the engine must see that the site no longer holds its last write.
 */
static void inject_corrupt_site(void)
{
	uint8_t int3 = 0xcc;

	for_each_pvop_site(r)
	{
		printk("inject: corrupting site %016lx (%s)\n",
		       (unsigned long)patch_site_addr(r), pvop_names[r->arg]);
		text_poke((void *)patch_site_addr(r), &int3, 1);
		return;
	}
}

/*
 * inject=corrupt-scall-site: a stray write over the tick's first static
 * call site, then an update of the key: the engine must refuse the site.
 */
static void inject_corrupt_scall_site(void)
{
	const struct patch_site *r = __SCK__tick.sites;
	uint8_t int3 = 0xcc;

	if (!r)
		panic("inject: the tick key has no call site");
	printk("inject: corrupting static call site %016lx (key tick)\n",
	       (unsigned long)patch_site_addr(r));
	text_poke((void *)patch_site_addr(r), &int3, 1);
	static_call_update(tick, tick_handler_common);
}

/* True if a write to kernel text faults (it is read-only), via a fixup. */
static bool text_write_faults(void)
{
	volatile uint8_t *p = (volatile uint8_t *)_text_start;
	uint64_t before = fault_count();
	asm volatile("1: movb %1, (%0)\n2:\n" EXTABLE_JUMP("1b", "2b", "2b")
		     :
		     : "r"(p), "r"(*p)
		     : "memory");
	return fault_count() == before + 1;
}

/*
 * Text is read-only before the first write (writes go through the private
 * poke mapping); every record is checked once, then one batch patches
 * every pvop site. Both steps are timed for the boot report.
 */
static void patch_boot(const struct pvop_backend *b)
{
	boot.text_ro_when_patched = text_write_faults();
	uint64_t t0 = rdtsc_ordered();
	patch_init();
	uint64_t ta = rdtsc_ordered();
	alt_apply_all(opts.noalternatives);
	uint64_t t1 = rdtsc_ordered();
	boot.alt_ticks = t1 - ta;
	pvop_patch_all(b, mode_option(), pad_option());
	boot.patched_tsc = rdtsc_ordered();
	boot.patch_check_ticks = ta - t0;
	boot.patch_ticks = boot.patched_tsc - t1;
}

void kernel_main(void)
{
	static struct pvop_backend backend;

	printk("tinypv: booting (%s entry)\n", boot.boot_path);
	cmdline_parse(boot.cmdline);
	apply_platform_option();
	cpu_features_settle();
	platform->init();
	patch_seam_init();
	platform->protect_text();
	pvop_register_kind();
	alt_register_kind();
	static_call_register_kind();
	live_test_register_kind();
	platform->pvop_backend(&backend);
	pvop_backend_prepare(&backend);
	/* The cmdline parser refused any other value of pvsaves=. */
	pvop_consume_saves = !opts.pvsaves || strcmp(opts.pvsaves, "keep");
	pvop_saves_prepare(&backend);
	if (opts.inject && !strcmp(opts.inject, "corrupt-site"))
		inject_corrupt_site();
	patch_boot(&backend);
	if (opts.inject && !strcmp(opts.inject, "corrupt-patched-site")) {
		/*
		 * A stray write after patching: the next pass must refuse it,
		 * though that pass (same mode) has nothing to write there.
		 */
		inject_corrupt_site();
		pvop_patch_all(&backend, pvop_mode, pvop_pad);
	}
	static_call_init(opts.staticcall && !strcmp(opts.staticcall, "outline")
			     ? STATIC_CALL_OUTLINE
			     : STATIC_CALL_INLINE);
	if (opts.inject && !strcmp(opts.inject, "corrupt-scall-site"))
		inject_corrupt_scall_site();
	/* Only now other CPUs run kernel text: boot patching is over. */
	for (unsigned i = 0; opts.patchlive && i < 3; i++)
		if (!strcmp(opts.patchlive, patch_live_names[i]))
			patch_live_path = (enum patch_live_path)i;
	smp_boot();
	boot_report();

	platform->tick_start(TICK_HZ);
	irq_enable();
	boot_tsc_ready = rdtsc();
	printk("tinypv: ready, %lu ticks after entry\n",
	       boot_tsc_ready - boot_tsc_entry);

	if (opts.inject && !strcmp(opts.inject, "stray-int3")) {
		/* No batch owns it: a real breakpoint, reported as one. */
		printk("inject: executing an int3 outside any patch batch\n");
		asm volatile("int3");
	}
	if (opts.bench) {
		bench_run();
		machine_exit(EXIT_PASS);
	}
	unsigned failed = 0;
	if (opts.notests)
		printk("KTAP version 1\n1..0 # SKIP notests\n");
	else
		failed = ktest_run(opts.ktest);
	printk("tinypv: result %s\n", failed ? "FAIL" : "PASS");
	machine_exit(failed ? EXIT_FAIL : EXIT_PASS);
}
