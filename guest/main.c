/*
 * main.c - common start-up, after either boot head.
 *
 *   boot head (PVH or Xen PV) -> kernel_main():
 *     parse the command line, settle the platform (detected, or forced
 *     where that is safe), platform init (memory, traps, timer), patch
 *     every pvop site, protect text, print the boot report, start the
 *     tick, run the tests (or benchmarks), end QEMU with the verdict.
 */
#include "bench.h"
#include "cmdline.h"
#include "kernel.h"
#include "ktest.h"
#include "layout.h"
#include "mm.h"
#include "percpu.h"
#include "platform.h"
#include "pvop_backend.h"
#include "timer.h"

struct boot_info boot;
const struct platform *platform;
struct percpu percpu0; /* the boot CPU; %gs points here on every platform */

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
		platform = &platform_native;
		return;
	}
	if (!strcmp(want, "kvm")) {
		if (strcmp(boot.hv_signature, "KVMKVMKVM"))
			printk(
			    "warning: platform=kvm refused: no KVM signature "
			    "at CPUID 0x40000000 (found '%s')\n",
			    boot.hv_signature);
		else
			platform = &platform_kvm;
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

static enum pvop_pad pad_option(void)
{
	for (int i = 0; opts.pvpad && i < PVOP_PAD_NR; i++)
		if (!strcmp(opts.pvpad, pvop_pad_names[i]))
			return i;
	if (opts.pvpad)
		printk(
		    "warning: pvpad=%s unknown (nops | nop1 | jmp | single | "
		    "prefix); using %s\n",
		    opts.pvpad, pvop_pad_names[PVOP_PAD_DEFAULT]);
	return PVOP_PAD_DEFAULT;
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
	printk("tsc frequency: %lu kHz\n", tsc_khz);
	printk("memory: %lu KiB usable, allocator %lu pages (%lu free)\n",
	       usable >> 10, pmm_total_pages(), pmm_free_pages());
	printk("command line: %s\n", boot.cmdline);
	if (platform->report)
		platform->report();
	pvop_report();
	printk("boot ticks: entry to all sites patched %lu\n",
	       pvop_stats.done_tsc - boot_tsc_entry);
}

/*
 * inject=corrupt-site: overwrite the first byte of the first pvop site, as
 * a stale or mismatched table would, so the harness can check that the
 * patcher refuses it loudly (the boot must panic and name the site).
 */
static void inject_corrupt_site(void)
{
	const struct pvop_site *s = __pvop_sites_start;
	uint8_t int3 = 0xcc;

	printk("inject: corrupting site %016lx (%s)\n", s->addr,
	       pvop_names[s->op]);
	text_poke((void *)s->addr, &int3, 1);
}

void kernel_main(void)
{
	static struct pvop_backend backend;

	printk("tinypv: booting (%s entry)\n", boot.boot_path);
	cmdline_parse(boot.cmdline);
	apply_platform_option();
	platform->init();
	platform->pvop_backend(&backend);
	if (opts.inject && !strcmp(opts.inject, "corrupt-site"))
		inject_corrupt_site();
	pvop_patch_all(&backend, mode_option(), pad_option());
	platform->protect_text();
	boot_report();

	platform->tick_start(TICK_HZ);
	irq_enable();
	boot_tsc_ready = rdtsc();
	printk("tinypv: ready, %lu ticks after entry\n",
	       boot_tsc_ready - boot_tsc_entry);

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
