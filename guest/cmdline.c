/*
 * cmdline.c - parse the command line into struct kernel_options.
 */
#include "cmdline.h"
#include "kernel.h"

struct kernel_options opts;
unsigned cmdline_warnings;

#define VAL_MAX 64

struct option_desc {
	const char *key;
	const char **str; /* for key=value options */
	bool *flag;	  /* for bare options */
	const char *help;
};

static const struct option_desc options[] = {
    {"ktest", &opts.ktest, NULL, "run tests matching GLOB (suite.test)"},
    {"pvops", &opts.pvops, NULL, "on | off | noinline"},
    {"platform", &opts.platform, NULL, "native | kvm | xen-pv"},
    {"pvpad", &opts.pvpad, NULL, "nops | nop1 | jmp | single | prefix"},
    {"bench", NULL, &opts.bench, "run the benchmarks"},
    {"notests", NULL, &opts.notests, "boot report only"},
    {"icount", NULL, &opts.icount,
     "the TSC counts instructions (QEMU -icount shift=0): exact-count tests"},
    {"inject", &opts.inject, NULL, "corrupt-site: test the patcher's check"},
};

/* Values are copied: the command line may live in memory we unmap. */
static char values[ARRAY_SIZE(options)][VAL_MAX];

static void set_option(const char *key, size_t klen, const char *val,
		       size_t vlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_desc *o = &options[i];
		if (strlen(o->key) != klen || strncmp(o->key, key, klen))
			continue;
		if (o->flag && !val) {
			*o->flag = true;
			return;
		}
		if (o->str && val) {
			if (vlen >= VAL_MAX)
				vlen = VAL_MAX - 1;
			memcpy(values[i], val, vlen);
			values[i][vlen] = '\0';
			*o->str = values[i];
			return;
		}
		printk("warning: option '%.*s' %s\n", (int)klen, key,
		       o->flag ? "takes no value" : "needs a value");
		cmdline_warnings++;
		return;
	}
	printk("warning: unknown option '%.*s' ignored\n", (int)klen, key);
	cmdline_warnings++;
}

void cmdline_parse(const char *s)
{
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
			set_option(tok, eq - tok, eq + 1, s - eq - 1);
		else
			set_option(tok, s - tok, NULL, 0);
	}
}
