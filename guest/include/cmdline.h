/*
 * cmdline.h - the kernel command line.
 *
 * Options are `key=value` or bare `key`, separated by spaces. Known keys
 * are listed once, in guest/cmdline.c, with their help text; an unknown key
 * gets a one-line warning and is otherwise ignored.
 */
#ifndef TINYPV_CMDLINE_H
#define TINYPV_CMDLINE_H

#include <stdbool.h>

struct kernel_options {
	const char *ktest;    /* glob over "suite.test"; NULL = all */
	const char *pvops;    /* "on", "off", "noinline" */
	const char *platform; /* forced platform, or NULL */
	const char *pvpad;    /* padding style, or NULL */
	bool bench;	      /* run the benchmarks instead of the tests */
	bool notests;	      /* boot report only */
	bool icount;	      /* rdtsc counts guest instructions (icount) */
	const char *inject;   /* fault injection for harness tests, or NULL */
};

extern struct kernel_options opts;
extern unsigned cmdline_warnings; /* unknown or malformed options seen */

void cmdline_parse(const char *cmdline);

#endif
