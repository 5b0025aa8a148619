/*
 * test_xen.c - Xen PV specifics: hypercall errors, event delivery on
 * unmask, the pvclock. Skipped on other platforms.
 */
#include "hypercall.h"
#include "ktest.h"
#include "mm.h"
#include "percpu.h"
#include "platform.h"
#include "pvops.h"
#include "xen.h"

#define NEED_XEN(t)                                                            \
	do {                                                                   \
		if (platform->id != PLATFORM_XEN_PV)                           \
			KT_SKIP(t, "not a Xen PV guest");                      \
	} while (0)

KTEST(xen, hypercall_error_is_named)
{
	NEED_XEN(t);
	long rc = xen_hypercall2(__HYPERVISOR_sched_op, 0x7fff, 0);
	KT_EXPECT(t, rc == -XEN_ENOSYS || rc == -XEN_EINVAL,
		  "sched_op(0x7fff) returned %ld", rc);
	KT_EXPECT(t, !strcmp(xen_errno_name(-XEN_ENOSYS), "XEN_ENOSYS"),
		  "ENOSYS is named '%s'", xen_errno_name(-XEN_ENOSYS));
	KT_EXPECT(t, !strcmp(xen_errno_name(-XEN_EFAULT), "XEN_EFAULT"),
		  "EFAULT is named '%s'", xen_errno_name(-XEN_EFAULT));
}

static volatile unsigned ipi_hits;

static void ipi_handler(evtchn_port_t port)
{
	(void)port;
	ipi_hits++;
}

/* An IPI event channel to ourselves, counted by ipi_handler. */
static evtchn_port_t open_self_ipi(void)
{
	struct evtchn_bind_ipi bind = {.vcpu = 0};
	if (HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &bind))
		return 0;
	xen_evtchn_bind(bind.port, ipi_handler);
	return bind.port;
}

static void send_event(evtchn_port_t port)
{
	struct evtchn_send send = {.port = port};
	HYPERVISOR_event_channel_op(EVTCHNOP_send, &send);
}

static void close_port(evtchn_port_t port)
{
	struct evtchn_close close = {.port = port};
	HYPERVISOR_event_channel_op(EVTCHNOP_close, &close);
	xen_evtchn_bind(port, NULL);
}

KTEST(xen, pending_event_delivered_on_unmask)
{
	NEED_XEN(t);
	evtchn_port_t port = open_self_ipi();
	KT_ASSERT(t, port, "bind_ipi failed");

	irq_disable();
	unsigned before = ipi_hits;
	send_event(port);
	KT_EXPECT(t, ipi_hits == before, "delivered while masked");
	KT_EXPECT(t, this_cpu()->vcpu_info.evtchn_upcall_pending,
		  "upcall_pending not set by the send");
	irq_enable();
	KT_EXPECT(t, ipi_hits == before + 1,
		  "not delivered right after unmask (hits %u)",
		  ipi_hits - before);
	close_port(port);
}

KTEST(xen, restore_fl_delivers_pending)
{
	NEED_XEN(t);
	evtchn_port_t port = open_self_ipi();
	KT_ASSERT(t, port, "bind_ipi failed");

	unsigned long fl = irq_save();
	unsigned before = ipi_hits;
	send_event(port);
	irq_restore(fl | X86_EFLAGS_IF);
	KT_EXPECT(t, ipi_hits == before + 1, "restore_fl did not deliver");
	close_port(port);
}

KTEST(xen, version_and_features_reported)
{
	NEED_XEN(t);
	KT_EXPECT(t, xen_version_word >> 16 >= 4, "xen version %#lx",
		  xen_version_word);
	KT_EXPECT(t, xen_start_info && xen_start_info->nr_pages > 0,
		  "start_info has no pages");
}

/*
 * write_cr3 for real under Xen: copy the current L4 into a fresh page,
 * map it read-only, pin it as an L4 table, switch to it, read CR3 back,
 * touch kernel data, switch back, unpin.
 */
KTEST(xen, cr3_switch_to_pinned_copy)
{
	NEED_XEN(t);
	unsigned long old = read_cr3();
	uint64_t pa = pmm_alloc();
	KT_ASSERT(t, pa, "no page");
	void *va = phys_to_virt(pa);
	uint64_t mfn = xen_virt_to_mfn(va);

	memcpy(va, (void *)xen_start_info->pt_base, PAGE_SIZE);
	KT_ASSERT(t,
		  !HYPERVISOR_update_va_mapping((unsigned long)va,
						mfn << PAGE_SHIFT | PTE_P |
						    PTE_A | mmu_nx_bit(),
						UVMF_INVLPG),
		  "cannot map the copy read-only");
	struct mmuext_op pin = {.cmd = MMUEXT_PIN_L4_TABLE, .arg1.mfn = mfn};
	bool pinned = !HYPERVISOR_mmuext_op(&pin, 1);
	KT_EXPECT(t, pinned, "Xen refused to pin the copy as an L4");
	if (pinned) {
		unsigned long fl = irq_save();
		write_cr3(mfn << PAGE_SHIFT);
		unsigned long now = read_cr3();
		volatile uint64_t probe = xen_version_word;
		write_cr3(old);
		irq_restore(fl);
		KT_EXPECT(t, now == mfn << PAGE_SHIFT, "cr3 %#lx, want %#lx",
			  now, mfn << PAGE_SHIFT);
		KT_EXPECT(t, probe == xen_version_word, "data unreadable");
		KT_EXPECT(t, read_cr3() == old, "cr3 not restored");
		struct mmuext_op unpin = {.cmd = MMUEXT_UNPIN_TABLE,
					  .arg1.mfn = mfn};
		KT_EXPECT(t, !HYPERVISOR_mmuext_op(&unpin, 1), "unpin failed");
	}
	HYPERVISOR_update_va_mapping((unsigned long)va,
				     mfn << PAGE_SHIFT | PTE_P | PTE_W | PTE_A |
					 PTE_D | mmu_nx_bit(),
				     UVMF_INVLPG);
	pmm_free(pa);
}
