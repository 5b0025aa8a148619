/*
 * platform.h - what the common kernel needs from the machine it runs on.
 *
 * The boot head (native PVH or Xen PV) fills struct boot_info and picks a
 * struct platform; from then on the common code (guest/main.c) never asks
 * where it runs, it calls these hooks. Privileged instructions are not
 * here: those are pvops (pvops.h). This is the coarser seam: console,
 * exit, interrupt sources, memory and text-poking mappings.
 */
#ifndef TINYPV_PLATFORM_H
#define TINYPV_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serial.h"
#include "static_call.h"

enum platform_id {
	PLATFORM_NATIVE,
	PLATFORM_KVM,
	PLATFORM_XEN_PV,
};

#define MEMMAP_MAX 32

struct mem_range {
	uint64_t start, size;
	uint32_t type; /* 1 = usable RAM, as in the E820 map */
};

struct pvop_backend;
struct percpu;

struct boot_info {
	const char *boot_path; /* "pvh" or "xen-pv" */
	const char *cmdline;
	struct mem_range memmap[MEMMAP_MAX];
	unsigned memmap_nr;
	char hv_signature[13]; /* CPUID 0x40000000, "" if none */
	uint32_t hv_max_leaf;
	uint64_t rsdp_pa; /* PVH: the ACPI RSDP (0: not given) */
	/* Boot patching cost (guest/main.c), in TSC ticks. */
	uint64_t patch_check_ticks; /* patch_init(): every record checked */
	uint64_t alt_ticks;	   /* alt_apply_all(): the alternatives batch */
	uint64_t patch_ticks;	   /* pvop_patch_all(): the boot batch */
	uint64_t patched_tsc;	   /* TSC when it finished */
	bool text_ro_when_patched; /* a write to text faulted just before */
};

struct platform {
	const char *name; /* "native", "kvm", "xen-pv" */
	enum platform_id id;
	void (*console_write)(const char *s, size_t n);
	/* Memory, traps, timer calibration: everything before patching. */
	void (*init)(void);
	/* Fill in this platform's pvop backend. */
	void (*pvop_backend)(struct pvop_backend *b);
	void (*exit)(int code) __attribute__((noreturn));
	/* Timer/event source: start a periodic tick of hz per second. */
	void (*tick_start)(unsigned hz);
	/*
	 * Make the page at `window` a writable view of the page holding
	 * kernel address `target`, and put it back afterwards (the TLB
	 * tests use it). Neither flushes the TLB: the caller does.
	 */
	void (*alias_map)(uintptr_t window, uintptr_t target);
	void (*alias_unmap)(uintptr_t window);
	/*
	 * Build the private poke page tables (guest/patch_seam.c) and return
	 * the CR3 value that loads them.
	 */
	uint64_t (*poke_tables)(void);
	/* Make kernel text read-only (before patching: writes use the alias). */
	void (*protect_text)(void);
	/*
	 * SMP (guest/smp.c). cpus_list writes up to max CPU ids (native:
	 * APIC ids; Xen: vCPU ids), the boot CPU's first, and returns how
	 * many there are (0: enumeration failed, run on the boot CPU).
	 * cpu_start starts the CPU p describes (p->apic_id, p->stack_top)
	 * and returns false if it could not even be asked to; the CPU
	 * itself ends in smp_ap_online().
	 */
	unsigned (*cpus_list)(uint32_t *ids, unsigned max);
	bool (*cpu_start)(struct percpu *p);
	/* A CPU that did not come up in time: make sure it never runs. */
	void (*cpu_abandon)(struct percpu *p);
	/*
	 * Unmap the kernel page at va for good (an AP stack's guard page),
	 * flushing this CPU's TLB; NULL: no guard pages.
	 */
	void (*guard_page)(uintptr_t va);
	/*
	 * Make this CPU ready to take IPIs (native: once, the vectors'
	 * handlers; Xen: bind this vCPU's IPI event channels). Runs on each
	 * CPU before it says it is up. smp_ready, if set, runs once on the
	 * boot CPU after bring-up (KVM: the PV send-IPI probe).
	 */
	void (*ipi_init_cpu)(struct percpu *p);
	void (*smp_ready)(void);
	/*
	 * The user task (guest/user.c): user_init once (system call entry,
	 * selectors), user_map for each of its pages, then user_activate
	 * if set (Xen: the separate user page tables go live).
	 */
	void (*user_init)(void);
	void (*user_map)(uint64_t va, const void *kva, bool writable,
			 bool exec);
	void (*user_activate)(void);
	/* Lines for the boot report that only this platform knows. */
	void (*report)(void);
};

extern struct boot_info boot;
extern const struct platform *platform;
/*
 * Make p the platform: also points the console_write static call (printk)
 * at p's console. Safe before patching (guest/printk.c).
 */
void platform_select(const struct platform *p);
/* printk's console: a static call (its type is every console's). */
DECLARE_STATIC_CALL(console_write, serial_write);
extern const struct platform platform_native;
extern const struct platform platform_kvm;
extern const struct platform platform_xen_pv;

/* guest/main.c: common start-up, called by both boot heads. */
void kernel_main(void) __attribute__((noreturn));

/* guest/cpu.c */
void cpu_detect(void);
const char *cpu_vendor(void);
const char *cpu_model(void);
bool cpu_has_x2apic(void);
bool cpu_has_nx(void);

/* Linker-script symbols. */
extern char _kernel_start[], _kernel_end[], _text_start[], _text_end[];
extern char _rodata_start[], _rodata_end[], _data_start[];
extern char __bss_start[], __bss_end[];

#endif
