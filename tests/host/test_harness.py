#!/usr/bin/env python3
"""Unit tests of the tinypv harness (scripts/tinypv_harness.py), printed as KTAP.

What: the KTAP parser, the boot and host-test classifiers (fed canned serial
logs: pass, fail, crash with missing results, panic, timeout, Xen refusal,
skip, verdict mismatches), the QEMU command builder, the process runner (with
small fake processes instead of QEMU), platform checks and output formatting.

Why KTAP: `make test` aggregates host test programs by parsing their KTAP, so
this file runs the unittest cases itself and translates each result into a
KTAP v1 line, one nested suite per TestCase class.  Exit status 0 when all
tests pass.  Run: python3 tests/host/test_harness.py
"""

import gzip
import os
import re
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import tinypv_harness as h  # noqa: E402


def log(text: str) -> list[str]:
    """Canned serial log: dedent the triple-quoted text into lines."""
    lines = text.strip("\n").split("\n")
    margin = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return [l[margin:] for l in lines]


BOOT_REPORT = """
    platform: native
    boot path: pvh
"""

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
    "platform: xen-pv",
    "(XEN) Dom0 has maximum 1 VCPUs",
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


class KtapParserTest(unittest.TestCase):
    def test_nested_leaves_are_named_suite_dot_test(self):
        report = h.parse_ktap(PASS_LOG)
        names = [leaf.name for leaf in report.leaves]
        self.assertEqual(names, ["irq.pushf_shows_if", "irq.ticks_advance",
                                 "irq.masked_no_ticks", "mem.alloc"])
        self.assertTrue(report.complete())
        self.assertIsNone(report.running_test())

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

    def test_noise_prefixes_and_carriage_returns_are_tolerated(self):
        lines = ["Booting from ROM..KTAP version 1\r", "1..2\r", "(XEN) noise",
                 "(d0) ok 1 first\r", "ok 2 second # skip later\r"]
        report = h.parse_ktap(lines)
        self.assertEqual([(l.name, l.status) for l in report.leaves],
                         [("first", h.OK), ("second", h.SKIP)])
        self.assertTrue(report.complete())

    def test_lines_before_ktap_are_not_results(self):
        self.assertEqual(h.parse_ktap(["ok 1 looks like a result"]).leaves, [])


