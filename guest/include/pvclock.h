/*
 * pvclock.h - the paravirtual clock reader shared by KVM and Xen PV.
 * KVM's pvclock_vcpu_time_info has the same layout as Xen's
 * struct vcpu_time_info (xen/xen.h), so both use the Xen type.
 */
#ifndef TINYPV_PVCLOCK_H
#define TINYPV_PVCLOCK_H

#include "xen_public.h"
#include <stdint.h>

uint64_t pvclock_read_system(const volatile struct vcpu_time_info *t);
uint64_t pvclock_tsc_khz(const volatile struct vcpu_time_info *t);

#endif
