/*
 * cpu.c - what the CPU and the hypervisor (if any) say about themselves.
 */
#include "cpufeature.h"
#include "kernel.h"
#include "platform.h"
#include "pvops.h"

static char vendor[13];
static char model[49];
static uint32_t feat_ecx;

static void put_regs(char *dst, uint32_t a, uint32_t b, uint32_t c)
{
	memcpy(dst, &a, 4);
	memcpy(dst + 4, &b, 4);
	memcpy(dst + 8, &c, 4);
}

void cpu_detect(void)
{
	struct cpuid_regs r = cpuid(0, 0);
	put_regs(vendor, r.ebx, r.edx, r.ecx);

	r = cpuid(1, 0);
	feat_ecx = r.ecx;
	cpu_features_read();

	uint32_t max_ext = cpuid(0x80000000, 0).eax;
	if (max_ext >= 0x80000004) {
		for (uint32_t i = 0; i < 3; i++) {
			r = cpuid(0x80000002 + i, 0);
			memcpy(model + 16 * i, &r, 16);
		}
	}
	/* Leading blanks are common in brand strings. */
	size_t skip = 0;
	while (model[skip] == ' ')
		skip++;
	memmove(model, model + skip, sizeof(model) - skip);

	/* Hypervisor present bit, then the signature leaf. */
	if (feat_ecx & (1u << 31)) {
		r = cpuid(0x40000000, 0);
		boot.hv_max_leaf = r.eax;
		put_regs(boot.hv_signature, r.ebx, r.ecx, r.edx);
	}
}

const char *cpu_vendor(void)
{
	return vendor;
}

const char *cpu_model(void)
{
	return model[0] ? model : "unknown";
}

bool cpu_has_x2apic(void)
{
	return cpu_has(X86_FEATURE_X2APIC);
}

bool cpu_has_nx(void)
{
	return cpu_has(X86_FEATURE_NX);
}
