#!/usr/bin/env python3
"""Unit tests of the tinypv harness (scripts/tinypv_harness.py, run.py, test.py
and the Makefile's run/test plumbing), printed as KTAP.

What: the KTAP parser (nesting, plans honoured at every level), the boot and
host-test classifiers fed canned serial logs (pass, fail, crash with missing
results, panic, timeout, Xen refusal, skip, verdict mismatches, empty runs,
forged verdicts in the echoed command line), the verdict states, summary
lines and exit codes, the QEMU command builder, the process runner (with
small fake processes, and a real halted QEMU, instead of a boot), per-run
log files, the Xen image cache, the in-kernel test list read from the ELF,
the scripts' argument checks and failure paths, and the Makefile (no shell
injection through APPEND/PLATFORM; deleting a source relinks).

Why KTAP: `make test` aggregates host test programs by parsing their KTAP, so
this file runs the unittest cases itself and translates each result into a
KTAP v1 line, one nested suite per TestCase class.  Exit status 0 when all
tests pass.  Run: python3 tests/host/test_harness.py
"""

import argparse
import contextlib
import gzip
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))

import tinypv_harness as h  # noqa: E402


def load_script(name: str):
    """scripts/<name>.py as a module (test.py would clash with the stdlib's test)."""
    spec = importlib.util.spec_from_file_location(f"tinypv_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


test_script = load_script("test")
run_script = load_script("run")


def log(text: str) -> list[str]:
    """Canned serial log: dedent the triple-quoted text into lines."""
    lines = text.strip("\n").split("\n")
    margin = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return [l[margin:] for l in lines]


BOOT_REPORT = """
    tinypv: booting (pvh entry)
    boot path: pvh
    platform: native
    command line: pvops=on
    pvops: native, mode on, padding single, 224 sites
    tinypv: ready, 1000 ticks after entry
"""
REPORT = {"boot path": "pvh", "platform": "native", "command line": "pvops=on",
          "pvops": "native, mode on, padding single, 224 sites"}

PASS_LOG = log(BOOT_REPORT + """
    KTAP version 1
    1..2
        KTAP version 1
        # Subtest: irq
        1..3
        ok 1 pushf_shows_if
        ok 2 ticks_advance
        ok 3 masked_no_ticks # SKIP no timer on this platform
    ok 1 irq
        KTAP version 1
        # Subtest: mem
        1..1
        ok 1 alloc
    ok 2 mem
    tinypv: result PASS
""")

FAIL_LOG = log(BOOT_REPORT + """
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: irq
        1..3
        ok 1 pushf_shows_if
        not ok 2 ticks_advance
        # ticks_advance: expected ticks > 0, got 0
        # ticks_advance: at tests/irq.c:42
        ok 3 masked_no_ticks
    not ok 1 irq
    tinypv: result FAIL
""")

CRASH_LOG = log(BOOT_REPORT + """
    KTAP version 1
    1..2
        KTAP version 1
        # Subtest: irq
        1..3
        ok 1 pushf_shows_if
    tinypv: PANIC: page fault at 0xdeadbeef
    RIP: ffffffff80001234  RSP: ffffffff80100ff0
    Call trace:
      ffffffff80001000 irq_test_ticks
""")

HANG_LOG = log(BOOT_REPORT + """
    KTAP version 1
    1..2
        KTAP version 1
        # Subtest: irq
        1..3
        ok 1 pushf_shows_if
""")

# What `make run APPEND='ktest=cmdline.*'` printed while known_options_parse
# overwrote the runner's glob: a plan of two, one result, and a PASS.
SHORT_SUITE_LOG = log(BOOT_REPORT + """
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: cmdline
        1..2
        # start known_options_parse
        ok 1 known_options_parse
    ok 1 cmdline
    tinypv: result PASS
""")

# Trimmed from a real boot of Xen 4.17 given an image without Xen PV notes.
XEN_REFUSED_LOG = [
    "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)",
    "Booting from ROM..\x1bc\x1b[?7l\x1b[2J(XEN) Xen version 4.17.7 (Debian)\r",
    "(XEN) Bootloader: qemu\r",
    "(XEN) Command line: console=com1 loglvl=all guest_loglvl=all noreboot dom0_mem=64M\r",
    "(XEN) *** Building a PV Dom0 ***\r",
    "(XEN) ERROR: Will only load images built for the generic loader or Linux images "
    "(Not '' and '') or with PHYS32_ENTRY set\r",
    "(XEN) \r",
    "(XEN) ****************************************\r",
    "(XEN) Panic on CPU 0:\r",
    "(XEN) Could not construct domain 0\r",
    "(XEN) ****************************************\r",
    "(XEN) \r",
    "(XEN) Manual reset required ('noreboot' specified)\r",
]

# Trimmed from a real boot of Xen 4.17 given tinypv.elf with e_shoff past its end.
XEN_SHDR_LOG = [
    "(XEN) Xen version 4.17.7 (Debian)",
    "(XEN) NX (Execute Disable) protection active",
    "(XEN) d0 has maximum 208 PIRQs",
    "(XEN) *** Building a PV Dom0 ***",
    "(XEN) ELF: shdr overflow (off 654e8 > size 63f68)",
    "(XEN) ",
    "(XEN) ****************************************",
    "(XEN) Panic on CPU 0:",
    "(XEN) Could not construct domain 0",
    "(XEN) ****************************************",
    "(XEN) ",
    "(XEN) Manual reset required ('noreboot' specified)",
    "qemu-system-x86_64: terminating on signal 15 from pid 12474 (python3)",
]

# Trimmed from a real boot of Xen 4.17 given random bytes as dom0.
XEN_PANIC_LOG = [
    "(XEN) New Xen image base address: 0x1f800000",
    "(XEN) ****************************************",
    "(XEN) Panic on CPU 0:",
    "(XEN) Not enough memory to relocate the dom0 kernel image",
    "(XEN) ****************************************",
    "(XEN) Manual reset required ('noreboot' specified)",
]

XEN_PASS_LOG = [
    "(XEN) *** Building a PV Dom0 ***",
    "(XEN)  Dom0 kernel: 64-bit, lsb, paddr 0x400000 -> 0x4061cc",
    "tinypv: booting (xen-pv entry)",
    "boot path: xen-pv",
    "platform: xen-pv",
    "(XEN) Dom0 has maximum 1 VCPUs",
    "tinypv: ready, 500 ticks after entry",
    "KTAP version 1",
    "1..1",
    "    KTAP version 1",
    "    # Subtest: xen",
    "    1..1",
    "    ok 1 hello",
    "ok 1 xen",
    "tinypv: result PASS",
    "(XEN) Hardware Dom0 halted: halting machine",
]


def by_name(outcome) -> dict:
    return {r.name: r for r in outcome.results}


def statuses(outcome) -> list:
    return [(r.name, r.status) for r in outcome.results if r.status in h.FAILING]


def fake(script: str) -> list[str]:
    """A command that runs a small Python program standing in for QEMU."""
    return [sys.executable, "-c", script]


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


def child_env() -> dict:
    """The environment for a nested make: none of the outer make's flags."""
    env = dict(os.environ)
    for key in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "TINYPV_APPEND",
                "TINYPV_PLATFORM", "TINYPV_SMP"):
        env.pop(key, None)
    return env


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.saved_env = dict(os.environ)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.saved_env)
        self.tmp.cleanup()

    def unwritable_dir(self) -> Path:
        """A log directory nobody can create, root included: its parent is a file."""
        blocker = self.dir / "not-a-dir"
        blocker.write_text("")
        return blocker / "logs"


