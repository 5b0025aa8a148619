/*
 * pvop_backend.h - the contract between the patcher and a backend.
 *
 * A backend is a struct pvop_backend: for every op, how it is done here
 * (an inline template, a function with the op's convention, or nothing).
 * An op a backend leaves empty falls back to the native implementation,
 * which is what "native where native is right" means for KVM.
 *
 * Adding a backend: doc/pvops.md, "How to add a backend".
 */
#ifndef TINYPV_PVOP_BACKEND_H
#define TINYPV_PVOP_BACKEND_H

#include "pvop_patch.h"
#include "pvops.h"

/* Inline template and its callable stub (both from pvops/templates.S). */
#define PVOP_IMPL_TPL(t)                                                       \
	((struct pvop_impl){.tpl = &(t),                                       \
			    .call = (void *)(uintptr_t)(t).addr,               \
			    .call_clobbers = (t).clobbers})
/* A C function behind a register-saving thunk (pvops/thunks.S). */
#define PVOP_IMPL_THUNK(fn)                                                    \
	((struct pvop_impl){.call = (void *)(fn), .call_clobbers = PVREG_RAX})
/* Nothing to do: NOPs inline, a bare `ret` when called. */
#define PVOP_IMPL_NOP                                                          \
	((struct pvop_impl){                                                   \
	    .nop = true, .call = (void *)pvstub_nothing, .call_clobbers = 0})

/* The `ret` that "nothing" is when it must be callable (templates.S). */
void pvstub_nothing(void);

#define DECLARE_TEMPLATE(b, op)                                                \
	extern const struct pvop_template pvtpl_##b##_##op;                    \
	extern char pvstub_##b##_##op[]

DECLARE_TEMPLATE(native, irq_disable);
DECLARE_TEMPLATE(native, irq_enable);
DECLARE_TEMPLATE(native, save_fl);
DECLARE_TEMPLATE(native, restore_fl);
DECLARE_TEMPLATE(native, safe_halt);
DECLARE_TEMPLATE(native, halt);
DECLARE_TEMPLATE(native, read_cr2);
DECLARE_TEMPLATE(native, read_cr3);
DECLARE_TEMPLATE(native, write_cr3);
DECLARE_TEMPLATE(native, flush_tlb_one);
DECLARE_TEMPLATE(native, io_delay);
DECLARE_TEMPLATE(native, read_msr);
DECLARE_TEMPLATE(native, write_msr);
DECLARE_TEMPLATE(native, cpuid);
DECLARE_TEMPLATE(native, set_pte);
DECLARE_TEMPLATE(native, set_pmd);
DECLARE_TEMPLATE(native, set_pud);
DECLARE_TEMPLATE(native, set_pgd);
DECLARE_TEMPLATE(native, make_pte);
DECLARE_TEMPLATE(native, pte_val);
DECLARE_TEMPLATE(xen, irq_disable);
DECLARE_TEMPLATE(xen, irq_enable);
DECLARE_TEMPLATE(xen, save_fl);
DECLARE_TEMPLATE(xen, read_cr2);
DECLARE_TEMPLATE(xen, read_cr3);
DECLARE_TEMPLATE(xen, cpuid);
DECLARE_TEMPLATE(native, swapgs);
DECLARE_TEMPLATE(native, iret_user);
DECLARE_TEMPLATE(native, sysret_user);
DECLARE_TEMPLATE(xen, iret_user);
DECLARE_TEMPLATE(xen, sysret_user);

/*
 * An op that leaves for user mode: the template inline, and when called,
 * an entry point that drops the return address first (templates.S).
 */
#define PVOP_IMPL_NORETURN(t, fn)                                              \
	((struct pvop_impl){                                                   \
	    .tpl = &(t), .call = (void *)(fn), .call_clobbers = (t).clobbers})
void pvstub_native_iret_user_call(void);
void pvstub_native_sysret_user_call(void);
void pvstub_xen_iret_user_call(void);
void pvstub_xen_sysret_user_call(void);

/* Thunks (pvops/thunks.S, guest/xen/xen_thunks.S). */
void native_apic_eoi_thunk(void);
void native_clock_read_thunk(void);
void kvm_apic_eoi_thunk(void);
void kvm_clock_read_thunk(void);
void xen_force_upcall_thunk(void);
void xen_restore_fl_thunk(void);
void xen_safe_halt_thunk(void);
void xen_halt_thunk(void);
void xen_write_cr3_thunk(void);
void xen_flush_tlb_one_thunk(void);
void xen_clock_read_thunk(void);
void native_send_ipi_thunk(void);
void native_send_ipi_mask_thunk(void);
void native_flush_tlb_others_thunk(void);
void kvm_send_ipi_thunk(void);
void kvm_send_ipi_mask_thunk(void);
void kvm_flush_tlb_others_thunk(void);
void xen_send_ipi_thunk(void);
void xen_send_ipi_mask_thunk(void);
void xen_flush_tlb_others_thunk(void);
void native_lock_wait_thunk(void);
void xen_lock_wait_thunk(void);
void xen_lock_kick_thunk(void);
void xen_set_pte_thunk(void);
void xen_set_pmd_thunk(void);
void xen_set_pud_thunk(void);
void xen_set_pgd_thunk(void);
void xen_make_pte_thunk(void);
void xen_pte_val_thunk(void);
void xen_alloc_pt_thunk(void);
void xen_release_pt_thunk(void);
void xen_lazy_mmu_enter_thunk(void);
void xen_lazy_mmu_leave_thunk(void);
void native_load_sp0_thunk(void);
void xen_load_sp0_thunk(void);

