/*
 * cpufeature.h - named CPU feature bits, from CPUID and from the platform.
 *
 * The kernel reads the CPUID leaves it needs once (cpu_detect(), through
 * the cpuid pvop, so a Xen PV guest sees what Xen chose to show it) into
 * a bit array indexed by X86_FEATURE_*: word W, bit B is W * 32 + B. Words
 * 0..6 are CPUID registers; word 7 holds synthetic bits that say what the
 * platform is (Xen PV, KVM), so that a choice made on the platform can be
 * written as a CPU-feature alternative too (alt/include/alternative.h).
 *
 *   if (cpu_has(X86_FEATURE_RDTSCP)) ...
 *   ALTERNATIVE("lfence; rdtsc", "rdtscp", X86_FEATURE_RDTSCP)
 *
 * `clearcpuid=NAME[,NAME...]` clears bits after detection (to test the
 * fallbacks); a name not in cpu_feature_names prints a `warning:` line.
 * The numbers are plain decimal so that scripts/check_sites.py can read
 * CPUFEATURE_NR by name; the comment says which word and bit each is.
 */
#ifndef TINYPV_CPUFEATURE_H
#define TINYPV_CPUFEATURE_H

#define CPUFEATURE_WORDS 8
#define CPUFEATURE_NR 256 /* CPUFEATURE_WORDS * 32 */

/* Word 0: CPUID 1 EDX */
#define X86_FEATURE_TSC 4      /* 0*32+4 */
#define X86_FEATURE_APIC 9     /* 0*32+9 */
#define X86_FEATURE_CLFLUSH 19 /* 0*32+19 */
#define X86_FEATURE_SSE2 26    /* 0*32+26 */
/* Word 1: CPUID 1 ECX */
#define X86_FEATURE_PCID 49	    /* 1*32+17 */
#define X86_FEATURE_X2APIC 53	    /* 1*32+21 */
#define X86_FEATURE_POPCNT 55	    /* 1*32+23 */
#define X86_FEATURE_TSC_DEADLINE 56 /* 1*32+24 */
#define X86_FEATURE_XSAVE 58	    /* 1*32+26 */
#define X86_FEATURE_RDRAND 62	    /* 1*32+30 */
#define X86_FEATURE_HYPERVISOR 63   /* 1*32+31 */
/* Word 2: CPUID 7.0 EBX */
#define X86_FEATURE_FSGSBASE 64	  /* 2*32+0 */
#define X86_FEATURE_SMEP 71	  /* 2*32+7 */
#define X86_FEATURE_ERMS 73	  /* 2*32+9 */
#define X86_FEATURE_INVPCID 74	  /* 2*32+10 */
#define X86_FEATURE_SMAP 84	  /* 2*32+20 */
#define X86_FEATURE_CLFLUSHOPT 87 /* 2*32+23 */
#define X86_FEATURE_CLWB 88	  /* 2*32+24 */
/* Word 3: CPUID 7.0 ECX */
#define X86_FEATURE_UMIP 98   /* 3*32+2 */
#define X86_FEATURE_PKU 99    /* 3*32+3 */
#define X86_FEATURE_RDPID 118 /* 3*32+22 */
/* Word 4: CPUID 7.0 EDX */
#define X86_FEATURE_FSRM 132	  /* 4*32+4 */
#define X86_FEATURE_SERIALIZE 142 /* 4*32+14 */
/* Word 5: CPUID 0x80000001 EDX */
#define X86_FEATURE_SYSCALL 171 /* 5*32+11 */
#define X86_FEATURE_NX 180	/* 5*32+20 */
#define X86_FEATURE_GBPAGES 186 /* 5*32+26 */
#define X86_FEATURE_RDTSCP 187	/* 5*32+27 */
#define X86_FEATURE_LM 189	/* 5*32+29 */
/* Word 6: CPUID 0x80000001 ECX */
#define X86_FEATURE_LAHF_LM 192 /* 6*32+0 */
#define X86_FEATURE_ABM 197	/* 6*32+5 */
/* Word 7: synthetic, set from the platform (guest/cpufeature.c) */
#define X86_FEATURE_XEN_PV 224 /* 7*32+0: running as a Xen PV guest */
#define X86_FEATURE_KVM 225    /* 7*32+1: KVM signature at 0x40000000 */

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stdint.h>

extern uint32_t cpu_feature_words[CPUFEATURE_WORDS];

static inline bool cpu_has(unsigned f)
{
	return f < CPUFEATURE_NR && (cpu_feature_words[f / 32] >> (f % 32) & 1);
}

struct cpu_feature_name {
	const char *name;
	uint16_t bit;
};
/* Every named feature, in X86_FEATURE_* order; ends with {NULL, 0}. */
extern const struct cpu_feature_name cpu_feature_names[];

/* The name of feature f ("rdtscp"), or NULL if it has none. */
const char *cpu_feature_name(unsigned f);
/* The feature called name, or -1. */
int cpu_feature_by_name(const char *name, unsigned len);

/*
 * The kernel's boot: read the CPUID words (from cpu_detect()); then, once
 * the platform is settled and the command line parsed, set the synthetic
 * bits and apply clearcpuid= (warns about unknown names).
 */
void cpu_features_read(void);
void cpu_features_settle(void);
/* Bits cleared by clearcpuid= (for the report and tests). */
extern uint32_t cpu_feature_cleared[CPUFEATURE_WORDS];
/* "cpu features: ..." */
void cpu_features_report(void);
#endif

#endif
