/*
 * hypercall.c - naming Xen's error codes (from xen/errno.h itself).
 */
#include "hypercall.h"
#include "kernel.h"

/*
 * xen/errno.h expands a caller-provided XEN_ERRNO(name, value). Some
 * values have two names (EWOULDBLOCK = EAGAIN); the last one wins.
 */
#pragma GCC diagnostic ignored "-Woverride-init"
static const char *const xen_errnos[] = {
#define XEN_ERRNO(name, value) [value] = "XEN_" #name,
#include <xen/errno.h>
};

const char *xen_errno_name(long rc)
{
	long e = -rc;
	if (e > 0 && e < (long)ARRAY_SIZE(xen_errnos) && xen_errnos[e])
		return xen_errnos[e];
	return "unknown";
}

long xen_check(const char *name, long rc)
{
	if (rc < 0)
		printk("xen: %s failed: %ld (%s)\n", name, rc,
		       xen_errno_name(rc));
	return rc;
}
