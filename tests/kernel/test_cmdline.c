/*
 * test_cmdline.c - option parsing: known options set, unknown ones warn.
 */
#include "cmdline.h"
#include "ktest.h"

KTEST(cmdline, unknown_option_warns_and_is_ignored)
{
	struct kernel_options saved = opts;
	unsigned before = cmdline_warnings;

	cmdline_parse("no_such_option=1 notests=3 ktest");
	KT_EXPECT(t, cmdline_warnings == before + 3, "%u warnings, want 3",
		  cmdline_warnings - before);
	KT_EXPECT(t, !opts.notests, "notests=3 set the flag");
	opts = saved;
}

KTEST(cmdline, known_options_parse)
{
	struct kernel_options saved = opts;
	unsigned before = cmdline_warnings;

	cmdline_parse("  pvops=noinline   notests ktest=a.* ");
	KT_EXPECT(t, cmdline_warnings == before, "unexpected warning");
	KT_EXPECT(t, opts.pvops && !strcmp(opts.pvops, "noinline"),
		  "pvops '%s'", opts.pvops ? opts.pvops : "(null)");
	KT_EXPECT(t, opts.notests, "notests not set");
	KT_EXPECT(t, opts.ktest && !strcmp(opts.ktest, "a.*"), "ktest '%s'",
		  opts.ktest ? opts.ktest : "(null)");
	opts = saved;
}