/*
 * The backends. native is complete; the others start from it. What KVM
 * offers is decided by the platform code (CPUID 0x40000001) and handed in.
 */
struct pvop_kvm_caps {
	bool nop_io_delay; /* KVM_FEATURE_NOP_IO_DELAY */
	bool pv_eoi;	   /* KVM_FEATURE_PV_EOI, and its page is set up */
	bool kvmclock;	   /* KVM_FEATURE_CLOCKSOURCE2, and kvmclock is on */
	bool pv_send_ipi;  /* KVM_FEATURE_PV_SEND_IPI (probed after SMP boot) */
	bool pv_tlb_flush; /* KVM_FEATURE_PV_TLB_FLUSH (checked after boot) */
};
void pvop_backend_native(struct pvop_backend *b);
void pvop_backend_kvm(struct pvop_backend *b, const struct pvop_kvm_caps *c);
void pvop_backend_xen(struct pvop_backend *b);

/* pvops/client.c */
struct pvop_stats {
	/* Per op and kind; the extra column counts sites of failed plans
	 * for the instant before the pass panics on them. */
	unsigned sites[PVOP_NR][PVOP_KIND_NR + 1];
	unsigned total;	 /* every site */
	unsigned pinned; /* benchmark sites with a PVOP_SITE_FORCE_* mode */
};
extern struct pvop_stats pvop_stats;
extern const struct pvop_backend *pvop_current;
extern enum pvop_mode pvop_mode;
extern enum patch_pad pvop_pad;

/* Sites with register saves (pvop_asm.h), as the last pass left them. */
#define PVOP_SAVES_MAX 8
struct pvop_saves_site {
	const struct patch_site *r;
	uint16_t saved;	       /* PVREG_* pushed and popped */
	bool consumed;	       /* the saves were patched away */
	int kind;	       /* PVOP_KIND_* the site became */
	struct pvop_plan plan; /* its bytes (relocations not applied) */
	/* Made by pvop_saves_prepare() for one backend and pvsaves= value,
	 * so the boot batch only looks them up. */
	const struct pvop_backend *plans_for;
	bool plans_consume;
	struct pvop_saves_prepared {
		struct pvop_plan plan;
		int8_t kind;
		bool consumed;
		const char *why;
	} prepared[PVOP_MODE_NR][PATCH_PAD_NR];
};
extern struct pvop_saves_site pvop_saves[PVOP_SAVES_MAX];
extern unsigned pvop_saves_nr;
/* pvsaves=consume (default) | keep: whether saves may be patched away. */
extern bool pvop_consume_saves;
/* pvops/saves.c: the kind, the pass over these sites, their report. */
void pvop_register_saves_kind(void); /* also finds the sites */
void pvop_saves_prepare(const struct pvop_backend *b);
void pvop_patch_saves(const struct pvop_backend *b, enum pvop_mode mode,
		      enum patch_pad pad);
int pvop_saves_expected(const struct patch_site *r, uint8_t *out);
void pvop_saves_report(void);

/* Registers the pvop kind with the patch engine (before patch_init()). */
void pvop_register_kind(void);
/* Points pv_ops at the backend's functions; no text is touched. */
void pvop_install_table(const struct pvop_backend *b);
/*
 * Rewrites every pvop site for the backend, mode and padding, in one
 * engine batch (panics on a bad site). May be called again at any time
 * with another mode: sites not pinned by their flags follow it.
 */
void pvop_patch_all(const struct pvop_backend *b, enum pvop_mode mode,
		    enum patch_pad pad);
/* What a site should hold under the current backend and mode. */
int pvop_expected(const struct patch_site *r, uint8_t *out);
void pvop_report(void);

/* Iterating the pvop sites of the engine's table (without saves). */
#define for_each_pvop_site(r) for_each_patch_site_of(PATCH_KIND_PVOP, r)
/*
 * ... and with the sites that own their saves (PATCH_KIND_PVOP_SAVES):
 * the whole table (registration and tests only).
 */
#define for_each_pvop_record(r)                                                \
	for (const struct patch_site *r = __patch_sites_start;                 \
	     r < __patch_sites_end; r++)                                       \
		if (r->kind == PATCH_KIND_PVOP ||                              \
		    r->kind == PATCH_KIND_PVOP_SAVES)

extern const struct pvop_template __pvop_templates_start[],
    __pvop_templates_end[];

#endif
