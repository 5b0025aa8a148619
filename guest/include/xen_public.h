/*
 * xen_public.h - the Xen public ABI headers from libxen-dev (/usr/include/
 * xen, linked into build/include/xen), with the <stdint.h> types they
 * expect to find already declared. C files include this, never
 * <xen/...> directly.
 */
#ifndef TINYPV_XEN_PUBLIC_H
#define TINYPV_XEN_PUBLIC_H

#include <stdint.h>

#include <xen/xen.h>

#include <xen/arch-x86/hvm/start_info.h>
#include <xen/callback.h>
#include <xen/errno.h>
#include <xen/event_channel.h>
#include <xen/features.h>
#include <xen/physdev.h>
#include <xen/sched.h>
#include <xen/vcpu.h>
#include <xen/version.h>

#endif
