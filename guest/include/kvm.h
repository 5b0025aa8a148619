/*
 * kvm.h - KVM paravirtual interfaces tinypv uses (values from the KVM
 * documentation, Documentation/virt/kvm/x86/cpuid.rst and msr.rst).
 */
#ifndef TINYPV_KVM_H
#define TINYPV_KVM_H

#include <stdint.h>

#define KVM_CPUID_FEATURES 0x40000001
#define KVM_FEATURE_CLOCKSOURCE (1u << 0)
#define KVM_FEATURE_NOP_IO_DELAY (1u << 1)
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define KVM_FEATURE_PV_EOI (1u << 6)
#define KVM_FEATURE_PV_UNHALT (1u << 7)
#define KVM_FEATURE_PV_TLB_FLUSH (1u << 9)
#define KVM_FEATURE_PV_SEND_IPI (1u << 11)

/* Hypercalls (Documentation/virt/kvm/x86/hypercalls.rst). */
#define KVM_HC_SEND_IPI 10

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_PV_EOI_EN 0x4b564d04

extern uint32_t kvm_features;

/* guest/kvm.c */
void kvm_init(void);
void kvm_init_cpu(void); /* an AP: its own PV EOI word */
uint64_t kvm_pv_eoi(void);
uint64_t kvmclock_read(void);
void kvm_report(void);
/* The PV send-IPI hypercall, once the probe saw it work; else native. */
uint64_t kvm_send_ipi(uint64_t arg);
uint64_t kvm_send_ipi_mask(uint64_t arg);
void kvm_smp_ready(void); /* the probe, after SMP bring-up */

#endif
