#!/usr/bin/env python3
"""`make test`: run the host unit tests and boot tinypv in every configuration.

Host unit tests are programs given with --host-test that print KTAP v1 and
exit 0 on success; each boot configuration (the BOOT_CONFIGS table below) is
one QEMU run judged by scripts/tinypv_harness.py.  Every leaf test gets one
line (ok / FAILED / SKIP / CRASHED / TIMEOUT); the last line printed is
always "N passed, N failed, N skipped" (crashed and timed out count as
failed), and the exit status is 0 only when nothing failed.

Why a table: the kernel is tested in several boot configurations (platforms,
command lines, exact instruction counting); adding one is adding a row.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import tinypv_harness as h

# One row per boot configuration.  Keys:
#   name      unique; prefixes the test names and names the log build/logs/<name>.log
#   platform  "native" (QEMU TCG), "kvm", or "xen" (tinypv as Xen PV dom0, TCG)
#   icount    True adds -icount shift=0 (TCG only: native or xen)
#   append    kernel command line
#   timeout   optional, seconds (default 60, or --timeout)
#   expect_log    optional list of regexes that must each match a log line
#                 (each is one result, named log:<regex>)
#   expect_panic  optional regex: this boot must panic with a matching
#                 "tinypv: PANIC:" line and QEMU status 37; the KTAP stream
#                 is then not judged (one result, named panic)
BOOT_CONFIGS = [
    # Every platform in every patch mode (pvops=on is the default).
    {"name": "native-tcg", "platform": "native", "icount": False, "append": ""},
    {"name": "native-tcg-pvops-off", "platform": "native", "icount": False,
     "append": "pvops=off"},
    {"name": "native-tcg-noinline", "platform": "native", "icount": False,
     "append": "pvops=noinline"},
    {"name": "native-kvm", "platform": "kvm", "icount": False, "append": ""},
    {"name": "native-kvm-pvops-off", "platform": "kvm", "icount": False,
     "append": "pvops=off"},
    {"name": "native-kvm-noinline", "platform": "kvm", "icount": False,
     "append": "pvops=noinline"},
    {"name": "xen-pv", "platform": "xen", "icount": False, "append": ""},
    {"name": "xen-pv-pvops-off", "platform": "xen", "icount": False,
     "append": "pvops=off"},
    {"name": "xen-pv-noinline", "platform": "xen", "icount": False,
     "append": "pvops=noinline"},
    # Exact instruction counts (TCG -icount shift=0): the icount suite's
    # assertions, and the whole suite once more under a virtual clock.
    {"name": "native-tcg-icount", "platform": "native", "icount": True,
     "append": "icount"},
    {"name": "xen-pv-icount", "platform": "xen", "icount": True,
     "append": "icount"},
    # Bad input: unknown options warn; unsafe platform overrides are refused.
    {"name": "native-tcg-bad-options", "platform": "native", "icount": False,
     "append": "ktest=cmdline.* frobnicate=1 platform=xen-pv",
     "expect_log": [r"^warning: unknown option 'frobnicate' ignored$",
                    r"^warning: platform=xen-pv refused: ",
                    r"^platform: native$"]},
    {"name": "xen-pv-platform-native", "platform": "xen", "icount": False,
     "append": "ktest=cmdline.* platform=native",
     "expect_log": [r"^warning: platform=native refused: ",
                    r"^platform: xen-pv$"]},
    # A corrupt site table must stop the boot, naming the site.
    {"name": "native-tcg-corrupt-site", "platform": "native", "icount": False,
     "append": "inject=corrupt-site",
     "expect_panic": r"pvops: corrupt or mismatched site table at [0-9a-f]+"},
    {"name": "xen-pv-corrupt-site", "platform": "xen", "icount": False,
     "append": "inject=corrupt-site",
     "expect_panic": r"pvops: corrupt or mismatched site table at [0-9a-f]+"},
]

CONFIG_KEYS = {"name", "platform", "icount", "append", "timeout",
               "expect_log", "expect_panic"}
INTERPRETERS = {"python", "python3", "sh", "bash", "env", "valgrind"}


@dataclass
class Job:
    """One thing to run: a host test program or a boot configuration."""
    name: str                   # "host/test_printk" or "native-tcg"
    describe: str               # what --list shows
    run: Callable[[], "Report"] | None = None   # None when skipped
    skip_reason: str = ""


@dataclass
class Report:
    """What a finished job prints: a header and its results."""
    name: str
    header: str
    results: list = field(default_factory=list)
    log_path: Path | None = None


def check_configs(configs) -> None:
    """Refuse a malformed BOOT_CONFIGS table with a precise message."""
    seen = set()
    for row in configs:
        where = f"BOOT_CONFIGS row {row.get('name', row)!r}"
        unknown = set(row) - CONFIG_KEYS
        if unknown:
            sys.exit(f"test: {where}: unknown key(s) {', '.join(sorted(unknown))}")
        if not row.get("name") or row["name"] in seen:
            sys.exit(f"test: {where}: name missing or repeated")
        if row.get("platform") not in h.PLATFORMS:
            sys.exit(f"test: {where}: platform must be one of {', '.join(h.PLATFORMS)}")
        if row.get("icount") and row["platform"] == "kvm":
            sys.exit(f"test: {where}: icount needs TCG, not kvm")
        seen.add(row["name"])


def host_test_name(command: str) -> str:
    """host/<basename> of the program a host-test command runs.

    "build/host/test_printk" -> host/test_printk, "python3 tests/host/x.py" ->
    host/x; an inline script ("sh -c '...'") is named after its interpreter.
    """
    words = shlex.split(command)
    program = next((w for w in words if Path(w).name not in INTERPRETERS
                    and not w.startswith("-")), words[0])
    if any(c.isspace() for c in program):
        program = words[0]
    return "host/" + re.sub(r"[^\w.+-]", "_", Path(program).stem)


def describe_config(row) -> str:
    icount = ", icount" if row.get("icount") else ""
    return f"{row['platform']}{icount}, append={row.get('append', '')!r}"


def run_host_test(name: str, command: str, timeout: float) -> Report:
    log_path = h.LOG_DIR / f"{name.replace('/', '-')}.log"
    try:
        run = h.run_process(shlex.split(command), log_path, timeout)
    except OSError as err:
        failure = h.TestResult("run", h.FAILED, f"cannot run {command!r}: {err.strerror}")
        return Report(name, f"== {name}: cannot run", [failure])
    outcome = h.classify_host(run.lines, run.exit_status, run.timed_out, run.stopped_because)
    exit_text = run.stopped_because or h.describe_host_exit(run.exit_status)
    header = (f"== {name} ({command}) {run.wall_time:.1f} s, {exit_text}, "
              f"log {h.display_path(log_path)}")
    return Report(name, header, outcome.results, log_path)


def run_boot(row, kernel: Path, timeout: float) -> Report:
    name = row["name"]
    log_path = h.LOG_DIR / f"{name}.log"
    if not kernel.is_file():
        failure = h.TestResult("boot", h.FAILED, f"{h.display_path(kernel)} not found; run make")
        return Report(name, f"== {name}: no kernel", [failure])
    boot = h.boot_tinypv(row["platform"], kernel, row.get("append", ""),
                         row.get("icount", False), timeout, log_path)
    run = boot.run
    exit_text = run.stopped_because or h.describe_exit(run.exit_status)
    header = (f"== {name} ({describe_config(row)}) {run.wall_time:.1f} s, {exit_text}, "
              f"log {h.display_path(log_path)}")
    results = boot.outcome.results
    if row.get("expect_panic"):
        results = [expected_panic(row["expect_panic"], run)]
    results += [expected_line(rx, run.lines) for rx in row.get("expect_log", [])]
    return Report(name, header, results, log_path)


def expected_panic(regex: str, run) -> "h.TestResult":
    """The boot had to panic with a matching reason, and say so in its status."""
    panics = [ln for ln in run.lines if "tinypv: PANIC:" in ln]
    if not panics:
        return h.TestResult("panic", h.FAILED, f"no panic; wanted /{regex}/",
                            tail=h.log_tail(run.lines))
    if not re.search(regex, panics[0]):
        return h.TestResult("panic", h.FAILED,
                            f"panicked with '{panics[0]}', wanted /{regex}/",
                            tail=h.log_tail(run.lines))
    if run.timed_out:
        return h.TestResult("panic", h.FAILED, "panicked, then QEMU never exited")
    if run.exit_status != 37 and not run.stopped_because:
        return h.TestResult("panic", h.FAILED,
                            f"panicked but QEMU status {run.exit_status}, want 37")
    return h.TestResult("panic", h.OK)


def expected_line(regex: str, lines) -> "h.TestResult":
    name = f"log:{regex}"
    if any(re.search(regex, ln) for ln in lines):
        return h.TestResult(name, h.OK)
    return h.TestResult(name, h.FAILED, "no log line matches")


def matches(name: str, patterns) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def make_jobs(args) -> list[Job]:
    """Selected host tests first, then selected boot rows, each runnable or skipped."""
    jobs = []
    for command in args.host_test:
        name = host_test_name(command)
        if matches(name, args.only):
            jobs.append(Job(name, command, lambda n=name, c=command:
                            run_host_test(n, c, args.timeout or h.DEFAULT_TIMEOUT)))
    reasons = {}
    for row in BOOT_CONFIGS:
        if not matches(row["name"], args.only):
            continue
        platform = row["platform"]
        if platform not in reasons:
            reasons[platform] = h.platform_unavailable_reason(platform)
        timeout = args.timeout or row.get("timeout", h.DEFAULT_TIMEOUT)
        run = None if reasons[platform] else \
            (lambda r=row, t=timeout: run_boot(r, args.kernel, t))
        jobs.append(Job(row["name"], describe_config(row), run, reasons[platform] or ""))
    return jobs


def print_list(jobs) -> None:
    width = max(len(job.name) for job in jobs)
    for job in jobs:
        skip = f"  (SKIP: {job.skip_reason})" if job.skip_reason else ""
        print(f"{job.name:<{width}}  {job.describe}{skip}")


def skipped_report(job: Job) -> Report:
    return Report(job.name, "", [h.TestResult("", h.SKIP, job.skip_reason)])


def run_jobs(jobs, parallel: int):
    """Yield each job's Report in table order, running up to `parallel` at once."""
    if parallel == 1:
        for job in jobs:
            yield job.run() if job.run else skipped_report(job)
        return
    pool = ThreadPoolExecutor(max_workers=parallel)
    try:
        futures = [pool.submit(job.run) if job.run else None for job in jobs]
        for job, future in zip(jobs, futures):
            yield future.result() if future else skipped_report(job)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        h.stop_all_processes()
        raise
    pool.shutdown()


