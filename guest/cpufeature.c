/*
 * cpufeature.c - the CPU feature words, their names, clearcpuid=, and the
 * synthetic platform bits (cpufeature.h).
 */
#include "cpufeature.h"
#include "cmdline.h"
#include "kernel.h"
#include "platform.h"
#include "pvops.h"

uint32_t cpu_feature_words[CPUFEATURE_WORDS];
uint32_t cpu_feature_cleared[CPUFEATURE_WORDS];

#define F(n, bit)                                                              \
	{                                                                      \
		n, X86_FEATURE_##bit                                           \
	}
const struct cpu_feature_name cpu_feature_names[] = {
    F("tsc", TSC),
    F("apic", APIC),
    F("clflush", CLFLUSH),
    F("sse2", SSE2),
    F("pcid", PCID),
    F("x2apic", X2APIC),
    F("popcnt", POPCNT),
    F("tsc_deadline", TSC_DEADLINE),
    F("xsave", XSAVE),
    F("rdrand", RDRAND),
    F("hypervisor", HYPERVISOR),
    F("fsgsbase", FSGSBASE),
    F("smep", SMEP),
    F("erms", ERMS),
    F("invpcid", INVPCID),
    F("smap", SMAP),
    F("clflushopt", CLFLUSHOPT),
    F("clwb", CLWB),
    F("umip", UMIP),
    F("pku", PKU),
    F("rdpid", RDPID),
    F("fsrm", FSRM),
    F("serialize", SERIALIZE),
    F("syscall", SYSCALL),
    F("nx", NX),
    F("pdpe1gb", GBPAGES),
    F("rdtscp", RDTSCP),
    F("lm", LM),
    F("lahf_lm", LAHF_LM),
    F("abm", ABM),
    F("xen_pv", XEN_PV),
    F("kvm", KVM),
    {NULL, 0},
};

const char *cpu_feature_name(unsigned f)
{
	for (const struct cpu_feature_name *n = cpu_feature_names; n->name; n++)
		if (n->bit == f)
			return n->name;
	return NULL;
}

int cpu_feature_by_name(const char *name, unsigned len)
{
	for (const struct cpu_feature_name *n = cpu_feature_names; n->name; n++)
		if (strlen(n->name) == len && !strncmp(n->name, name, len))
			return n->bit;
	return -1;
}

void cpu_features_read(void)
{
	struct cpuid_regs r = cpuid(0, 0);
	uint32_t max = r.eax;

	r = cpuid(1, 0);
	cpu_feature_words[0] = r.edx;
	cpu_feature_words[1] = r.ecx;
	if (max >= 7) {
		r = cpuid(7, 0);
		cpu_feature_words[2] = r.ebx;
		cpu_feature_words[3] = r.ecx;
		cpu_feature_words[4] = r.edx;
	}
	uint32_t max_ext = cpuid(0x80000000, 0).eax;
	if (max_ext >= 0x80000001) {
		r = cpuid(0x80000001, 0);
		cpu_feature_words[5] = r.edx;
		cpu_feature_words[6] = r.ecx;
	}
}

static void set_bit(unsigned f)
{
	cpu_feature_words[f / 32] |= 1u << (f % 32);
}

/* clearcpuid=a,b,...: each known name is cleared, any other one warned of. */
static void apply_clearcpuid(const char *list)
{
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		unsigned len = end ? (unsigned)(end - p) : strlen(p);
		int f = cpu_feature_by_name(p, len);
		if (f < 0) {
			printk("warning: clearcpuid=%.*s: no such feature "
			       "(the names are cpu_feature_names in "
			       "guest/cpufeature.c); ignored\n",
			       (int)len, p);
			cmdline_warnings++;
		} else {
			cpu_feature_words[f / 32] &= ~(1u << (f % 32));
			cpu_feature_cleared[f / 32] |= 1u << (f % 32);
		}
		p += len + (end ? 1 : 0);
	}
}

void cpu_features_settle(void)
{
	if (platform->id == PLATFORM_XEN_PV)
		set_bit(X86_FEATURE_XEN_PV);
	if (platform->id == PLATFORM_KVM)
		set_bit(X86_FEATURE_KVM);
	if (opts.clearcpuid)
		apply_clearcpuid(opts.clearcpuid);
}

void cpu_features_report(void)
{
	char buf[400];
	unsigned k = 0;

	buf[0] = '\0';
	for (const struct cpu_feature_name *n = cpu_feature_names; n->name; n++)
		if (cpu_has(n->bit) && k < sizeof(buf))
			k += snprintf(buf + k, sizeof(buf) - k, " %s", n->name);
	printk("cpu features:%s\n", k ? buf : " none");
	k = 0;
	for (const struct cpu_feature_name *n = cpu_feature_names; n->name; n++)
		if ((cpu_feature_cleared[n->bit / 32] >> (n->bit % 32) & 1) &&
		    k < sizeof(buf))
			k += snprintf(buf + k, sizeof(buf) - k, " %s", n->name);
	if (k)
		printk("cpu features cleared (clearcpuid=):%s\n", buf);
}
