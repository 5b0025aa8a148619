#!/usr/bin/env python3
"""`make run`: boot tinypv once on one platform and watch it.

Streams the serial port live to the terminal and to a log of its own
(build/logs/runs/run-<platform>.<time>.<random>.log, linked from
build/logs/run-<platform>.log), then prints a one-line verdict; the exit status
is 0 only on PASS, else the code of the most severe result
(tinypv_harness.EXIT_CODES).  Uses the same QEMU command line and the same
judging as `make test` (scripts/tinypv_harness.py), so what you see here is
what the test run sees.

The Makefile passes the user's APPEND, PLATFORM and SMP in the environment
(TINYPV_APPEND, TINYPV_PLATFORM, TINYPV_SMP), never through shell text;
--append, --platform and --smp override them.

--debug starts QEMU halted with its gdb stub (-s -S): for native and kvm it
then runs `gdb <kernel> -ex 'target remote :1234'` and stops QEMU when gdb
quits; for xen it prints how to attach and streams the boot.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import tinypv_harness as h

DEBUG_TIMEOUT = 24 * 3600.0     # a debugging session has no real time limit


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Boot tinypv once under QEMU.")
    parser.add_argument("--platform", default=os.environ.get("TINYPV_PLATFORM") or "native",
                        help=f"{' | '.join(h.PLATFORMS)}: native (TCG), kvm, or xen (PV dom0 "
                             "under Xen, TCG); default $TINYPV_PLATFORM, else native")
    parser.add_argument("--append", default=os.environ.get("TINYPV_APPEND", ""),
                        metavar="CMDLINE",
                        help="kernel command line (default $TINYPV_APPEND)")
    parser.add_argument("--smp", type=h.smp_arg, default=None, metavar="N",
                        help="number of CPUs (QEMU -smp N; under xen also "
                             "dom0_max_vcpus=N); default $TINYPV_SMP, else 1")
    parser.add_argument("--icount", action="store_true",
                        help="-icount shift=0: TSC counts guest instructions (TCG only)")
    parser.add_argument("--timeout", type=h.seconds_arg, default=h.DEFAULT_TIMEOUT,
                        metavar="S",
                        help=f"seconds before QEMU is killed (default {h.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--debug", action="store_true",
                        help="start QEMU halted with a gdb stub on :1234 and attach gdb")
    parser.add_argument("--kernel", type=Path, default=h.DEFAULT_KERNEL,
                        help=f"kernel ELF (default {h.display_path(h.DEFAULT_KERNEL)})")
    parser.add_argument("--log-dir", type=Path, default=h.LOG_DIR,
                        help=f"where logs go (default {h.display_path(h.LOG_DIR)})")
    args = parser.parse_args(argv)
    if args.smp is None:
        env = os.environ.get("TINYPV_SMP", "")
        try:
            args.smp = h.smp_arg(env) if env else 1
        except argparse.ArgumentTypeError as err:
            parser.error(f"SMP={env!r}: {err}")
    if args.platform not in h.PLATFORMS:
        parser.error(f"unknown platform {args.platform!r} (choose from "
                     f"{', '.join(h.PLATFORMS)})")
    if args.icount and args.platform == "kvm":
        parser.error("--icount needs TCG; it cannot be used with --platform kvm")
    return args


def say(message: str) -> None:
    print(f"run: {message}", flush=True)


def echo_to_terminal(chunk: bytes) -> None:
    """Show serial output live (run_process has removed terminal escapes)."""
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def check_can_boot(args) -> str | None:
    """None when the kernel and platform are there, else why not.

    Even what make test reports as a SKIP (no KVM here) is an error for
    make run: the user asked for this platform.
    """
    if not args.kernel.is_file():
        return f"{h.display_path(args.kernel)} not found (build it with make)"
    problem = h.platform_check(args.platform)
    return problem[1] if problem else None


def print_summary(platform: str, results, wall_time: float | None = None,
                  exit_text: str = "", log_path: Path | None = None) -> int:
    """The closing verdict line: state, counts, breakdown, time, exit, log."""
    worst = h.worst_status(results)
    counts, *breakdown = h.summary_lines(results)
    text = f"{h.VERDICT_WORDS[worst]} {platform}: {counts}"
    if breakdown:
        text += f" ({breakdown[0]})"
    if wall_time is not None:
        text += f" in {wall_time:.1f} s"
    if exit_text:
        text += f" ({exit_text})"
    if log_path is not None:
        text += f"; log {h.display_path(log_path)}"
    say(text)
    return h.EXIT_CODES[worst]


def refuse(platform: str, problem: str) -> int:
    """Nothing booted: say why, and end with the verdict line all the same."""
    say(f"cannot boot on {platform}: {problem}")
    return print_summary(platform, [h.TestResult("boot", h.ERROR, problem)])


def print_verdict(boot: h.Boot, platform: str) -> int:
    """Print failures, where it booted and the one-line verdict; the exit status."""
    outcome = boot.outcome
    failing = [r for r in outcome.results if r.status in h.FAILING]
    if failing:
        print()
    for result in failing:
        for line in h.format_result(result.name, result, show_tail=False):
            print(line)
    keys = ("boot path", "platform", "hypervisor signature", "cpus")
    report = ", ".join(f"{k}: {outcome.boot_report[k]}" for k in keys
                       if k in outcome.boot_report)
    if report:      # the full report scrolled by above
        say(f"booted as {report}")
    else:
        say("no boot report: tinypv stopped, or never started, before printing it")
    exit_text = boot.run.stopped_because or h.describe_exit(boot.run.exit_status)
    return print_summary(platform, outcome.results, boot.run.wall_time, exit_text,
                         boot.log_path)


def run_normally(args, log_path: Path) -> int:
    argv = h.qemu_command(args.platform, args.kernel, args.append, args.icount,
                          smp=args.smp)
    say(shlex.join(argv))
    boot = h.boot_tinypv(args.platform, args.kernel, args.append, args.icount,
                         args.timeout, log_path, echo=echo_to_terminal,
                         smp=args.smp)
    return print_verdict(boot, args.platform)


def debug_with_gdb(args, log_path: Path) -> int:
    """native/kvm: QEMU waits in the background, gdb runs in the foreground."""
    gdb = shutil.which("gdb")
    argv = h.qemu_command(args.platform, args.kernel, args.append, args.icount,
                          gdb_stub=True, smp=args.smp)
    with open(log_path, "wb") as log:
        qemu = h.start_tied(argv, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    say(f"QEMU (pid {qemu.pid}) waits for gdb on :1234; serial output goes to "
        f"{h.display_path(log_path)} (tail -f it)")
    if not gdb:
        say("gdb not found; attach another debugger to :1234, Ctrl-C here stops QEMU")
        try:
            qemu.wait()
        except KeyboardInterrupt:
            pass
        h.stop_process_group(qemu)
        return 1
    # Ctrl-C belongs to gdb (it interrupts the guest); do not die from it here.
    signal.signal(signal.SIGINT, lambda *_: None)
    try:
        status = subprocess.call([gdb, str(args.kernel), "-ex", "target remote :1234"])
    finally:
        h.stop_process_group(qemu)
    return status


def debug_xen(args, log_path: Path) -> int:
    """xen: explain how to attach, then stream the boot with no time limit."""
    kernel = h.display_path(args.kernel)
    say("QEMU starts halted with its gdb stub on :1234 (-s -S). From another terminal:")
    print(f"    gdb {kernel} -ex 'target remote :1234'")
    print("  then e.g. 'hbreak <function>' and 'continue'. The stub debugs the whole CPU:")
    print("  Xen runs first; tinypv's symbols apply once Xen has started dom0 (tinypv runs")
    print("  in ring 3 at its link addresses, so use hardware breakpoints).")
    print("  Ctrl-C here stops QEMU.", flush=True)
    argv = h.qemu_command("xen", args.kernel, args.append, args.icount, gdb_stub=True,
                          smp=args.smp)
    run = h.run_process(argv, log_path, DEBUG_TIMEOUT, echo=echo_to_terminal,
                        end_grace=h.BootEndRules())
    outcome = h.classify_boot(run.lines, run.exit_status, run.timed_out,
                              harness_stop_ok=True, stopped_because=run.stopped_because)
    return print_verdict(h.Boot(argv, run, outcome, log_path), "xen")


def main(argv=None) -> int:
    args = parse_args(argv)
    problem = h.append_problem(args.platform, args.append)
    if problem:
        say(f"cannot boot on {args.platform}: {problem}")
        return h.EXIT_USAGE
    h.exit_cleanly_on_termination()
    try:
        problem = h.log_dir_problem(args.log_dir)
        if problem:
            return refuse(args.platform, problem)
        cannot = check_can_boot(args)
        if cannot:
            return refuse(args.platform, cannot)
        try:
            log_path = h.fresh_log(args.log_dir / f"run-{args.platform}.log")
        except OSError as err:
            return refuse(args.platform, f"cannot create a log in "
                                         f"{h.display_path(args.log_dir)}: {err.strerror}")
        if not args.debug:
            return run_normally(args, log_path)
        if args.platform == "xen":
            return debug_xen(args, log_path)
        return debug_with_gdb(args, log_path)
    except ValueError as err:       # qemu_command refused the combination
        say(f"cannot boot on {args.platform}: {err}")
        return h.EXIT_USAGE
    except OSError as err:          # e.g. the log could no longer be written
        problem = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
        say(f"stopped: {problem}")
        return print_summary(args.platform, [h.TestResult("run", h.ERROR, problem)])
    except KeyboardInterrupt:
        print()
        say("interrupted; QEMU stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
