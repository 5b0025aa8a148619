/*
 * cmdline.h - the kernel command line.
 *
 * Options are `key=value` or bare `key`, separated by spaces. Known keys
 * are listed once, in guest/cmdline.c, with their help text; an unknown key,
 * a value given to a bare option, a missing or empty value, or a value
 * outside an option's fixed set gets a one-line `warning:` and is otherwise
 * ignored. Values are copied (truncated to CMDLINE_VALUE_MAX - 1 bytes) into
 * storage that belongs to one parse, so parsing another string never
 * changes the text of options already parsed:
 *
 *   struct kernel_options o = {0};
 *   struct cmdline_store store;
 *   unsigned warnings = cmdline_parse_into(&o, &store, "ktest=irq.*");
 */
#ifndef TINYPV_CMDLINE_H
#define TINYPV_CMDLINE_H

#include <stdbool.h>

struct kernel_options {
	const char *ktest;	/* glob over "suite.test"; NULL = all */
	const char *pvops;	/* "on", "off", "noinline" */
	const char *platform;	/* forced platform, or NULL */
	const char *pvpad;	/* padding style, or NULL */
	const char *pvsaves;	/* consume | keep, or NULL (consume) */
	bool bench;		/* run the benchmarks instead of the tests */
	bool benchuser;		/* with bench: only the user-mode cells */
	bool notests;		/* boot report only */
	bool icount;		/* rdtsc counts guest instructions (icount) */
	bool nosmp;		/* only the boot CPU */
	const char *maxcpus;	/* at most this many CPUs, or NULL */
	const char *inject;	/* "corrupt-site" (harness tests), or NULL */
	const char *staticcall; /* "inline", "outline", or NULL */
	const char *xenmmu;    /* "hypercall", "batched", "writable", or NULL */
	const char *patchlive; /* live patching path: store, int3, stop */
	bool livestress;       /* the live suite's long stress counts */
	const char *liveupdates; /* one-key updates per live stress test */
	bool noalternatives;	 /* keep every alternative site as assembled */
	const char *clearcpuid;	 /* features to pretend absent, "a,b" */
};

#define CMDLINE_OPTIONS 19   /* entries in guest/cmdline.c's table */
#define CMDLINE_VALUE_MAX 64 /* bytes of one value, with its NUL */

/* Where one parse keeps the text of its values. */
struct cmdline_store {
	char value[CMDLINE_OPTIONS][CMDLINE_VALUE_MAX];
};

extern struct kernel_options opts;
extern unsigned cmdline_warnings; /* unknown or malformed options seen */

/*
 * The decimal number s, the value of option key, into *out; false (and a
 * warning naming the option) if s is not a number or exceeds max.
 */
bool cmdline_number(const char *key, const char *s, unsigned long max,
		    unsigned long *out);

/* The boot's parse: into opts, counting into cmdline_warnings. */
void cmdline_parse(const char *cmdline);
/* Any other parse (tests): into o, values kept in store; the warnings. */
unsigned cmdline_parse_into(struct kernel_options *o,
			    struct cmdline_store *store, const char *cmdline);

#endif
