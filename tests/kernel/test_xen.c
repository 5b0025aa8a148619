/*
 * test_xen.c - Xen PV specifics: hypercall errors, event delivery on
 * unmask, the pvclock. Skipped on other platforms.
 */
#include "hypercall.h"
#include "ktest.h"
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

KTEST(xen, pending_event_delivered_on_unmask)
{
	NEED_XEN(t);
	struct evtchn_bind_ipi bind = {.vcpu = 0};
	KT_ASSERT(t, !HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &bind),
		  "bind_ipi failed");
	xen_evtchn_bind(bind.port, ipi_handler);

	irq_disable();
	unsigned before = ipi_hits;
	struct evtchn_send send = {.port = bind.port};
	KT_ASSERT(t, !HYPERVISOR_event_channel_op(EVTCHNOP_send, &send),
		  "send failed");
	KT_EXPECT(t, ipi_hits == before, "delivered while masked");
	KT_EXPECT(t, this_cpu()->vcpu_info.evtchn_upcall_pending,
		  "upcall_pending not set by the send");
	irq_enable();
	KT_EXPECT(t, ipi_hits == before + 1,
		  "not delivered right after unmask (hits %u)",
		  ipi_hits - before);

	struct evtchn_close close = {.port = bind.port};
	HYPERVISOR_event_channel_op(EVTCHNOP_close, &close);
	xen_evtchn_bind(bind.port, NULL);
}

KTEST(xen, restore_fl_delivers_pending)
{
	NEED_XEN(t);
	struct evtchn_bind_ipi bind = {.vcpu = 0};
	KT_ASSERT(t, !HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &bind),
		  "bind_ipi failed");
	xen_evtchn_bind(bind.port, ipi_handler);
	unsigned long fl = irq_save();
	unsigned before = ipi_hits;
	struct evtchn_send send = {.port = bind.port};
	HYPERVISOR_event_channel_op(EVTCHNOP_send, &send);
	irq_restore(fl | X86_EFLAGS_IF);
	KT_EXPECT(t, ipi_hits == before + 1, "restore_fl did not deliver");
	struct evtchn_close close = {.port = bind.port};
	HYPERVISOR_event_channel_op(EVTCHNOP_close, &close);
	xen_evtchn_bind(bind.port, NULL);
}

KTEST(xen, version_and_features_reported)
{
	NEED_XEN(t);
	KT_EXPECT(t, xen_version_word >> 16 >= 4, "xen version %#lx",
		  xen_version_word);
	KT_EXPECT(t, xen_start_info && xen_start_info->nr_pages > 0,
		  "start_info has no pages");
}