def capture(function, *args, **kwargs):
    """(return value, stdout text, stderr text) of a call."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        value = function(*args, **kwargs)
    return value, out.getvalue(), err.getvalue()


class KtapParserTest(unittest.TestCase):
    def test_nested_leaves_are_named_suite_dot_test(self):
        report = h.parse_ktap(PASS_LOG)
        names = [leaf.name for leaf in report.leaves]
        self.assertEqual(names, ["irq.pushf_shows_if", "irq.ticks_advance",
                                 "irq.masked_no_ticks", "mem.alloc"])
        self.assertTrue(report.complete())
        self.assertIsNone(report.running_test())
        self.assertEqual(report.plan_problems, [])

    def test_skip_directive_gives_reason(self):
        leaf = h.parse_ktap(PASS_LOG).leaves[2]
        self.assertEqual((leaf.status, leaf.reason), (h.SKIP, "no timer on this platform"))

    def test_diagnostics_following_a_failure_are_kept(self):
        leaves = {l.name: l for l in h.parse_ktap(FAIL_LOG).leaves}
        failed = leaves["irq.ticks_advance"]
        self.assertEqual(failed.status, h.FAILED)
        self.assertEqual(failed.details, ["# ticks_advance: expected ticks > 0, got 0",
                                          "# ticks_advance: at tests/irq.c:42"])
        self.assertEqual(leaves["irq.masked_no_ticks"].details, [])

    def test_diagnostics_before_the_result_line_are_kept(self):
        lines = ["KTAP version 1", "1..4",
                 "ok 1 a",
                 "# b: pending tick not delivered (tests/kernel/test_irq.c:61)",
                 "not ok 2 b",
                 "ok 3 c",
                 "# unnamed note about d",
                 "not ok 4 d"]
        leaves = {l.name: l for l in h.parse_ktap(lines).leaves}
        self.assertEqual(leaves["a"].details, [])
        self.assertEqual(leaves["b"].details,
                         ["# b: pending tick not delivered (tests/kernel/test_irq.c:61)"])
        self.assertEqual(leaves["c"].details, [])
        self.assertEqual(leaves["d"].details, ["# unnamed note about d"])

    def test_unnamed_diagnostic_after_a_failure_belongs_to_it(self):
        lines = ["KTAP version 1", "1..2", "not ok 1 a", "# expected 1, got 0", "ok 2 b"]
        leaves = h.parse_ktap(lines).leaves
        self.assertEqual([l.details for l in leaves], [["# expected 1, got 0"], []])

    def test_truncated_stream_names_the_running_test(self):
        report = h.parse_ktap(CRASH_LOG)
        self.assertFalse(report.complete())
        self.assertEqual(report.running_test(), "irq.#2")
        self.assertEqual(report.not_run(), 2)   # irq test 3 and suite 2

    def test_start_line_names_the_crashed_test(self):
        lines = CRASH_LOG[:]
        at = next(i for i, ln in enumerate(lines) if "ok 1" in ln) + 1
        lines.insert(at, "    # start ticks_advance")
        report = h.parse_ktap(lines)
        self.assertEqual(report.running_test(), "irq.ticks_advance")
        self.assertFalse(any("start" in d for leaf in report.leaves
                             for d in leaf.details))

    def test_crash_between_suites_names_the_next_suite_number(self):
        lines = PASS_LOG[:PASS_LOG.index("ok 1 irq") + 1]
        self.assertEqual(h.parse_ktap(lines).running_test(), "#2")

    def test_finished_suite_without_summary_is_the_running_one(self):
        lines = PASS_LOG[:PASS_LOG.index("ok 1 irq")]
        self.assertEqual(h.parse_ktap(lines).running_test(), "irq")

    def test_flat_stream_and_dash_descriptions(self):
        report = h.parse_ktap(["KTAP version 1", "1..2", "ok 1 - alpha", "not ok 2 beta"])
        self.assertEqual([(l.name, l.status) for l in report.leaves],
                         [("alpha", h.OK), ("beta", h.FAILED)])

    def test_skipped_suite_without_body_is_a_leaf(self):
        report = h.parse_ktap(["KTAP version 1", "1..1", "ok 1 xen # SKIP not under Xen"])
        self.assertEqual([(l.name, l.status) for l in report.leaves], [("xen", h.SKIP)])

    def test_subtest_header_before_version_line(self):
        report = h.parse_ktap(["KTAP version 1", "1..1", "    # Subtest: irq",
                               "    KTAP version 1", "    1..1", "    ok 1 a", "ok 1 irq"])
        self.assertEqual([l.name for l in report.leaves], ["irq.a"])
        self.assertEqual(report.plan_problems, [])

    def test_noise_prefixes_and_carriage_returns_are_tolerated(self):
        lines = ["Booting from ROM..KTAP version 1\r", "1..2\r", "(XEN) noise",
                 "(d0) ok 1 first\r", "ok 2 second # skip later\r"]
        report = h.parse_ktap(lines)
        self.assertEqual([(l.name, l.status) for l in report.leaves],
                         [("first", h.OK), ("second", h.SKIP)])
        self.assertTrue(report.complete())

    def test_lines_before_ktap_are_not_results(self):
        self.assertEqual(h.parse_ktap(["ok 1 looks like a result"]).leaves, [])

    # Issue 9 item 1: a suite that ends before its plan is a failure.
    def test_suite_closed_short_of_its_plan_is_missing_tests(self):
        lines = ["KTAP version 1", "1..1",
                 "    KTAP version 1", "    # Subtest: irq", "    1..5", "    ok 1 a",
                 "ok 1 irq"]
        [problem] = h.parse_ktap(lines).plan_problems
        self.assertEqual((problem.name, problem.status), ("irq", h.FAILED))
        self.assertIn("MISSING 4 planned test(s)", problem.reason)

    def test_short_suites_are_found_at_every_level(self):
        lines = ["KTAP version 1", "1..2",
                 "    KTAP version 1", "    # Subtest: outer", "    1..2",
                 "        KTAP version 1", "        # Subtest: inner", "        1..3",
                 "        ok 1 a",
                 "    ok 1 inner",
                 "    ok 2 b",
                 "ok 1 outer",
                 "    KTAP version 1", "    # Subtest: next", "    1..2", "    ok 1 c",
                 "ok 2 next"]
        problems = {p.name: p.reason for p in h.parse_ktap(lines).plan_problems}
        self.assertEqual(set(problems), {"outer.inner", "next"})
        self.assertIn("MISSING 2 planned test(s)", problems["outer.inner"])
        self.assertIn("MISSING 1 planned test(s)", problems["next"])

    def test_more_results_than_planned_is_a_problem(self):
        lines = ["KTAP version 1", "1..1", "    KTAP version 1", "    # Subtest: s",
                 "    1..1", "    ok 1 a", "    ok 2 b", "ok 1 s"]
        [problem] = h.parse_ktap(lines).plan_problems
        self.assertIn("1 result(s) beyond the plan", problem.reason)

    def test_skip_reason_of_an_empty_plan_is_kept(self):
        self.assertEqual(h.parse_ktap(["KTAP version 1", "1..0 # SKIP notests"]).skip_all,
                         "notests")
        self.assertEqual(h.parse_ktap(["KTAP version 1", "1..0"]).skip_all, "")


class ClassifyBootTest(unittest.TestCase):
    def test_pass(self):
        outcome = h.classify_boot(PASS_LOG, h.EXIT_PASS)
        self.assertEqual((outcome.count(h.OK), outcome.count(h.SKIP)), (3, 1))
        self.assertTrue(outcome.passed())
        self.assertEqual(outcome.verdict, "PASS")
        self.assertEqual(outcome.boot_report, REPORT)

    def test_fail_is_consistent(self):
        outcome = h.classify_boot(FAIL_LOG, h.EXIT_FAIL)
        self.assertEqual(statuses(outcome), [("irq.ticks_advance", h.FAILED)])

    def test_panic_crashes_the_running_test_with_log_tail(self):
        outcome = h.classify_boot(CRASH_LOG, h.EXIT_PANIC)
        crash = by_name(outcome)["irq.#2"]
        self.assertEqual(crash.status, h.CRASHED)
        self.assertIn("tinypv: PANIC: page fault at 0xdeadbeef", crash.reason)
        self.assertIn("2 later planned test(s) not run", crash.reason)
        self.assertEqual(crash.tail[-1], "  ffffffff80001000 irq_test_ticks")
        self.assertEqual(outcome.count(h.OK), 1)

    def test_exit_37_alone_is_a_crash(self):
        outcome = h.classify_boot(HANG_LOG, h.EXIT_PANIC)
        self.assertEqual(by_name(outcome)["irq.#2"].status, h.CRASHED)

    def test_exception_line_is_a_crash_even_after_a_verdict(self):
        lines = PASS_LOG + ["tinypv: EXCEPTION #GP at ffffffff80001000"]
        outcome = h.classify_boot(lines, h.EXIT_PANIC)
        self.assertEqual(by_name(outcome)["shutdown"].status, h.CRASHED)

    def test_stream_ending_early_is_a_crash(self):
        outcome = h.classify_boot(HANG_LOG, 0)
        crash = by_name(outcome)["irq.#2"]
        self.assertEqual(crash.status, h.CRASHED)
        self.assertIn("without 'tinypv: result'", crash.reason)
        self.assertIn("triple fault", crash.reason)

    def test_crash_before_ktap_is_a_boot_crash(self):
        outcome = h.classify_boot(log(BOOT_REPORT + "\n    tinypv: PANIC: no memory map"), 37)
        self.assertEqual(statuses(outcome), [("boot", h.CRASHED)])

    def test_timeout_reports_the_running_test(self):
        outcome = h.classify_boot(HANG_LOG, None, timed_out=True,
                                  stopped_because="no exit within 60 s")
        hung = by_name(outcome)["irq.#2"]
        self.assertEqual(hung.status, h.TIMEOUT)
        self.assertIn("no exit within 60 s", hung.reason)
        self.assertEqual(hung.tail[-1], "    ok 1 pushf_shows_if")

    def test_timeout_before_any_output(self):
        outcome = h.classify_boot([], None, timed_out=True)
        self.assertEqual([(r.name, r.status) for r in outcome.results], [("boot", h.TIMEOUT)])

    def test_xen_refusal_is_an_error_with_xen_errors(self):
        outcome = h.classify_boot(XEN_REFUSED_LOG, None, timed_out=True, harness_stop_ok=True)
        [refusal] = outcome.results
        self.assertEqual((refusal.name, refusal.status), ("boot", h.ERROR))
        self.assertIn("Xen panicked", refusal.reason)
        self.assertIn("Will only load images built for the generic loader", refusal.reason)
        self.assertIn("(XEN) Could not construct domain 0", refusal.details)
        self.assertNotIn("(XEN) Bootloader: qemu", refusal.details)

    # Issue 9 item 17: the line before the refusal is the real reason.
    def test_xen_refusal_names_what_xen_said_before_giving_up(self):
        [refusal] = h.classify_boot(XEN_SHDR_LOG, None, harness_stop_ok=True).results
        self.assertEqual(refusal.status, h.ERROR)
        self.assertIn("ELF: shdr overflow (off 654e8 > size 63f68)", refusal.reason)
        self.assertIn("Could not construct domain 0", refusal.reason)
        self.assertEqual(refusal.details[0], "(XEN) ELF: shdr overflow (off 654e8 > size 63f68)")
        self.assertNotIn("(XEN) d0 has maximum 208 PIRQs", refusal.details)

    def test_xen_panic_block_is_shown_without_error_words(self):
        [refusal] = h.classify_boot(XEN_PANIC_LOG, None, harness_stop_ok=True).results
        self.assertIn("Not enough memory to relocate", refusal.reason)

    def test_xen_pass_stopped_by_harness_is_fine(self):
        outcome = h.classify_boot(XEN_PASS_LOG, None, harness_stop_ok=True)
        self.assertEqual([(r.name, r.status) for r in outcome.results], [("xen.hello", h.OK)])
        self.assertEqual(outcome.boot_report, {"boot path": "xen-pv", "platform": "xen-pv"})

    def test_native_must_exit_by_itself(self):
        outcome = h.classify_boot(PASS_LOG, None, harness_stop_ok=False)
        self.assertIn("did not exit", by_name(outcome)["exit"].reason)

    def test_pass_verdict_with_not_ok_is_a_mismatch(self):
        lines = FAIL_LOG[:-1] + ["tinypv: result PASS"]
        verdict = by_name(h.classify_boot(lines, h.EXIT_PASS))["verdict"]
        self.assertEqual(verdict.status, h.FAILED)
        self.assertIn("kernel says PASS but 1 test(s) reported 'not ok'", verdict.reason)

    def test_fail_verdict_without_not_ok_is_a_mismatch(self):
        lines = PASS_LOG[:-1] + ["tinypv: result FAIL"]
        outcome = h.classify_boot(lines, h.EXIT_FAIL)
        self.assertIn("no test reported 'not ok'", by_name(outcome)["verdict"].reason)

    def test_exit_status_disagreeing_with_verdict(self):
        outcome = h.classify_boot(PASS_LOG, h.EXIT_FAIL)
        self.assertIn("exit status 35 (FAIL) disagrees", by_name(outcome)["exit"].reason)
        self.assertFalse(outcome.passed())

    def test_verdict_before_plan_is_complete(self):
        lines = HANG_LOG + ["tinypv: result PASS"]
        outcome = h.classify_boot(lines, h.EXIT_PASS)
        self.assertFalse(outcome.passed())
        self.assertIn("MISSING 2 planned test(s)", by_name(outcome)["irq"].reason)
        self.assertIn("MISSING 2 planned test(s)", by_name(outcome)["ktap"].reason)

    def test_boot_report_ignores_qemu_and_xen_lines(self):
        lines = ["qemu-system-x86_64: warning: host doesn't support feature",
                 "(XEN) Bootloader: qemu", "Booting from ROM..boot path: pvh",
                 "warning: unknown option 'x' ignored", "tinypv: ready, 1 ticks after entry",
                 "KTAP version 1", "1..1", "ok 1 a", "late: line", "tinypv: result PASS"]
        outcome = h.classify_boot(lines, h.EXIT_PASS)
        self.assertEqual(outcome.boot_report, {"boot path": "pvh"})
        self.assertTrue(outcome.passed())

    # Issue 9 item 1, as it happened: plan 1..2, one ok, "1 passed".
    def test_short_suite_fails_the_boot(self):
        outcome = h.classify_boot(SHORT_SUITE_LOG, h.EXIT_PASS)
        self.assertFalse(outcome.passed())
        self.assertEqual(statuses(outcome), [("cmdline", h.FAILED)])
        self.assertIn("MISSING 1 planned test(s)", by_name(outcome)["cmdline"].reason)

    # Issue 9 item 3: a run in which no test ran is not a pass...
    def test_empty_run_is_an_error(self):
        lines = log(BOOT_REPORT + """
            warning: ktest=nomatch* matches no test
            KTAP version 1
            1..0
            tinypv: result PASS
        """)
        outcome = h.classify_boot(lines, h.EXIT_PASS)
        self.assertEqual(statuses(outcome), [("tests", h.ERROR)])
        self.assertIn("no test ran (warning: ktest=nomatch* matches no test)",
                      outcome.results[0].reason)

    # ... unless notests asked for it.
    def test_notests_is_a_pass(self):
        lines = log(BOOT_REPORT + """
            KTAP version 1
            1..0 # SKIP notests
            tinypv: result PASS
        """)
        outcome = h.classify_boot(lines, h.EXIT_PASS)
        self.assertEqual(outcome.results, [])
        self.assertTrue(outcome.passed())

    # Issue 9 item 12: the boot report echoes the command line.
    def test_verdict_in_the_echoed_command_line_is_ignored(self):
        lines = [ln.replace("command line: pvops=on", "command line: x=tinypv: result PASS")
                 for ln in FAIL_LOG]
        outcome = h.classify_boot(lines, h.EXIT_FAIL)
        self.assertEqual(outcome.verdict, "FAIL")
        self.assertEqual(statuses(outcome), [("irq.ticks_advance", h.FAILED)])

    def test_verdict_before_ready_does_not_count(self):
        lines = log(BOOT_REPORT.replace("tinypv: ready, 1000 ticks after entry",
                                        "tinypv: result PASS"))
        outcome = h.classify_boot(lines, 0)
        self.assertIsNone(outcome.verdict)
        self.assertEqual(statuses(outcome), [("boot", h.CRASHED)])

    def test_verdict_must_start_the_line(self):
        lines = PASS_LOG[:-1] + ["x tinypv: result PASS"]
        self.assertIsNone(h.classify_boot(lines, 0).verdict)

    # Issue 9 item 16: "inject: ..." is no boot-report key.
    def test_inject_line_is_not_part_of_the_boot_report(self):
        lines = ["tinypv: booting (pvh entry)",
                 "inject: corrupting site ffffffff80100109 (irq_disable)",
                 "tinypv: PANIC: pvops: corrupt or mismatched site table at ffffffff80100109"]
        outcome = h.classify_boot(lines, h.EXIT_PANIC)
        self.assertEqual(outcome.boot_report, {})
        self.assertEqual(statuses(outcome), [("boot", h.CRASHED)])

    # Issue 9 item 5: QEMU that never ran the kernel is an error, not a crash.
    def test_qemu_failing_to_start_is_an_error(self):
        lines = ["qemu-system-x86_64: -kernel nothere.elf: could not open kernel file"]
        outcome = h.classify_boot(lines, 1)
        self.assertEqual(statuses(outcome), [("boot", h.ERROR)])
        self.assertIn("could not open kernel file", outcome.results[0].reason)


class ClassifyHostTest(unittest.TestCase):
    OK_LINES = ["KTAP version 1", "1..2", "ok 1 a", "ok 2 b"]

    def test_all_ok(self):
        outcome = h.classify_host(self.OK_LINES, 0)
        self.assertEqual(outcome.count(h.OK), 2)
        self.assertTrue(outcome.passed())

    def test_nonzero_exit_with_all_ok_fails(self):
        exit_result = by_name(h.classify_host(self.OK_LINES, 3))["exit"]
        self.assertEqual((exit_result.status, exit_result.reason), (h.FAILED, "exit status 3"))

    def test_nonzero_exit_with_a_failure_adds_nothing(self):
        outcome = h.classify_host(["KTAP version 1", "1..1", "not ok 1 a"], 1)
        self.assertEqual([r.name for r in outcome.results], ["a"])

    def test_segfault_mid_run_crashes_the_next_test(self):
        crash = by_name(h.classify_host(self.OK_LINES[:3], -11))["#2"]
        self.assertEqual((crash.status, crash.reason),
                         (h.CRASHED, "output ended early (killed by SIGSEGV)"))

    def test_no_ktap_is_an_error(self):
        [result] = h.classify_host(["hello"], 0).results
        self.assertEqual((result.name, result.status), ("ktap", h.ERROR))

    def test_timeout(self):
        outcome = h.classify_host(self.OK_LINES[:3], None, timed_out=True)
        self.assertEqual(by_name(outcome)["#2"].status, h.TIMEOUT)

    def test_short_suite_fails(self):
        lines = ["KTAP version 1", "1..1", "    KTAP version 1", "    # Subtest: s",
                 "    1..3", "    ok 1 a", "ok 1 s"]
        self.assertEqual(statuses(h.classify_host(lines, 0)), [("s", h.FAILED)])

    def test_empty_plan_is_an_error(self):
        outcome = h.classify_host(["KTAP version 1", "1..0"], 0)
        self.assertEqual(statuses(outcome), [("tests", h.ERROR)])


class VerdictStateTest(unittest.TestCase):
    """Issue 9 item 5: XTF-style states, the most severe wins."""

    def results(self, *kinds):
        return [h.TestResult(f"t{i}", kind) for i, kind in enumerate(kinds)]

    def test_severity_order_and_exit_codes(self):
        self.assertEqual(h.SEVERITY, (h.OK, h.SKIP, h.ERROR, h.FAILED, h.CRASHED, h.TIMEOUT))
        codes = [h.EXIT_CODES[s] for s in (h.ERROR, h.FAILED, h.CRASHED, h.TIMEOUT)]
        self.assertEqual(codes, [4, 5, 6, 7])
        self.assertEqual((h.EXIT_CODES[h.OK], h.EXIT_CODES[h.SKIP]), (0, 0))
        self.assertNotIn(1, h.EXIT_CODES.values())     # Python's own
        self.assertNotIn(h.EXIT_USAGE, h.EXIT_CODES.values())

    def test_most_severe_wins(self):
        self.assertEqual(h.exit_code(self.results(h.OK, h.SKIP)), 0)
        self.assertEqual(h.exit_code(self.results(h.OK, h.ERROR, h.FAILED)), 5)
        self.assertEqual(h.exit_code(self.results(h.TIMEOUT, h.CRASHED, h.ERROR)), 7)
        self.assertEqual(h.exit_code([]), 0)

    def test_first_summary_line_keeps_its_format(self):
        results = self.results(h.OK, h.OK, h.SKIP, h.FAILED, h.ERROR, h.CRASHED, h.TIMEOUT)
        lines = h.summary_lines(results)
        self.assertRegex(lines[0], r"^\d+ passed, \d+ failed, \d+ skipped$")
        self.assertEqual(lines, ["2 passed, 4 failed, 1 skipped",
                                 "of the 4 failed: 1 failure, 1 error, 1 crash, 1 timeout"])

    def test_breakdown_only_for_errors_crashes_and_timeouts(self):
        self.assertEqual(h.summary_lines(self.results(h.OK, h.FAILED, h.FAILED)),
                         ["1 passed, 2 failed, 0 skipped"])
        self.assertEqual(h.summary_lines(self.results(h.ERROR, h.ERROR)),
                         ["0 passed, 2 failed, 0 skipped", "of the 2 failed: 2 errors"])

    def test_error_lines_show_their_details(self):
        error = h.TestResult("boot", h.ERROR, "Xen refused", ["(XEN) x"])
        self.assertEqual(h.format_result("xen-pv/boot", error, "/l.log"),
                         ["ERROR   xen-pv/boot (Xen refused)", "        (XEN) x",
                          "        log: /l.log"])

    def test_run_verdict_word_is_the_worst_state(self):
        value, out, _ = capture(run_script.print_summary, "native",
                                self.results(h.OK, h.ERROR), 0.5, "exit status 33 (PASS)")
        self.assertEqual(value, 4)
        self.assertEqual(out, "run: ERROR native: 1 passed, 1 failed, 0 skipped "
                              "(of the 1 failed: 1 error) in 0.5 s (exit status 33 (PASS))\n")


class QemuCommandTest(unittest.TestCase):
    COMMON = ["qemu-system-x86_64", "-smp", "1", "-nographic", "-no-reboot", "-monitor",
              "none", "-display", "none", "-serial", "stdio", "-device",
              "isa-debug-exit,iobase=0xf4,iosize=1"]

    def assert_has(self, cmd, *args):
        text = " ".join(cmd)
        self.assertIn(" ".join(args), text)

    def test_native(self):
        cmd = h.qemu_command("native", "build/tinypv.elf", "pvops=off")
        for word in self.COMMON:
            self.assertIn(word, cmd)
        self.assert_has(cmd, "-m", "128")
        self.assert_has(cmd, "-accel", "tcg", "-cpu", "max")
        self.assert_has(cmd, "-kernel", "build/tinypv.elf", "-append", "pvops=off")

    def test_kvm(self):
        cmd = h.qemu_command("kvm", "k.elf")
        self.assert_has(cmd, "-accel", "kvm", "-cpu", "host,-arch-capabilities")
        self.assertEqual(cmd[cmd.index("-append") + 1], "")

    def test_xen_passes_cmdline_with_the_module(self):
        cmd = h.qemu_command("xen", "build/tinypv.elf", "a=1,2 b", xen_elf="build/xen.elf")
        self.assert_has(cmd, "-m", "512")
        self.assertNotIn("128", cmd)
        self.assertEqual(cmd[cmd.index("-initrd") + 1], "build/tinypv.elf a=1,,2 b")
        self.assertEqual(cmd[cmd.index("-kernel") + 1], "build/xen.elf")
        self.assertEqual(cmd[cmd.index("-append") + 1], h.XEN_CMDLINE)

    def test_xen_without_cmdline(self):
        cmd = h.qemu_command("xen", "k.elf")
        self.assertEqual(cmd[cmd.index("-initrd") + 1], "k.elf")

    def test_cpu_model_replaces_max_under_tcg_only(self):
        cmd = h.qemu_command("native", "k.elf", smp=2, cpu="max,-x2apic")
        self.assert_has(cmd, "-accel", "tcg,thread=multi", "-cpu", "max,-x2apic")
        cmd = h.qemu_command("xen", "k.elf", cpu="max,-x2apic")
        self.assert_has(cmd, "-cpu", "max,-x2apic")
        with self.assertRaises(ValueError):
            h.qemu_command("kvm", "k.elf", cpu="max,-x2apic")

    def test_icount_and_gdb(self):
        cmd = h.qemu_command("native", "k.elf", icount=True, gdb_stub=True)
        self.assert_has(cmd, "-icount", "shift=0")
        self.assert_has(cmd, "-s", "-S")

    def test_one_cpu_by_default(self):
        cmd = h.qemu_command("native", "k.elf")
        self.assert_has(cmd, "-smp", "1")
        self.assert_has(cmd, "-accel", "tcg", "-cpu")
        self.assertEqual(h.qemu_command("xen", "k.elf")[-1], h.XEN_CMDLINE)

    def test_smp_under_tcg_runs_cpus_in_parallel(self):
        cmd = h.qemu_command("native", "k.elf", smp=4)
        self.assert_has(cmd, "-smp", "4")
        self.assert_has(cmd, "-accel", "tcg,thread=multi", "-cpu", "max")

    def test_smp_with_icount_stays_single_threaded(self):
        cmd = h.qemu_command("native", "k.elf", icount=True, smp=2)
        self.assert_has(cmd, "-smp", "2")
        self.assert_has(cmd, "-accel", "tcg", "-cpu", "max")
        self.assertNotIn("tcg,thread=multi", cmd)

    def test_smp_under_kvm(self):
        cmd = h.qemu_command("kvm", "k.elf", smp=2)
        self.assert_has(cmd, "-smp", "2")
        self.assert_has(cmd, "-accel", "kvm", "-cpu", "host,-arch-capabilities")

    def test_smp_under_xen_gives_dom0_the_vcpus(self):
        cmd = h.qemu_command("xen", "k.elf", smp=4)
        self.assert_has(cmd, "-smp", "4")
        self.assertEqual(cmd[cmd.index("-append") + 1],
                         h.XEN_CMDLINE + " dom0_max_vcpus=4")

    def test_smp_count_is_checked(self):
        for bad in (0, -1, h.MAX_SMP + 1, "2", 2.0, True):
            with self.assertRaisesRegex(ValueError, "CPU count"):
                h.qemu_command("native", "k.elf", smp=bad)
        self.assertEqual(h.smp_arg("8"), 8)
        for bad in ("", "x", "0", "2.5", "-3"):
            with self.assertRaises(argparse.ArgumentTypeError):
                h.smp_arg(bad)

    def test_icount_needs_tcg(self):
        with self.assertRaises(ValueError):
            h.qemu_command("kvm", "k.elf", icount=True)

    def test_unknown_platform(self):
        with self.assertRaises(ValueError):
            h.qemu_command("hyperv", "k.elf")

    # Issue 9 item 15: Xen would drop everything past 1023 characters.
    def test_xen_refuses_a_command_line_longer_than_xen_passes(self):
        h.qemu_command("xen", "k.elf", "x" * 1023)
        with self.assertRaisesRegex(ValueError, r"1024 bytes; Xen passes at most 1023"):
            h.qemu_command("xen", "k.elf", "x" * 1024)
        h.qemu_command("native", "k.elf", "x" * 4000)     # PVH has no such limit

    def test_command_line_must_be_one_printable_line(self):
        with self.assertRaisesRegex(ValueError, "control characters"):
            h.qemu_command("native", "k.elf", "x\ntinypv: result PASS")


class BootEndRulesTest(unittest.TestCase):
    """Issue 9 item 12: only the kernel's and Xen's own lines end a boot early."""

    def feed(self, lines):
        rules = h.BootEndRules()
        return [rules(line) for line in lines]

    def test_verdict_after_ready_ends_the_boot(self):
        self.assertEqual(self.feed(["tinypv: ready, 5 ticks after entry",
                                    "tinypv: result PASS"]), [None, h.RESULT_GRACE])

    def test_echoed_command_line_does_not_end_the_boot(self):
        graces = self.feed(["command line: x=tinypv: result PASS",
                            "command line: (XEN) Hardware Dom0 halted",
                            "tinypv: result PASS",     # before ready: not the verdict
                            "tinypv: ready, 5 ticks after entry",
                            "x tinypv: result PASS"])
        self.assertEqual(graces, [None] * 5)

    def test_panic_counts_before_ready(self):
        self.assertEqual(self.feed(["tinypv: PANIC: pvops: corrupt"]), [h.PANIC_GRACE])

    def test_xen_rules_need_the_xen_prefix(self):
        self.assertEqual(self.feed(["(XEN) Hardware Dom0 halted: halting machine",
                                    "(XEN) Panic on CPU 0:"]), [0.3, 1.0])


class RunProcessTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.log_path = self.dir / "logs" / "run.log"

    def test_exit_status_output_and_log(self):
        run = h.run_process(fake("print('a\\r'); print('b', end=''); raise SystemExit(33)"),
                            self.log_path, timeout=10)
        self.assertEqual((run.lines, run.exit_status, run.timed_out), (["a", "b"], 33, False))
        self.assertEqual(self.log_path.read_text(), "a\nb")

    def test_stderr_is_captured(self):
        run = h.run_process(fake("import sys; sys.stderr.write('qemu: oops\\n'); sys.exit(1)"),
                            None, timeout=10)
        self.assertEqual((run.lines, run.exit_status), (["qemu: oops"], 1))

    def test_timeout_kills_the_whole_process_group(self):
        script = ("import subprocess, sys, time; "
                  "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                  "print('started', flush=True); time.sleep(60)")
        start = time.monotonic()
        run = h.run_process(fake(script), self.log_path, timeout=1.5)
        self.assertLess(time.monotonic() - start, 10)
        self.assertTrue(run.timed_out)
        self.assertIsNone(run.exit_status)
        self.assertEqual(run.lines, ["started"])
        self.assertIn("no exit within 1.5 s", run.stopped_because)

    def test_end_rule_stops_a_process_that_lingers(self):
        script = ("import time; print('tinypv: result PASS'); "
                  "print('(XEN) Hardware Dom0 halted: halting machine', flush=True); "
                  "time.sleep(60)")
        start = time.monotonic()
        run = h.run_process(fake(script), None, timeout=30, end_grace=h.boot_end_grace)
        self.assertLess(time.monotonic() - start, 10)
        self.assertFalse(run.timed_out)
        self.assertIn("Hardware Dom0 halted", run.stopped_because)

    def test_escape_sequences_split_across_reads_are_removed(self):
        escapes = h.EscapeFilter()
        pieces = [b"\x1b", b"c\x1b[", b"?7", b"l\x1b[2J\x1b[0mSeaBIOS\x1b", b"[0m ok\x1b"]
        out = b"".join(escapes.feed(p) for p in pieces) + escapes.flush()
        self.assertEqual(out, b"SeaBIOS ok\x1b")

    def test_echo_sees_output(self):
        seen = []
        h.run_process(fake("print('x')"), None, timeout=10, echo=seen.append)
        self.assertEqual(b"".join(seen), b"x\n")

    # Issue 9 item 7: SIGKILL of the harness must not orphan QEMU.
    HARNESS = """
