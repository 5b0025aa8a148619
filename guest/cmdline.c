/*
 * cmdline.c - parse the command line into struct kernel_options.
 */
#include "cmdline.h"
#include "kernel.h"

struct kernel_options opts;
unsigned cmdline_warnings;

struct option_desc {
	const char *key;
	size_t member;	     /* offsetof in struct kernel_options */
	bool flag;	     /* bare option (bool) rather than key=value */
	const char *choices; /* "a|b": the values allowed, or NULL = any */
	const char *help;
};

#define STR(m) offsetof(struct kernel_options, m), false
#define FLAG(m) offsetof(struct kernel_options, m), true

static const struct option_desc options[] = {
    {"ktest", STR(ktest), NULL, "run tests matching GLOB (suite.test)"},
    {"pvops", STR(pvops), NULL, "on | off | noinline"},
    {"platform", STR(platform), NULL, "native | kvm | xen-pv"},
    {"pvpad", STR(pvpad), NULL, "nops | nop1 | jmp | single | prefix"},
    {"pvsaves", STR(pvsaves), "consume|keep",
     "patch away the register saves around assembly sites whose inline "
     "bytes do not need them (consume, the default) or keep them"},
    {"bench", FLAG(bench), NULL, "run the benchmarks"},
    {"benchuser", FLAG(benchuser), NULL,
     "with bench: only the user-mode round trips"},
    {"notests", FLAG(notests), NULL, "boot report only"},
    {"icount", FLAG(icount), NULL,
     "the TSC counts instructions (QEMU -icount shift=0): exact-count tests"},
    {"nosmp", FLAG(nosmp), NULL, "run on the boot CPU only"},
    {"maxcpus", STR(maxcpus), NULL, "bring up at most N CPUs (0: as nosmp)"},
    {"inject", STR(inject),
     "corrupt-site|corrupt-patched-site|corrupt-scall-site|ap-hang|ap-fault|"
     "ap-stack-overflow|stop-during-start|kvmclock-percpu|stray-int3",
     "corrupt a pvop site before (corrupt-site) or after (corrupt-patched-"
     "site) boot patching, or a static call site before an update "
     "(corrupt-scall-site), to test the engine's check; make the first AP "
     "hang before it is up (ap-hang) or the last one fault (ap-fault) or "
     "overflow its stack (ap-stack-overflow); stop the CPUs for a text "
     "write while one is starting (stop-during-start); KVM: every CPU reads "
     "its own kvmclock even with the stable bit (kvmclock-percpu); execute "
     "an int3 that no patch batch owns (stray-int3)"},
    {"staticcall", STR(staticcall), "inline|outline",
     "static calls patched into each call site (inline, default) or only "
     "into their trampolines (outline)"},
    {"xenmmu", STR(xenmmu), "hypercall|batched|writable",
     "Xen PV page-table updates: one mmu_update each (hypercall), queued "
     "in lazy MMU sections (batched, the default), or L1 entries stored "
     "directly for Xen to emulate (writable)"},
    {"livestress", FLAG(livestress), NULL,
     "run the live suite's stress tests (its own test rows)"},
    {"liveupdates", STR(liveupdates), NULL,
     "with livestress: one-key updates per live stress test (default "
     "10000; 1000 under KVM)"},
    {"patchlive", STR(patchlive), "store|int3|stop",
     "how text changes while other CPUs run: single 8-byte stores where "
     "only a rel32 changes, else int3 (store, the default); always the "
     "int3 protocol (int3); park the other CPUs (stop)"},
    {"noalternatives", FLAG(noalternatives), NULL,
     "keep every CPU-feature alternative site as assembled"},
    {"clearcpuid", STR(clearcpuid), NULL,
     "pretend features NAME[,NAME...] are absent (cpufeature.h)"},
};
_Static_assert(ARRAY_SIZE(options) == CMDLINE_OPTIONS,
	       "CMDLINE_OPTIONS in cmdline.h counts the table");

bool cmdline_number(const char *key, const char *s, unsigned long max,
		    unsigned long *out)
{
	unsigned long n = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9' && n <= max; p++)
		n = n * 10 + (unsigned long)(*p - '0');
	if (*p || p == s || n > max) {
		printk("warning: %s=%s is not a number up to %lu; ignored\n",
		       key, s, max);
		return false;
	}
	*out = n;
	return true;
}

/* The boot's values: the command line may live in memory we unmap. */
static struct cmdline_store boot_store;

/* Is val (vlen bytes) one of the '|'-separated words of choices? */
static bool is_choice(const char *choices, const char *val, size_t vlen)
{
	for (const char *c = choices; *c;) {
		const char *end = strchr(c, '|');
		size_t clen = end ? (size_t)(end - c) : strlen(c);
		if (clen == vlen && !strncmp(c, val, vlen))
			return true;
		c += clen + (end ? 1 : 0);
	}
	return false;
}

/* Sets one option; returns the number of warnings printed (0 or 1). */
static unsigned set_option(struct kernel_options *o,
			   struct cmdline_store *store, const char *key,
			   size_t klen, const char *val, size_t vlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *d = &options[i];
		if (strlen(d->key) != klen || strncmp(d->key, key, klen))
			continue;
		void *member = (char *)o + d->member;
		if (d->flag && !val) {
			*(bool *)member = true;
			return 0;
		}
		if (d->flag || !val || !vlen) {
			printk("warning: option '%.*s' %s\n", (int)klen, key,
			       d->flag ? "takes no value" : "needs a value");
			return 1;
		}
		if (d->choices && !is_choice(d->choices, val, vlen)) {
			printk("warning: %.*s=%.*s unknown (%s); ignored\n",
			       (int)klen, key, (int)vlen, val, d->choices);
			return 1;
		}
		if (vlen >= CMDLINE_VALUE_MAX)
			vlen = CMDLINE_VALUE_MAX - 1;
		memcpy(store->value[i], val, vlen);
		store->value[i][vlen] = '\0';
		*(const char **)member = store->value[i];
		return 0;
	}
	printk("warning: unknown option '%.*s' ignored\n", (int)klen, key);
	return 1;
}

unsigned cmdline_parse_into(struct kernel_options *o,
			    struct cmdline_store *store, const char *s)
{
	unsigned warnings = 0;

	while (s && *s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		const char *tok = s;
		while (*s && *s != ' ')
			s++;
		const char *eq = tok;
		while (eq < s && *eq != '=')
			eq++;
		if (eq < s)
			warnings += set_option(o, store, tok, eq - tok, eq + 1,
					       s - eq - 1);
		else
			warnings += set_option(o, store, tok, s - tok, NULL, 0);
	}
	return warnings;
}

void cmdline_parse(const char *s)
{
	cmdline_warnings += cmdline_parse_into(&opts, &boot_store, s);
}
