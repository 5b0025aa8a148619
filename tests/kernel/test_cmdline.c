/*
 * test_cmdline.c - option parsing: known options set, unknown ones and bad
 * values warn. Each test parses into options and storage of its own, so
 * the boot's options (the runner's ktest= glob among them) stay as booted.
 */
#include "cmdline.h"
#include "ktest.h"

static const char *or_null(const char *s)
{
	return s ? s : "(null)";
}

KTEST(cmdline, unknown_option_warns_and_is_ignored)
{
	struct kernel_options o = {0};
	struct cmdline_store store;

	unsigned warnings =
	    cmdline_parse_into(&o, &store, "no_such_option=1 notests=3 ktest");
	KT_EXPECT(t, warnings == 3, "%u warnings, want 3", warnings);
	KT_EXPECT(t, !o.notests, "notests=3 set the flag");
	KT_EXPECT(t, !o.ktest, "bare ktest set '%s'", o.ktest);
}

KTEST(cmdline, bad_values_warn_and_are_ignored)
{
	struct kernel_options o = {0};
	struct cmdline_store store;

	unsigned warnings =
	    cmdline_parse_into(&o, &store, "inject=bogus pvops= inject=");
	KT_EXPECT(t, warnings == 3, "%u warnings, want 3", warnings);
	KT_EXPECT(t, !o.inject, "inject set to '%s'", o.inject);
	KT_EXPECT(t, !o.pvops, "pvops set to '%s'", o.pvops);
}

KTEST(cmdline, known_options_parse)
{
	struct kernel_options o = {0};
	struct cmdline_store store;

	unsigned warnings = cmdline_parse_into(
	    &o, &store,
	    "  pvops=noinline   notests ktest=a.* inject=corrupt-site ");
	KT_EXPECT(t, warnings == 0, "%u unexpected warning(s)", warnings);
	KT_EXPECT(t, o.pvops && !strcmp(o.pvops, "noinline"), "pvops '%s'",
		  or_null(o.pvops));
	KT_EXPECT(t, o.notests, "notests not set");
	KT_EXPECT(t, o.ktest && !strcmp(o.ktest, "a.*"), "ktest '%s'",
		  or_null(o.ktest));
	KT_EXPECT(t, o.inject && !strcmp(o.inject, "corrupt-site"),
		  "inject '%s'", or_null(o.inject));
}

KTEST(cmdline, parse_leaves_boot_options_alone)
{
	char before[CMDLINE_VALUE_MAX] = "";
	const char *was = opts.ktest;
	struct kernel_options o = {0};
	struct cmdline_store store;

	if (was)
		memcpy(before, was, strnlen(was, sizeof(before) - 1));
	cmdline_parse_into(&o, &store, "ktest=zz.overwritten");
	KT_EXPECT(t, opts.ktest == was, "opts.ktest moved");
	KT_EXPECT(t, !was || !strcmp(was, before),
		  "boot ktest '%s' became '%s'", before, was);
}

KTEST(cmdline, numbers_parse_and_bad_ones_are_refused)
{
	unsigned long n = 7;

	KT_EXPECT(t,
		  cmdline_number("liveupdates", "10000", 1000000, &n) &&
		      n == 10000,
		  "10000 read as %lu", n);
	KT_EXPECT(t, cmdline_number("maxcpus", "0", 4096, &n) && n == 0,
		  "0 read as %lu", n);
	n = 7;
	static const char *const bad[] = {"", "12x", "-1", "4097",
					  "99999999999999999999999"};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		KT_EXPECT(t, !cmdline_number("maxcpus", bad[i], 4096, &n),
			  "'%s' accepted", bad[i]);
	KT_EXPECT(t, n == 7, "a refused number changed the result to %lu", n);
}