import sys, threading, time
sys.path.insert(0, {scripts!r})
import tinypv_harness as h
def report():
    while not h._live_processes:
        time.sleep(0.01)
    print("child", next(iter(h._live_processes)).pid, flush=True)
threading.Thread(target=report, daemon=True).start()
h.run_process({argv!r}, None, 120)
"""

    def sigkill_harness_running(self, argv) -> int:
        """Start a harness running argv, SIGKILL the harness; the child's pid."""
        harness = subprocess.Popen(
            [sys.executable, "-c", self.HARNESS.format(scripts=str(SCRIPTS), argv=argv)],
            stdout=subprocess.PIPE, text=True)
        try:
            words = harness.stdout.readline().split()
            self.assertEqual(words[:1], ["child"], "the harness did not start its child")
            child = int(words[1])
            time.sleep(0.3)
            self.assertFalse(gone(child), "the child ended by itself")
        finally:
            harness.kill()
            harness.wait()
            harness.stdout.close()
        return child

    def assert_dies_with_harness(self, argv):
        child = self.sigkill_harness_running(argv)
        try:
            self.assertTrue(wait_gone(child, 5), f"process {child} outlived its harness")
        finally:
            if not gone(child):
                os.kill(child, signal.SIGKILL)

    def test_hanging_child_dies_when_the_harness_is_killed(self):
        self.assert_dies_with_harness(fake("import time; time.sleep(60)"))

    def test_halted_qemu_dies_when_the_harness_is_killed(self):
        if h.qemu_missing_reason():
            self.skipTest(h.qemu_missing_reason())
        # -S: the guest never runs a single instruction; QEMU waits forever.
        self.assert_dies_with_harness([h.QEMU, "-S", "-nodefaults", "-display", "none",
                                       "-monitor", "none", "-serial", "none", "-m", "16"])