class ClassifyBootTest(unittest.TestCase):
    def test_pass(self):
        outcome = h.classify_boot(PASS_LOG, h.EXIT_PASS)
        self.assertEqual((outcome.count(h.OK), outcome.count(h.SKIP)), (3, 1))
        self.assertTrue(outcome.passed())
        self.assertEqual(outcome.verdict, "PASS")
        self.assertEqual(outcome.boot_report, {"platform": "native", "boot path": "pvh"})

    def test_fail_is_consistent(self):
        outcome = h.classify_boot(FAIL_LOG, h.EXIT_FAIL)
        failed = [r.name for r in outcome.results if r.status in h.FAILING]
        self.assertEqual(failed, ["irq.ticks_advance"])

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
        self.assertEqual(outcome.results[0].name, "boot")

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

    def test_xen_refusal_shows_xen_errors(self):
        outcome = h.classify_boot(XEN_REFUSED_LOG, None, timed_out=True, harness_stop_ok=True)
        [refusal] = outcome.results
        self.assertEqual((refusal.name, refusal.status), ("boot", h.CRASHED))
        self.assertIn("Xen panicked", refusal.reason)
        self.assertIn("Will only load images built for the generic loader", refusal.reason)
        self.assertIn("(XEN) Could not construct domain 0", refusal.details)
        self.assertNotIn("(XEN) Bootloader: qemu", refusal.details)

    def test_xen_panic_block_is_shown_without_error_words(self):
        [refusal] = h.classify_boot(XEN_PANIC_LOG, None, harness_stop_ok=True).results
        self.assertIn("Not enough memory to relocate", refusal.reason)

    def test_xen_pass_stopped_by_harness_is_fine(self):
        outcome = h.classify_boot(XEN_PASS_LOG, None, harness_stop_ok=True)
        self.assertEqual([(r.name, r.status) for r in outcome.results], [("xen.hello", h.OK)])
        self.assertEqual(outcome.boot_report, {"platform": "xen-pv"})

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
        missing = by_name(h.classify_boot(lines, h.EXIT_PASS))["irq.#2"]
        self.assertEqual(missing.status, h.FAILED)

    def test_boot_report_ignores_qemu_and_xen_lines(self):
        lines = ["qemu-system-x86_64: warning: host doesn't support feature",
                 "(XEN) Bootloader: qemu", "Booting from ROM..platform: native",
                 "KTAP version 1", "1..0", "late: line", "tinypv: result PASS"]
        outcome = h.classify_boot(lines, h.EXIT_PASS)
        self.assertEqual(outcome.boot_report, {"platform": "native"})
        self.assertTrue(outcome.passed())


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

    def test_no_ktap(self):
        self.assertEqual(h.classify_host(["hello"], 0).results[0].name, "ktap")

    def test_timeout(self):
        outcome = h.classify_host(self.OK_LINES[:3], None, timed_out=True)
        self.assertEqual(by_name(outcome)["#2"].status, h.TIMEOUT)


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

    def test_icount_and_gdb(self):
        cmd = h.qemu_command("native", "k.elf", icount=True, gdb_stub=True)
        self.assert_has(cmd, "-icount", "shift=0")
        self.assert_has(cmd, "-s", "-S")

    def test_icount_needs_tcg(self):
        with self.assertRaises(ValueError):
            h.qemu_command("kvm", "k.elf", icount=True)

    def test_unknown_platform(self):
        with self.assertRaises(ValueError):
            h.qemu_command("hyperv", "k.elf")


def fake(script: str) -> list[str]:
    """A command that runs a small Python program standing in for QEMU."""
    return [sys.executable, "-c", script]


class RunProcessTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.log_path = Path(self.tmp.name) / "logs" / "run.log"

    def tearDown(self):
        self.tmp.cleanup()

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


class PlatformTest(unittest.TestCase):
    def setUp(self):
        self.saved = dict(os.environ)
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.saved)
        self.tmp.cleanup()

    def test_kvm_missing_device(self):
        os.environ["TINYPV_KVM_DEVICE"] = "/nonexistent/kvm"
        self.assertEqual(h.kvm_unusable_reason(), "/nonexistent/kvm missing")

    def test_kvm_device_that_is_not_kvm(self):
        self.assertIn("KVM_GET_API_VERSION on /dev/null failed", h.kvm_unusable_reason("/dev/null"))

    def test_xen_is_decompressed_once(self):
        src = Path(self.tmp.name) / "xen-test.gz"
        with gzip.open(src, "wb") as out:
            out.write(b"\x7fELF fake xen")
        os.environ["TINYPV_XEN_GZ"] = str(src)
        dest = Path(self.tmp.name) / "build" / "xen.elf"
        self.assertEqual(h.prepare_xen_elf(dest), (dest, None))
        self.assertEqual(dest.read_bytes(), b"\x7fELF fake xen")
        stamp = dest.stat().st_mtime_ns
        h.prepare_xen_elf(dest)
        self.assertEqual(dest.stat().st_mtime_ns, stamp)

    def test_xen_missing(self):
        os.environ["TINYPV_XEN_GZ"] = "/nonexistent/xen.gz"
        path, reason = h.prepare_xen_elf(Path(self.tmp.name) / "xen.elf")
        self.assertIsNone(path)
        self.assertIn("Xen hypervisor not found", reason)


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

CASES = [KtapParserTest, ClassifyBootTest, ClassifyHostTest, QemuCommandTest,
         RunProcessTest, PlatformTest, FormatTest]


class KtapCollector(unittest.TestResult):
    """Records (test name, KTAP status word, directive, diagnostic lines)."""

    def __init__(self):
        super().__init__()
        self.rows = []

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