def print_report(report: Report, counts: dict, failed_names: list) -> None:
    if report.header:
        print(report.header)
    for result in report.results:
        full_name = f"{report.name}/{result.name}" if result.name else report.name
        for line in h.format_result(full_name, result, report.log_path):
            print(line)
        kind = "failed" if result.status in h.FAILING else \
            "skipped" if result.status == h.SKIP else "passed"
        counts[kind] += 1
        if kind == "failed":
            failed_names.append(full_name)
    sys.stdout.flush()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run tinypv's host unit tests and boot it in every configuration.")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="run only configurations / host tests whose name matches "
                             "(e.g. 'native-*', 'host/*'); repeatable")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help=f"seconds per boot or host test (default: the row's, "
                             f"else {h.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--list", action="store_true",
                        help="list configurations and host tests, run nothing")
    parser.add_argument("--host-test", action="extend", nargs="+", default=[], metavar="CMD",
                        help="host test command printing KTAP (quote commands with "
                             "arguments); repeatable")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="run up to N jobs at once (default 1; the machine has 2 cores)")
    parser.add_argument("--kernel", type=Path, default=h.DEFAULT_KERNEL,
                        help=f"kernel ELF (default {h.display_path(h.DEFAULT_KERNEL)})")
    args = parser.parse_args(argv)
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.jobs < 1:
        parser.error("-j must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    check_configs(BOOT_CONFIGS)
    h.exit_cleanly_on_termination()
    jobs = make_jobs(args)
    if args.list:
        if jobs:
            print_list(jobs)
        return 0
    if not jobs:
        print(f"test: nothing matches --only {' '.join(args.only)}", file=sys.stderr)
        print(h.summary_line(0, 0, 0))
        return 2
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failed_names = []
    start = time.monotonic()
    interrupted = None
    try:
        for report in run_jobs(jobs, args.jobs):
            print_report(report, counts, failed_names)
    except KeyboardInterrupt:
        interrupted = 130
    except SystemExit as stop:
        interrupted = stop.code
    if interrupted is not None:
        print("test: interrupted; the counts below cover finished jobs only")
    print(f"== total {time.monotonic() - start:.1f} s")
    if failed_names:
        print("failed: " + " ".join(failed_names))
    print(h.summary_line(counts["passed"], counts["failed"], counts["skipped"]))
    if interrupted is not None:
        return interrupted
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