class LogFileTest(TempDirTest):
    """Issue 9 items 8 and 9: a log of its own per run; unwritable logs."""

    def test_each_run_gets_its_own_log_and_the_stable_name_follows(self):
        stable = self.dir / "run-native.log"
        first, second = h.fresh_log(stable), h.fresh_log(stable)
        self.assertNotEqual(first, second)
        self.assertEqual(first.parent, self.dir / "runs")
        self.assertTrue(stable.is_symlink())
        self.assertEqual(stable.resolve(), second.resolve())
        first.write_text("first run\n")
        second.write_text("second run\n")
        self.assertEqual(stable.read_text(), "second run\n")
        self.assertEqual(first.read_text(), "first run\n")

    def test_overlapping_runs_keep_their_own_output(self):
        stable = self.dir / "native-tcg.log"
        paths = [h.fresh_log(stable) for _ in range(2)]
        threads = [threading.Thread(target=h.run_process, args=(
            fake(f"import time\nfor i in range(5): print('{tag}', i, flush=True); "
                 "time.sleep(0.02)"), path, 10)) for tag, path in zip("ab", paths)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(paths[0].read_text().split()[::2], ["a"] * 5)
        self.assertEqual(paths[1].read_text().split()[::2], ["b"] * 5)

    def test_old_logs_are_pruned(self):
        stable = self.dir / "x.log"
        paths = [h.fresh_log(stable) for _ in range(h.KEEP_LOGS + 3)]
        kept = sorted((self.dir / "runs").glob("x.*.log"))
        self.assertEqual(len(kept), h.KEEP_LOGS)
        self.assertIn(paths[-1], kept)

    def test_other_names_are_not_pruned(self):
        other = h.fresh_log(self.dir / "native-tcg-icount.log")
        for _ in range(h.KEEP_LOGS + 1):
            h.fresh_log(self.dir / "native-tcg.log")
        self.assertTrue(other.exists())

    def test_host_tests_of_the_same_name_are_told_apart(self):
        names = test_script.host_test_names(["build/host/test_x", "python3 other/test_x.py",
                                             "build/host/test_y", "build/host/test_x"])
        self.assertEqual(names, ["host/test_x", "host/test_x-2", "host/test_y", "host/test_x-3"])

    def test_unwritable_log_dir_is_reported(self):
        problem = h.log_dir_problem(self.unwritable_dir())
        self.assertIn("cannot write logs in", problem)
        self.assertIn("Not a directory", problem)
        self.assertIsNone(h.log_dir_problem(self.dir / "fine"))

    def run_script_process(self, script, *args):
        return subprocess.run([sys.executable, str(SCRIPTS / script), *args],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)

    def test_test_py_with_unwritable_logs_says_so_and_sums_up(self):
        done = self.run_script_process("test.py", "--log-dir", str(self.unwritable_dir()),
                                       "--host-test", f"{sys.executable} -c pass")
        self.assertEqual(done.returncode, h.EXIT_CODES[h.ERROR], done.stdout + done.stderr)
        self.assertNotIn("Traceback", done.stdout + done.stderr)
        lines = done.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ERROR   logs (cannot write logs in"), lines)
        self.assertEqual(lines[-2:], ["0 passed, 1 failed, 0 skipped",
                                      "of the 1 failed: 1 error"])

    def test_run_py_with_unwritable_logs_says_so_and_sums_up(self):
        done = self.run_script_process("run.py", "--log-dir", str(self.unwritable_dir()))
        self.assertEqual(done.returncode, h.EXIT_CODES[h.ERROR], done.stdout + done.stderr)
        self.assertNotIn("Traceback", done.stdout + done.stderr)
        lines = done.stdout.splitlines()
        self.assertTrue(lines[0].startswith("run: cannot boot on native: cannot write logs"))
        self.assertEqual(lines[-1], "run: ERROR native: 0 passed, 1 failed, 0 skipped "
                                    "(of the 1 failed: 1 error)")


class PlatformTest(TempDirTest):
    def make_gz(self, content: bytes) -> Path:
        src = self.dir / "xen-test.gz"
        with gzip.open(src, "wb") as out:
            out.write(content)
        os.environ["TINYPV_XEN_GZ"] = str(src)
        return src

    def test_kvm_missing_device(self):
        os.environ["TINYPV_KVM_DEVICE"] = "/nonexistent/kvm"
        self.assertEqual(h.kvm_unusable_reason(), "/nonexistent/kvm missing")
        if not h.qemu_missing_reason():
            self.assertEqual(h.platform_check("kvm"), (h.SKIP, "/nonexistent/kvm missing"))

    def test_kvm_device_that_is_not_kvm(self):
        self.assertIn("KVM_GET_API_VERSION on /dev/null failed", h.kvm_unusable_reason("/dev/null"))

    def test_xen_is_decompressed_once(self):
        self.make_gz(b"\x7fELF fake xen")
        dest = self.dir / "build" / "xen.elf"
        self.assertEqual(h.prepare_xen_elf(dest), (dest, None))
        self.assertEqual(dest.read_bytes(), b"\x7fELF fake xen")
        stamp = dest.stat().st_mtime_ns
        h.prepare_xen_elf(dest)
        self.assertEqual(dest.stat().st_mtime_ns, stamp)

    def test_xen_missing_is_a_skip(self):
        os.environ["TINYPV_XEN_GZ"] = "/nonexistent/xen.gz"
        path, reason = h.prepare_xen_elf(self.dir / "xen.elf")
        self.assertIsNone(path)
        self.assertIn("Xen hypervisor not found", reason)
        if not h.qemu_missing_reason():
            self.assertEqual(h.platform_check("xen")[0], h.SKIP)

    # Issue 9 item 10: the cache is checked, not just its date.
    def test_damaged_xen_image_is_decompressed_again(self):
        self.make_gz(b"\x7fELF fake xen")
        dest = self.dir / "xen.elf"
        h.prepare_xen_elf(dest)
        dest.write_bytes(b"\x7fELF fake xeN")            # same size, newer
        self.assertEqual(h.prepare_xen_elf(dest), (dest, None))
        self.assertEqual(dest.read_bytes(), b"\x7fELF fake xen")
        dest.write_bytes(b"")
        h.prepare_xen_elf(dest)
        self.assertEqual(dest.read_bytes(), b"\x7fELF fake xen")

    def test_changed_source_is_decompressed_again_even_if_older(self):
        src = self.make_gz(b"\x7fELF old xen")
        dest = self.dir / "xen.elf"
        h.prepare_xen_elf(dest)
        self.make_gz(b"\x7fELF new xen")
        os.utime(src, ns=(1, 1))                           # older than dest
        h.prepare_xen_elf(dest)
        self.assertEqual(dest.read_bytes(), b"\x7fELF new xen")

    def test_sidecar_records_source_and_image(self):
        src = self.make_gz(b"\x7fELF fake xen")
        dest = self.dir / "xen.elf"
        h.prepare_xen_elf(dest)
        record = json.loads((self.dir / "xen.elf.source").read_text())
        self.assertEqual(record["source"], str(src))
        self.assertEqual(record["source_sha256"], h.file_sha256(src))
        self.assertEqual((record["size"], record["sha256"]), (13, h.file_sha256(dest)))

    def test_ctrl_c_while_decompressing_leaves_nothing_behind(self):
        self.make_gz(b"\x7fELF fake xen" * 1000)
        dest = self.dir / "out" / "xen.elf"

        class Interrupting:
            def __init__(self, *_args, **_kwargs):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *_exc):
                return False

            def read(self, _size):
                raise KeyboardInterrupt

        real_open, h.gzip.open = h.gzip.open, Interrupting
        try:
            with self.assertRaises(KeyboardInterrupt):
                h.prepare_xen_elf(dest)
        finally:
            h.gzip.open = real_open
        self.assertEqual(list(dest.parent.iterdir()), [])

    def test_corrupt_source_is_a_reason_not_a_traceback(self):
        src = self.dir / "xen-test.gz"
        src.write_bytes(gzip.compress(b"x" * 100000)[:200] + b"garbage" * 10)
        os.environ["TINYPV_XEN_GZ"] = str(src)
        path, reason = h.prepare_xen_elf(self.dir / "xen.elf")
        self.assertIsNone(path)
        self.assertIn("cannot decompress", reason)
        self.assertEqual([p.name for p in self.dir.iterdir()], ["xen-test.gz"])

    def test_ctrl_c_during_platform_checks_ends_with_a_summary(self):
        def interrupt(_platform):
            raise KeyboardInterrupt
        real, h.platform_check = h.platform_check, interrupt
        try:
            code, out, _ = capture(test_script.main, ["--only", "xen-pv",
                                                      "--log-dir", str(self.dir)])
            run_code, run_out, _ = capture(run_script.main, ["--platform", "xen",
                                                             "--kernel", __file__,
                                                             "--log-dir", str(self.dir)])
        finally:
            h.platform_check = real
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
        self.assertEqual(code, 130)
        self.assertIn("test: interrupted", out)
        self.assertEqual(out.splitlines()[-1], "0 passed, 0 failed, 0 skipped")
        self.assertEqual(run_code, 130)
        self.assertIn("run: interrupted", run_out)


class ScriptArgumentTest(TempDirTest):
    """Issue 9 items 11, 15 and 16: what run.py and test.py accept and print."""

    def test_timeouts_must_be_finite_and_positive(self):
        for bad in ("nan", "NaN", "inf", "-inf", "0", "-1", "-0.5", "soon"):
            for parse in (run_script.parse_args, test_script.parse_args):
                with self.subTest(parse=parse.__module__, value=bad):
                    with contextlib.redirect_stderr(io.StringIO()):
                        with self.assertRaises(SystemExit) as stop:
                            parse(["--timeout", bad])
                    self.assertEqual(stop.exception.code, 2)
        self.assertEqual(run_script.parse_args(["--timeout", "2.5"]).timeout, 2.5)
        self.assertEqual(test_script.parse_args(["--timeout", "1e1"]).timeout, 10.0)

    def test_run_reads_append_and_platform_from_the_environment(self):
        os.environ.update(TINYPV_APPEND="x $(touch F)", TINYPV_PLATFORM="xen")
        args = run_script.parse_args([])
        self.assertEqual((args.append, args.platform), ("x $(touch F)", "xen"))
        os.environ["TINYPV_PLATFORM"] = "native; touch F"
        with contextlib.redirect_stderr(io.StringIO()):
            with self.assertRaises(SystemExit):
                run_script.parse_args([])

    def test_run_reads_smp_from_the_environment(self):
        os.environ.pop("TINYPV_SMP", None)
        self.assertEqual(run_script.parse_args([]).smp, 1)
        os.environ["TINYPV_SMP"] = ""
        self.assertEqual(run_script.parse_args([]).smp, 1)
        os.environ["TINYPV_SMP"] = "4"
        self.assertEqual(run_script.parse_args([]).smp, 4)
        self.assertEqual(run_script.parse_args(["--smp", "2"]).smp, 2)
        for bad in ("4; touch F", "0", "x", "2.0", str(h.MAX_SMP + 1)):
            with self.subTest(value=bad):
                os.environ["TINYPV_SMP"] = bad
                with contextlib.redirect_stderr(io.StringIO()):
                    with self.assertRaises(SystemExit) as stop:
                        run_script.parse_args([])
                self.assertEqual(stop.exception.code, 2)

    def test_run_refuses_a_command_line_xen_would_cut(self):
        code, out, _ = capture(run_script.main, ["--platform", "xen", "--append", "k" * 1100,
                                                 "--log-dir", str(self.dir)])
        self.assertEqual(code, h.EXIT_USAGE)
        self.assertIn("run: cannot boot on xen: the command line is 1100 bytes; "
                      "Xen passes at most 1023 to dom0", out)

    def test_no_boot_report_is_said_plainly(self):
        lines = ["tinypv: booting (pvh entry)",
                 "inject: corrupting site ffffffff80100109 (irq_disable)",
                 "tinypv: PANIC: pvops: corrupt or mismatched site table at ffffffff80100109"]
        outcome = h.classify_boot(lines, h.EXIT_PANIC)
        boot = h.Boot([], h.ProcessRun(lines, 37, False, "", 0.1), outcome, None)
        code, out, _ = capture(run_script.print_verdict, boot, "native")
        self.assertEqual(code, h.EXIT_CODES[h.CRASHED])
        self.assertNotIn("booted as \n", out)
        self.assertIn("run: no boot report: tinypv stopped, or never started, before "
                      "printing it\n", out)
        self.assertIn("run: CRASH native: 0 passed, 1 failed, 0 skipped (of the 1 failed: "
                      "1 crash) in 0.1 s (exit status 37 (PANIC))", out)

    def test_boot_configs_are_checked(self):
        for row, complaint in (({"name": "host-x", "platform": "native"}, "must be letters"),
                               ({"name": "x", "platform": "xen", "append": "a" * 1024},
                                "Xen passes at most 1023"),
                               ({"name": "x", "platform": "native", "expect_lag": []},
                                "unknown key")):
            with self.subTest(row=row["name"]):
                with self.assertRaises(SystemExit) as stop:
                    test_script.check_configs([row])
                self.assertIn(complaint, str(stop.exception.code))
        test_script.check_configs(test_script.BOOT_CONFIGS)


class KernelTestListTest(unittest.TestCase):
    """Issue 9 item 6: every in-kernel test, listed from the ELF."""

    def setUp(self):
        if not h.DEFAULT_KERNEL.is_file():
            self.skipTest(f"{h.DEFAULT_KERNEL} not built")
        self.sources = []
        for path in sorted((ROOT / "tests" / "kernel").glob("*.c")):
            self.sources += [f"{s}.{n}" for s, n in
                             re.findall(r"^KTEST\((\w+), (\w+)\)", path.read_text(), re.M)]

    def test_elf_lists_every_ktest_in_the_sources(self):
        tests = h.kernel_tests(h.DEFAULT_KERNEL)
        self.assertEqual(sorted(tests), sorted(self.sources))
        suites = [t.split(".")[0] for t in tests]
        self.assertEqual(suites, sorted(suites, key=suites.index))  # suites are contiguous

    def test_not_an_elf(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"hello")
            f.flush()
            with self.assertRaises(ValueError):
                h.kernel_tests(Path(f.name))

    def test_list_tests_shows_tests_and_boot_configurations(self):
        done = subprocess.run([sys.executable, str(SCRIPTS / "test.py"), "--list-tests",
                               "--host-test", "build/host/test_format"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")}
        self.assertLessEqual(set(self.sources), listed)
        self.assertLessEqual({row["name"] for row in test_script.BOOT_CONFIGS}, listed)
        self.assertIn("host/test_format", listed)
        self.assertIn("ktest=GLOB", done.stdout)


class MakefileTest(TempDirTest):
    """Issue 9 items 13 and 19: the Makefile's handling of user text and sources."""

    FAKE_PYTHON = """#!/bin/sh
printf '%s\\n' "$TINYPV_PLATFORM" > "$FAKE_OUT.platform"
printf '%s\\n' "$TINYPV_APPEND" > "$FAKE_OUT.append"
printf '%s\\n' "$TINYPV_SMP" > "$FAKE_OUT.smp"
printf '%s\\n' "$*" > "$FAKE_OUT.argv"
"""

    def setUp(self):
        super().setUp()
        if not shutil.which("make"):
            self.skipTest("make not found")

    def make(self, *args, cwd=ROOT, env=None):
        return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd,
                              env=env or child_env(), capture_output=True, text=True,
                              timeout=120)

    def test_user_strings_never_reach_a_shell(self):
        fake_python = self.dir / "python"
        fake_python.write_text(self.FAKE_PYTHON)
        fake_python.chmod(0o755)
        marker = self.dir / "ran"
        payloads = [f"x $$(touch {marker}1)", f"x `touch {marker}2`",
                    f'x"; touch {marker}3; "', f"x'; touch {marker}4; '", f"; touch {marker}5",
                    f"x\\\"; touch {marker}6 #"]
        env = child_env()
        env["FAKE_OUT"] = str(self.dir / "out")
        for target in ("run", "debug"):
            for payload in payloads:
                with self.subTest(target=target, payload=payload):
                    done = self.make("-s", target, "-o", "deps-run", "-o", "build/tinypv.elf",
                                     f"PYTHON={fake_python}", f"APPEND={payload}",
                                     f"PLATFORM=native; touch {marker}9",
                                     f"SMP=2; touch {marker}8", env=env)
                    self.assertEqual(done.returncode, 0, done.stderr)
                    self.assertEqual(list(self.dir.glob("ran*")), [])
                    append = (self.dir / "out.append").read_text().rstrip("\n")
                    self.assertEqual(append, payload.replace("$$", "$"))
                    self.assertEqual((self.dir / "out.platform").read_text(),
                                     f"native; touch {marker}9\n")
                    self.assertEqual((self.dir / "out.smp").read_text(),
                                     f"2; touch {marker}8\n")

    def test_deleting_a_source_relinks(self):
        if not Path("/usr/include/xen/xen.h").is_file():
            self.skipTest("/usr/include/xen/xen.h missing (the Makefile needs it)")
        tree = self.dir / "tree"
        (tree / "guest" / "include").mkdir(parents=True)
        shutil.copy(ROOT / "Makefile", tree / "Makefile")
        # The link runs scripts/scall_sites.py between its two steps.
        shutil.copytree(ROOT / "scripts", tree / "scripts",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (tree / "guest" / "include" / "layout.h").write_text("")
        (tree / "patch" / "include").mkdir(parents=True)
        (tree / "patch" / "include" / "patch_abi.h").write_text("")
        (tree / "guest" / "kernel.ld.S").write_text(
            "ENTRY(a_func)\nSECTIONS { . = 0xffffffff80000000; .text : { *(.text*) } }\n")
        (tree / "guest" / "a.c").write_text("int a_func(void) { return 1; }\n")
        (tree / "guest" / "b.c").write_text("int b_func(void) { return 2; }\n")
        done = self.make("build/tinypv.elf", cwd=tree)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        elf = tree / "build" / "tinypv.elf"
        self.assertIn(b"b_func", elf.read_bytes())
        again = self.make("build/tinypv.elf", cwd=tree)
        self.assertNotIn("LD", again.stdout, "relinked with nothing changed")
        (tree / "guest" / "b.c").unlink()
        done = self.make("build/tinypv.elf", cwd=tree)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("LD", done.stdout)
        self.assertNotIn(b"b_func", elf.read_bytes())


class FormatTest(unittest.TestCase):
    def test_ok_and_skip_lines(self):
        self.assertEqual(h.format_result("n/a.b", h.TestResult("a.b", h.OK)), ["ok      n/a.b"])
        skip = h.TestResult("a.c", h.SKIP, "no timer")
        self.assertEqual(h.format_result("n/a.c", skip, "build/logs/n.log"),
                         ["SKIP    n/a.c (no timer)"])

    def test_failure_shows_diagnostics_and_log(self):
        failed = h.TestResult("irq.t", h.FAILED, "", ["# t: expected 1, got 0"])
        self.assertEqual(h.format_result("n/irq.t", failed, "/nowhere/n.log"),
                         ["FAILED  n/irq.t", "        # t: expected 1, got 0",
                          "        log: /nowhere/n.log"])

    def test_crash_tail_is_marked_and_can_be_left_out(self):
        crash = h.TestResult("irq.#2", h.CRASHED, "tinypv: PANIC: x", tail=["RIP: 0"])
        self.assertEqual(h.format_result("n/irq.#2", crash),
                         ["CRASHED n/irq.#2 (tinypv: PANIC: x)", "        | RIP: 0"])
        self.assertEqual(h.format_result("n/irq.#2", crash, show_tail=False),
                         ["CRASHED n/irq.#2 (tinypv: PANIC: x)"])

    def test_summary_line(self):
        self.assertEqual(h.summary_line(3, 1, 2), "3 passed, 1 failed, 2 skipped")


# ---------------------------------------------------------------------------
# unittest -> KTAP bridge

CASES = [KtapParserTest, ClassifyBootTest, ClassifyHostTest, VerdictStateTest,
         QemuCommandTest, BootEndRulesTest, RunProcessTest, LogFileTest, PlatformTest,
         ScriptArgumentTest, KernelTestListTest, MakefileTest, FormatTest]

class KtapCollector(unittest.TestResult):
    """Records (test name, KTAP status word, directive, diagnostic lines)."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self._subtest_failures = {}     # test id -> diagnostics of failed subtests

    @staticmethod
    def _name(test) -> str:
        method = getattr(test, "_testMethodName", None)
        return method.removeprefix("test_") if method else str(test)

    def _add(self, test, ok, directive="", err=None):
        diag = self._exc_info_to_string(err, test).splitlines() if err else []
        self.rows.append((self._name(test), ok, directive, diag))

    def addSuccess(self, test):
        self._add(test, True)

    def addFailure(self, test, err):
        self._add(test, False, err=err)

    def addError(self, test, err):
        self._add(test, False, err=err)

    def addSkip(self, test, reason):
        self._add(test, True, f"SKIP {reason}")

    def addExpectedFailure(self, test, err):
        self._add(test, True, "TODO expected failure")

    def addUnexpectedSuccess(self, test):
        self._add(test, False, "", None)

    def addSubTest(self, test, subtest, err):
        """A failing subtest fails its test (unittest then skips addSuccess)."""
        if err is not None:
            diag = [f"subtest {subtest._subDescription()}:"]
            diag += self._exc_info_to_string(err, test).splitlines()
            self._subtest_failures.setdefault(test.id(), []).extend(diag)

    def stopTest(self, test):
        diag = self._subtest_failures.pop(test.id(), None)
        if diag is not None:
            self.rows.append((self._name(test), False, "", diag))
        super().stopTest(test)


def suite_name(case) -> str:
    """KtapParserTest -> ktap_parser."""
    base = case.__name__.removesuffix("Test")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def print_suite(number: int, case) -> bool:
    """Run one TestCase class and print it as a nested KTAP suite."""
    collector = KtapCollector()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(collector)
    print("    KTAP version 1")
    print(f"    # Subtest: {suite_name(case)}")
    print(f"    1..{len(collector.rows)}")
    suite_ok = True
    for index, (name, ok, directive, diag) in enumerate(collector.rows, 1):
        suffix = f" # {directive}" if directive else ""
        print(f"    {'ok' if ok else 'not ok'} {index} {name}{suffix}")
        for line in diag:
            print(f"    # {line}".rstrip())
        suite_ok &= ok
    print(f"{'ok' if suite_ok else 'not ok'} {number} {suite_name(case)}")
    return suite_ok


def main() -> int:
    print("KTAP version 1")
    print(f"1..{len(CASES)}")
    results = [print_suite(number, case) for number, case in enumerate(CASES, 1)]
    sys.stdout.flush()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
