#!/usr/bin/env python3
"""`make bench`: what each pvop costs, per dispatch mode, per backend.

Boots tinypv with the `bench` option in every environment this machine
has (native and Xen PV under QEMU TCG, each also with -icount shift=0, and
KVM where /dev/kvm works), runs the user-space real-silicon benchmark
(build/host/bench_silicon), and writes:

  build/bench/results.json  one record per op x mode x backend x environment
  build/bench/report.md     tables: op rows, mode columns, one per environment;
                            patched-vs-unpatched speed-up; padding; boot cost
  build/bench/*.png, *.svg  gnuplot charts

The kernel's "bench:" line format is described in doc/benchmarks.md.
Figures from TCG and from this machine's KVM (an instruction emulator) are
emulation artefacts and are labelled so; icount figures are exact guest
instruction counts; only the user-space run is in hardware (TSC) cycles.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform as host_platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinypv_harness as h  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench"
KERNEL = ROOT / "build" / "tinypv.elf"
SILICON = ROOT / "build" / "host" / "bench_silicon"
XMODIFY = ROOT / "build" / "host" / "test_xmodify"
# The long setting of the cross-modification race (make test runs 500,000
# free-paced and 30,000 lockstep writes per case): per mapping, writes per
# case at each pace (tests/host/test_xmodify.c).
XMODIFY_RUNS = [("alias", 10_000_000, 200_000), ("rwx", 2_000_000, 0)]

# Where the kernel runs, and what its numbers mean there.
ENVIRONMENTS = [
    {"name": "native-tcg", "platform": "native", "icount": False,
     "unit": "TSC ticks (TCG emulation, not hardware cycles)",
     "what": "tinypv native (PVH), QEMU TCG"},
    {"name": "native-icount", "platform": "native", "icount": True,
     "unit": "guest instructions (exact)",
     "what": "tinypv native (PVH), QEMU TCG -icount shift=0"},
    {"name": "kvm", "platform": "kvm", "icount": False,
     "unit": "TSC ticks (this host's KVM emulates every instruction: "
             "not hardware-virtualisation cycles)",
     "what": "tinypv as a KVM guest, -accel kvm"},
    {"name": "xen-tcg", "platform": "xen", "icount": False,
     "unit": "TSC ticks (Xen under TCG emulation, not hardware cycles)",
     "what": "tinypv as Xen PV dom0, Xen 4.17 under QEMU TCG"},
    {"name": "xen-icount", "platform": "xen", "icount": True,
     "unit": "guest instructions, Xen's own included (exact)",
     "what": "tinypv as Xen PV dom0, Xen 4.17 under QEMU TCG -icount shift=0"},
]

# Two and four CPUs: only the SMP cells run there (guest/bench.c:
# bench_smp); with four, flush_tlb_others_all flushes three other CPUs.
SMP_ENVIRONMENTS = [
    {"name": "native-tcg-smp2", "platform": "native", "icount": False,
     "smp": 2, "unit": "TSC ticks (TCG emulation, not hardware cycles)",
     "what": "tinypv native (PVH), 2 CPUs, QEMU TCG thread=multi"},
    {"name": "native-icount-smp2", "platform": "native", "icount": True,
     "smp": 2, "unit": "guest instructions of both CPUs (exact)",
     "what": "tinypv native (PVH), 2 CPUs, QEMU TCG -icount shift=0"},
    {"name": "kvm-smp2", "platform": "kvm", "icount": False, "smp": 2,
     "unit": "TSC ticks (this host's KVM emulates every instruction: "
             "not hardware-virtualisation cycles)",
     "what": "tinypv as a KVM guest, 2 vCPUs, -accel kvm"},
    {"name": "xen-tcg-smp2", "platform": "xen", "icount": False, "smp": 2,
     "unit": "TSC ticks (Xen under TCG emulation, not hardware cycles)",
     "what": "tinypv as Xen PV dom0, 2 vCPUs, Xen 4.17 under QEMU TCG"},
    {"name": "xen-icount-smp2", "platform": "xen", "icount": True, "smp": 2,
     "unit": "guest instructions of both CPUs, Xen's own included",
     "what": "tinypv as Xen PV dom0, 2 vCPUs, under QEMU TCG "
             "-icount shift=0"},
    {"name": "native-tcg-smp4", "platform": "native", "icount": False,
     "smp": 4, "unit": "TSC ticks (TCG emulation, not hardware cycles)",
     "what": "tinypv native (PVH), 4 CPUs, QEMU TCG thread=multi "
             "(on 2 host cores)"},
    {"name": "native-icount-smp4", "platform": "native", "icount": True,
     "smp": 4, "unit": "guest instructions of all CPUs (exact)",
     "what": "tinypv native (PVH), 4 CPUs, QEMU TCG -icount shift=0"},
    {"name": "kvm-smp4", "platform": "kvm", "icount": False, "smp": 4,
     "unit": "TSC ticks (this host's KVM emulates every instruction: "
             "not hardware-virtualisation cycles)",
     "what": "tinypv as a KVM guest, 4 vCPUs, -accel kvm (on 2 host cores)"},
    {"name": "xen-tcg-smp4", "platform": "xen", "icount": False, "smp": 4,
     "unit": "TSC ticks (Xen under TCG emulation, not hardware cycles)",
     "what": "tinypv as Xen PV dom0, 4 vCPUs, Xen 4.17 under QEMU TCG"},
    {"name": "xen-icount-smp4", "platform": "xen", "icount": True, "smp": 4,
     "unit": "guest instructions of all CPUs, Xen's own included",
     "what": "tinypv as Xen PV dom0, 4 vCPUs, under QEMU TCG "
             "-icount shift=0"},
]
SMP_CELLS = ["ipi_roundtrip", "flush_tlb_others_one", "flush_tlb_others_all",
             "lock_uncontended", "lock_contended", "lock_slow_handoff"]

# User-mode round trips (guest/bench.c: bench_user), with the syscall
# entry's register saves consumed (the default) and kept (pvsaves=keep).
USER_CELLS = ["syscall_roundtrip", "user_fault_roundtrip"]
USER_SAVES = ["consume", "keep"]

MAIN_MODES = ["raw", "indirect", "call", "inline", "if", "retpoline"]
# The static-call cells (guest/bench_scall.c): op "scall", one mode per
# way of making the same call. Not pvops: they get a table of their own.
SCALL_MODES = ["direct", "inline", "trampoline", "indirect", "retpoline",
               "inline-null", "trampoline-null"]
# scall_ret0: the same ways to a "return 0" target (bench_silicon only).
SCALL_OPS = ["scall", "scall_ret0"]
OWN_TABLES = set(SCALL_OPS) | {"select"}

# One call chosen between two functions by a condition constant after
# boot (guest/include/bench_select.h): "bench: op=select mode=<method>".
SELECT_MODES = ["alt-select", "if-warm", "if-cold", "static-call",
                "patched-call", "indirect-warm", "indirect-cold", "retpoline"]
SELECT_MISSING = {"static-call": "user space: no static-call patching; "
                                 "its inline form is patched-call's bytes"}
# The noinline one-site functions whose sizes give the bytes per call site
# (guest/bench_select.c), and the data each method loads to choose.
SELECT_SITE_FNS = [("alt-select", "bench_site_select", "none"),
                   ("if-warm / if-cold", "bench_site_if",
                    "4-byte flag (one cache line)"),
                   ("patched-call", "bench_site_patched_call", "none"),
                   ("static-call (as assembled: call of the trampoline; "
                    "inline, the same 5 bytes call the target)",
                    "bench_site_static_call", "none"),
                   ("indirect-warm / -cold", "bench_site_indirect",
                    "8-byte pointer (one cache line)"),
                   ("retpoline", "bench_site_retpoline",
                    "8-byte pointer (one cache line), + the shared thunk")]
PAD_MODES = ["pad-nops", "pad-nop1", "pad-jmp", "pad-single", "pad-prefix"]

# Page-table update cells (guest/bench.c: bench_mmu): n set_pte calls,
# with or without a lazy MMU section, per strategy ("native" = stores).
MMU_OP = "mmu_map"
MMU_TABLE_OP = "mmu_map_table"  # 512 read-only pages into a new L1
MMU_STRATEGIES = ["native", "hypercall", "batched", "writable"]
OWN_TABLES |= {MMU_OP, MMU_TABLE_OP}

LINE = re.compile(r"^bench: (.*)$")
PAIR = re.compile(r'(\w+)=("[^"]*"|\S+)')


def parse_bench(lines):
    """(header dict, boot dict, [record dicts]) from "bench:" lines."""
    header, boot, records = {}, {}, []
    for raw in lines:
        m = LINE.match(raw.strip())
        if not m:
            continue
        body = m.group(1)
        fields = {k: v.strip('"') for k, v in PAIR.findall(body)}
        if body.startswith("begin"):
            header = fields
        elif body.startswith("boot"):
            boot = {k: int(v) for k, v in fields.items()}
        elif body.startswith("baseline"):
            header["baseline"] = fields
        elif "op" in fields and "mode" in fields:
            rec = dict(fields)
            for k in ("min", "median", "p99"):
                rec[k] = float(rec[k])
            for k in ("calls", "batches", "n", "lazy"):
                if k in rec:
                    rec[k] = int(rec[k])
            records.append(rec)
    return header, boot, records


def git_commit():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                             cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--",
                                "guest", "pvops", "entry", "tests"],
                               cwd=ROOT, capture_output=True, text=True
                               ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def host_cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return host_platform.processor() or "unknown"


def qemu_version():
    try:
        out = subprocess.run(["qemu-system-x86_64", "--version"],
                             capture_output=True, text=True).stdout
        return out.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def run_user_keep(env, timeout):
    """The user-mode cells once more with pvsaves=keep (records)."""
    if h.platform_unavailable_reason(env["platform"]):
        return []
    append = "bench benchuser pvsaves=keep" + (" icount" if env["icount"]
                                               else "")
    log = h.fresh_log(h.LOG_DIR / f"bench-{env['name']}-keep.log")
    print(f"bench: {env['name']}: booting with pvsaves=keep ...", flush=True)
    boot = h.boot_tinypv(env["platform"], KERNEL, append, env["icount"],
                         timeout, log)
    header, _, records = parse_bench(boot.run.lines)
    for r in records:
        r["environment"] = env["name"]
        r["backend"] = header.get("backend", "?")
        r["unit"] = env["unit"]
    print(f"bench: {env['name']}: {len(records)} user cells (pvsaves=keep)")
    return [r for r in records if r.get("mode") == "user"]


def run_kernel_env(env, timeout):
    """Boots one environment; returns (environment record, records, boot)."""
    info = {"name": env["name"], "what": env["what"], "unit": env["unit"],
            "platform": env["platform"], "icount": env["icount"],
            "smp": env.get("smp", 1),
            "accelerator": "kvm" if env["platform"] == "kvm" else "tcg"}
    reason = h.platform_unavailable_reason(env["platform"])
    if reason:
        info["skipped"] = reason
        print(f"bench: {env['name']}: skipped ({reason})")
        return info, [], {}
    append = "bench notests" + (" icount" if env["icount"] else "")
    log = h.fresh_log(h.LOG_DIR / f"bench-{env['name']}.log")
    print(f"bench: {env['name']}: booting ({env['what']}) ...", flush=True)
    boot = h.boot_tinypv(env["platform"], KERNEL, append, env["icount"],
                         timeout, log, smp=env.get("smp", 1))
    header, bootinfo, records = parse_bench(boot.run.lines)
    if not records or "end" not in " ".join(
            ln for ln in boot.run.lines if ln.startswith("bench:")):
        info["skipped"] = (f"no complete benchmark output (see "
                           f"{h.display_path(log)})")
        print(f"bench: {env['name']}: FAILED: {info['skipped']}")
        return info, [], {}
    info.update({"guest_cpu": header.get("cpu", "?"),
                 "backend": header.get("backend", "?"),
                 "padding": header.get("pad", "?"),
                 "tsc_khz": int(header.get("tsc_khz", 0)),
                 "wall_seconds": round(boot.run.wall_time, 1)})
    xen = [ln for ln in boot.run.lines if ln.startswith("xen version:")]
    if xen:
        info["xen_version"] = xen[0].split(":", 1)[1].strip()
    for r in records:
        r["environment"] = env["name"]
        r["backend"] = info["backend"]
        r["unit"] = env["unit"]
    bootinfo["environment"] = env["name"]
    print(f"bench: {env['name']}: {len(records)} cells in "
          f"{boot.run.wall_time:.1f} s")
    return info, records, bootinfo


def run_silicon():
    info = {"name": "silicon", "platform": "host", "icount": False,
            "accelerator": "none (user space, ring 3)",
            "unit": "TSC cycles on the build machine's CPU (hardware)",
            "what": "user-space sites built by the real patcher, rdtscp"}
    if not SILICON.is_file():
        info["skipped"] = f"{SILICON} not built"
        return info, []
    out = subprocess.run([str(SILICON)], capture_output=True, text=True,
                         timeout=120)
    header, _, records = parse_bench(out.stdout.splitlines())
    baseline = header.get("baseline", {})
    info["guest_cpu"] = header.get("cpu", host_cpu())
    info["padding"] = header.get("pad", "?")
    if "empty_loop_median" in baseline:
        info["empty_loop_cycles"] = float(baseline["empty_loop_median"])
    for r in records:
        r["environment"] = "silicon"
        r["unit"] = info["unit"]
    print(f"bench: silicon: {len(records)} cells")
    return info, records


XM_LINE = re.compile(r"^bench: xmodify (.*)$")
# A failed check, as tests/host/ktap.h prints it: "# case: why (file:line)".
XM_FAILURE = re.compile(r"^# \w+: .* \([^()\s]+:\d+\)$")


def run_xmodify():
    """The cross-modification race, long setting.

    Returns (one record per case and pace, why the run is incomplete or
    None, the failures its own checks reported). A failed check (e.g. a
    FINDING in case a) is a result to show, not a broken benchmark.
    """
    if not XMODIFY.is_file():
        print(f"bench: xmodify: {XMODIFY} not built")
        return [], f"{h.display_path(XMODIFY)} not built", []
    records, failures = [], []
    for mapping, writes, lockstep in XMODIFY_RUNS:
        cmd = [str(XMODIFY), f"--writes={writes}",
               f"--lockstep-writes={lockstep}", f"--map={mapping}", "--bench"]
        print(f"bench: xmodify: {' '.join(cmd[1:])} ...", flush=True)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=1800)
        except subprocess.TimeoutExpired:
            return records, f"{' '.join(cmd)} timed out", failures
        seen, landings = 0, []
        for line in out.stdout.splitlines():
            if XM_FAILURE.match(line):
                failures.append(f"--map={mapping}: {line[2:]}")
            # A case's first wrong landings come before its bench: line.
            if line.startswith("#   wrong target"):
                landings.append(line.split(": ", 1)[1])
                continue
            m = XM_LINE.match(line.strip())
            if not m:
                continue
            rec = {k: v.strip('"') for k, v in PAIR.findall(m.group(1))}
            for k in ("calls", "writes", "changes", "wrong", "sigtrap",
                      "sigsegv", "sigill", "unrecoverable"):
                rec[k] = int(rec[k])
            rec["first_landings"] = landings[:3]
            landings = []
            records.append(rec)
            seen += 1
        if out.returncode not in (0, 1) or not seen:
            tail = "; ".join((out.stdout + out.stderr).strip()
                             .splitlines()[-3:])
            return records, (f"{' '.join(cmd)} exited {out.returncode}: "
                             f"{tail}"), failures
    print(f"bench: xmodify: {len(records)} runs"
          + (f", {len(failures)} failed checks" if failures else ""))
    return records, None, failures


def xmodify_table(xm):
    out = ["| case | site | pace | map | store | writes | calls | target "
           "changes seen | wrong targets | SIGTRAP | SIGSEGV | SIGILL |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    where = {"a": "rel32 in one aligned 8-byte word",
             "a4": "rel32 = one aligned 4-byte word",
             "c": "rel32 crosses an 8-byte word, not a line",
             "b": "rel32 crosses a 64-byte line (2+2 bytes)",
             "b1": "rel32 crosses a 64-byte line (1+3 bytes)",
             "p": "rel32 crosses a 4 KiB page (2+2 bytes)"}
    for r in xm:
        out.append(f"| {r['case']} | {where.get(r['case'], '?')} "
                   f"(line+{r['rel_off']}) | {r['pace']} | {r['map']} | "
                   f"{r['store']} | {r['writes']:,} | {r['calls']:,} | "
                   f"{r['changes']:,} | {r['wrong']:,} | {r['sigtrap']:,} | "
                   f"{r['sigsegv']:,} | {r['sigill']:,} |")
    return out


# ---------------------------------------------------------------- report

def fmt(v, exact):
    if v is None:
        return "-"
    return f"{v:.0f}" if exact and abs(v - round(v)) < 0.05 else f"{v:.2f}"


def cell(records, env, op, mode, backend=None):
    for r in records:
        if (r["environment"] == env and r["op"] == op and r["mode"] == mode
                and (backend is None or r.get("backend") == backend)):
            return r
    return None


def user_cell(records, env, op, saves):
    for r in records:
        if (r["environment"] == env and r["op"] == op and
                r["mode"] == "user" and r.get("saves") == saves):
            return r
    return None


def ops_of(records, env):
    """The pvop rows of env (op, backend), in record order."""
    seen = []
    for r in records:
        key = (r["op"], r.get("backend"))
        if r.get("mode") == "live":
            continue  # the live-update table has its own layout
        if r["environment"] == env and key not in seen and \
                r["op"] not in OWN_TABLES and r["mode"] != "user":
            seen.append(key)
    return seen


def table(records, env, modes, exact, stat):
    rows = ops_of(records, env)
    show_backend = len({b for _, b in rows}) > 1
    head = ["op"] + (["backend"] if show_backend else []) + modes
    out = ["| " + " | ".join(head) + " |",
           "|" + "---|" * len(head)]
    for op, backend in rows:
        vals = []
        for m in modes:
            r = cell(records, env, op, m, backend)
            vals.append(fmt(r[stat], exact) if r else "-")
        out.append("| " + " | ".join([op] + ([backend] if show_backend
                                              else []) + vals) + " |")
    return out


def speedups(records, env, exact, stat):
    out = ["| op | indirect | inline | indirect / inline | "
           "indirect / call |", "|---|---|---|---|---|"]
    for op, backend in ops_of(records, env):
        ind = cell(records, env, op, "indirect", backend)
        inl = cell(records, env, op, "inline", backend)
        call = cell(records, env, op, "call", backend)
        if not ind or not inl:
            continue

        def ratio(a, b):
            if not a or not b or b[stat] <= 0:
                return "-"
            return f"{a[stat] / b[stat]:.1f}x"
        label = op if not backend or env != "silicon" else f"{op} ({backend})"
        out.append(f"| {label} | {fmt(ind[stat], exact)} | "
                   f"{fmt(inl[stat], exact)} | {ratio(ind, inl)} | "
                   f"{ratio(ind, call)} |")
    return out


def mmu_cell(records, env, strategy, n, lazy, op=MMU_OP):
    for r in records:
        if (r["environment"] == env and r["op"] == op and
                r["mode"] == strategy and r.get("n") == n and
                r.get("lazy") == lazy):
            return r
    return None


def mmu_sizes(records):
    return sorted({r["n"] for r in records if r["op"] == MMU_OP})


def mmu_break_even(records, env, stat):
    """Smallest n at which n updates in one lazy section (batched) cost
    less than n updates issued one by one (hypercall, no section)."""
    for n in mmu_sizes(records):
        lazy = mmu_cell(records, env, "batched", n, 1)
        one = mmu_cell(records, env, "hypercall", n, 0)
        if lazy and one and lazy[stat] < one[stat]:
            return n
    return None


def mmu_section(envs, records, plots):
    envs = [e for e in envs if not e.get("skipped") and e.get("smp", 1) == 1
            and any(r["environment"] == e["name"] and r["op"] == MMU_OP
                    for r in records)]
    if not envs:
        return []
    out = ["", "## Page-table updates (MMU pvops)", "",
           "Per cell: *n* `set_pte` calls on consecutive entries of one "
           "existing level-1 table, each changing the entry, with or "
           "without a lazy MMU section around them; no TLB flush. "
           "*native* is the inline store (native and KVM); under Xen PV "
           "*hypercall* is one `mmu_update` per entry, *batched* queues "
           "them in the lazy section (one `mmu_update` per 128), "
           "*writable* stores into the read-only table and Xen emulates "
           "the write. *new table*: 512 read-only pages mapped where no "
           "level-1 table exists yet (`mmu_map_range()`: a page is filled, "
           "made a table with `alloc_pt` (Xen: one pin validates the 512 "
           "entries) and linked with `set_pmd`). Minimum under icount "
           "(exact, Xen's instructions included), median elsewhere.", "",
           "| environment | strategy | 1 update | 1 in a lazy section | "
           "512 pages | 512 in a lazy section | per page (512, lazy) | "
           "512, new table |",
           "|---|---|---|---|---|---|---|---|"]
    for e in envs:
        exact = e.get("icount", False)
        stat = "min" if exact else "median"
        for s in MMU_STRATEGIES:
            c = [mmu_cell(records, e["name"], s, n, l)
                 for n, l in ((1, 0), (1, 1), (512, 0), (512, 1))]
            if not any(c):
                continue
            vals = [fmt(x[stat], exact) if x else "-" for x in c]
            per = fmt(c[3][stat] / 512, False) if c[3] else "-"
            t = mmu_cell(records, e["name"], s, 512, 1, MMU_TABLE_OP)
            out.append(f"| {e['name']} | {s} | " + " | ".join(vals) +
                       f" | {per} | {fmt(t[stat], exact) if t else '-'} |")
    out += ["", "Where lazy mode pays for itself: the smallest batch *n* "
            "at which *n* updates queued in one lazy section (batched) "
            "cost less than *n* issued one by one (hypercall):", "",
            "| environment | break-even n | " +
            " | ".join(f"n={n}: one by one / lazy" for n in mmu_sizes(records))
            + " |", "|---|---|" + "---|" * len(mmu_sizes(records))]
    for e in envs:
        if e["platform"] != "xen":
            continue
        exact = e.get("icount", False)
        stat = "min" if exact else "median"
        be = mmu_break_even(records, e["name"], stat)
        vals = []
        for n in mmu_sizes(records):
            one = mmu_cell(records, e["name"], "hypercall", n, 0)
            lazy = mmu_cell(records, e["name"], "batched", n, 1)
            vals.append(f"{fmt(one[stat], exact)} / {fmt(lazy[stat], exact)}"
                        if one and lazy else "-")
        out.append(f"| {e['name']} | {be if be else 'never (in range)'} | "
                   + " | ".join(vals) + " |")
    if "mmu" in plots:
        out += ["", f"![mmu]({plots['mmu']})"]
    return out


def write_report(meta, envs, records, boots, plots, xmodify=(),
                 xmodify_error=None, xmodify_failures=()):
    lines = ["# tinypv benchmark report", "",
             f"Generated {meta['date']} by `make bench` "
             f"(scripts/bench.py), tinypv {meta['commit']}.", "",
             f"Build machine: {meta['host_cpu']}; {meta['qemu']}.", "",
             "Figures are per call, after subtracting an empty loop. "
             "Under `-icount shift=0` they are exact guest instruction "
             "counts (the minimum, which equals the median there). "
             "TCG and KVM figures here are TSC ticks of an emulator "
             "and say nothing about hardware cycles; only the "
             "`silicon` table is measured on real hardware, in user "
             "space. See doc/benchmarks.md for the method.", "",
             "## Environments", "",
             "| name | what | unit | notes |", "|---|---|---|---|"]
    for e in envs:
        notes = e.get("skipped") or ", ".join(
            f"{k}={e[k]}" for k in ("backend", "padding", "guest_cpu",
                                    "xen_version", "wall_seconds") if k in e)
        lines.append(f"| {e['name']} | {e['what']} | {e['unit']} | "
                     f"{notes} |")
    for e in envs:
        if e.get("skipped") or e.get("smp", 1) > 1:
            continue
        exact = e.get("icount", False)
        stat = "min" if exact else "median"
        lines += ["", f"## {e['name']}: {e['what']}", "",
                  f"Unit: {e['unit']}; {stat} per call.", ""]
        lines += table(records, e["name"], MAIN_MODES, exact, stat)
        lines += ["", "Patched over unpatched:", ""]
        lines += speedups(records, e["name"], exact, stat)
        lines += ["", "Padding styles (inline, spare bytes filled as "
                  "named):", ""]
        lines += table(records, e["name"], PAD_MODES, exact, stat)
        if e["name"] in plots:
            lines += ["", f"![{e['name']}]({plots[e['name']]})"]
    sc_envs = [e for e in envs if not e.get("skipped") and any(
        r["environment"] == e["name"] and r["op"] == "scall"
        for r in records)]
    if sc_envs:
        lines += ["", "## Static calls: one empty function called seven ways",
                  "", "Per call, empty loop subtracted (guest/bench_scall.c, "
                  "doc/static-calls.md): *direct* is `call rel32`; *inline* "
                  "a static call site patched to that; *trampoline* the "
                  "call to the key's trampoline and its `jmp rel32`; "
                  "*indirect* `call *ptr(%rip)`; *retpoline* the same "
                  "through a retpoline thunk; the *-null* forms a NULL "
                  "target (a 5-byte NOP inline, `call` + `ret` through the "
                  "trampoline). Minimum under icount, else median.", "",
                  "| environment | unit | " + " | ".join(SCALL_MODES) + " |",
                  "|---|---|" + "---|" * len(SCALL_MODES)]
        for e in sc_envs:
            exact = e.get("icount", False)
            stat = "min" if exact else "median"
            name = e["name"] if e["name"] != "silicon" else \
                f"silicon, {e.get('guest_cpu', '?')}"
            for op in SCALL_OPS:
                if not any(cell(records, e["name"], op, m)
                           for m in SCALL_MODES):
                    continue
                vals = []
                for m in SCALL_MODES:
                    r = cell(records, e["name"], op, m)
                    vals.append(fmt(r[stat], exact) if r else "-")
                label = name + (" (a return-0 target)"
                                if op == "scall_ret0" else "")
                lines.append(f"| {label} | {e['unit']} | " +
                             " | ".join(vals) + " |")
        for e in sc_envs:
            if "empty_loop_cycles" in e:
                lines += ["", f"On silicon the subtracted empty loop "
                          f"costs {e['empty_loop_cycles']:.2f} TSC cycles "
                          "per iteration: a figure near 0 means hidden "
                          "behind the loop's own cost, not free "
                          "(tests/host/bench_silicon.c)."]
        if "scall" in plots:
            lines += ["", f"![scall]({plots['scall']})"]
    if xmodify:
        lines += ["", "## Cross-modifying a live call site: silicon, "
                  f"{xmodify[0].get('cpu', meta['host_cpu'])}", "",
                  "`build/host/test_xmodify` (doc/static-calls.md, "
                  "\"What silicon says\"): one thread calls a `call rel32` "
                  "site in a loop while another rewrites its rel32 among "
                  "three targets with one store, no int3, no "
                  "serialisation; a wrong target is a call that landed "
                  "anywhere but one of the three (caught as a signal, "
                  "not fatal). *alias*: the writer stores through a "
                  "read-write view of a memfd the caller executes "
                  "through a read-exec view (as the kernel writes text "
                  "through its poke alias); *rwx*: one mapping. *free* "
                  "pace: the writer stores back to back (a pseudo-random "
                  "delay apart), waiting for the caller every 1024 "
                  "writes; *lockstep*: it waits after every write until "
                  "the caller has run the new target, so every store hits "
                  "a running caller. *target changes seen*: how often the "
                  "caller's call went elsewhere than its previous one. "
                  "Counts are what was seen in this run, nothing more.", ""]
        lines += xmodify_table(xmodify)
        if xmodify_failures:
            lines += ["", "**test_xmodify's own checks failed in this "
                      "run** (in case a or a4 a wrong target is a finding "
                      "against the single-store update path; see "
                      "doc/static-calls.md):", ""]
            lines += [f"- {f}" for f in xmodify_failures]
        if xmodify_error:
            lines += ["", f"Incomplete: {xmodify_error}"]
    elif xmodify_error:
        lines += ["", "## Cross-modifying a live call site", "",
                  f"Not run: {xmodify_error}"]
    smp_envs = [e for e in envs if e.get("smp", 1) > 1 and not e.get("skipped")]
    if smp_envs:
        lines += ["", "## SMP: CPU 0 against the others", "",
                  "Per operation, the whole operation (no empty loop "
                  "subtracted); the other CPUs idle (halted) between "
                  "calls, so an IPI round trip includes a wake-up. "
                  "Median, or the minimum under icount, where every "
                  "CPU's instructions are counted. *flush_tlb_others_one* "
                  "flushes CPU 1, *flush_tlb_others_all* every other CPU "
                  "(one with two CPUs, three with four); *lock_contended* "
                  "is CPU 0's time per acquisition while CPU 1 runs the "
                  "same lock loop; *lock_slow_handoff* is CPU 0's unlock "
                  "until CPU 1, waiting in the slow path (lock_wait), "
                  "holds the lock (lock_kick on the way): *slow* and "
                  "*kicks* count them over all its batches.", "",
                  "| environment | cpus | backend | " +
                  " | ".join(SMP_CELLS) + " | slow / kicks |",
                  "|---|---|---|" + "---|" * len(SMP_CELLS) + "---|"]
        for e in smp_envs:
            exact = e.get("icount", False)
            stat = "min" if exact else "median"
            vals = []
            for c in SMP_CELLS:
                r = cell(records, e["name"], c, "smp")
                vals.append(fmt(r[stat], exact) if r else "–")
            h_rec = cell(records, e["name"], "lock_slow_handoff", "smp")
            slow = (f"{h_rec.get('slow_entries', '?')} / "
                    f"{h_rec.get('kicks', '?')}" if h_rec else "–")
            lines.append(f"| {e['name']} | {e.get('smp', '?')} | "
                         f"{e.get('backend', '?')} | " +
                         " | ".join(vals) + f" | {slow} |")
        if "smp" in plots:
            lines += ["", f"![smp]({plots['smp']})"]
    live = [r for r in records if r.get("mode") == "live"]
    if live:
        lines += ["", "## Live patching: cost per update batch", "",
                  "One batch re-aims n sites at the next target (a "
                  "rel32-only change) and is timed from the first queue "
                  "to the end of patch_finish(); minimum under icount, "
                  "else median. Paths: *int3* (call sites, patchlive="
                  "int3), *store* (call sites, one 8-byte store each), "
                  "*cs* (cs call sites, the CS-prefix protocol). With "
                  "one CPU the live path is forced and its rounds send "
                  "no IPI; with two, each round IPIs CPU 1 (idle).", "",
                  "| environment | path | n | per batch | per site | "
                  "sync rounds | IPIs |", "|---|---|---|---|---|---|---|"]
        lines += live_update_rows(envs, records, "update_", ())
    scall_live = [r for r in live if r["op"].startswith("scall_update_")]
    if scall_live:
        lines += ["", "## Static calls: cost per update", "",
                  "static_call_update() of n keys in one "
                  "static_call_batch_begin()/end(), target to target "
                  "(rel32s only), timed from the first update to the end "
                  "of the batch; minimum under icount, else median. Each "
                  "key rewrites its trampoline and its call site: half "
                  "the keys have a plain call site (its rel32 crosses a "
                  "word: always int3), half a tail site (single store "
                  "where the path allows); *cs* is one `cs call` key. The "
                  "columns say what each batch took: sync rounds, IPIs, "
                  "single stores, int3 sites.", "",
                  "| environment | path | keys | per batch | per key | "
                  "sync rounds | IPIs | stores | int3 sites |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += live_update_rows(envs, records, "scall_update_",
                                  ("stores", "int3"))
        if "scall_update" in plots:
            lines += ["", f"![scall_update]({plots['scall_update']})"]
    user_envs = [e for e in envs if e.get("smp", 1) == 1 and
                 not e.get("skipped") and e["name"] != "silicon"]
    if user_envs:
        lines += ["", "## User mode: system call and page fault round trips",
                  "", "Per round trip, user -> kernel -> user: an empty "
                  "system call (`syscall`; natively `sysretq` back, under "
                  "Xen PV the syscall callback and HYPERVISOR_iret), and a "
                  "page fault from user mode that the kernel handles and "
                  "returns from. Each is (T(2n) - T(n)) / n of the task's "
                  "loop, so its start and exit cancel. *consume*: the "
                  "syscall entry's push/pop around irq_enable patched away "
                  "where the inline bytes allow (natively); *keep*: "
                  "`pvsaves=keep`. Minimum under icount (exact, Xen's "
                  "instructions included), else median; TCG and KVM "
                  "figures are emulator ticks, not hardware cycles. A '-' "
                  "is a cell that cannot run there (the KVM here does not "
                  "enter the kernel on `syscall` from user mode).", "",
                  "| environment | backend | " + " | ".join(
                      f"{c} ({s})" for c in USER_CELLS for s in USER_SAVES)
                  + " |", "|---|---|" + "---|" * (len(USER_CELLS) *
                                                    len(USER_SAVES))]
        for e in user_envs:
            exact = e.get("icount", False)
            stat = "min" if exact else "median"
            vals = []
            for c in USER_CELLS:
                for sv in USER_SAVES:
                    r = user_cell(records, e["name"], c, sv)
                    vals.append(fmt(r[stat], exact) if r else "-")
            lines.append(f"| {e['name']} | {e.get('backend', '?')} | " +
                         " | ".join(vals) + " |")
        if "user" in plots:
            lines += ["", f"![user]({plots['user']})"]
    if boots:
        lines += ["", "## Boot: patching cost", "",
                  "Ticks are guest instructions under icount, emulated TSC "
                  "ticks elsewhere; microseconds are those ticks over the "
                  "guest's TSC rate (virtual time under icount). *patching* "
                  "is the boot batch (plans applied, each site checked "
                  "against the engine's state, written through the poke "
                  "mapping); *records checked* is patch_init(), once per "
                  "boot; *alternatives* is the alternatives batch "
                  "(alt/alt.c) over its own sites.", "",
                  "| environment | sites | patching | per site | "
                  "records checked | per site | alternatives (sites) | "
                  "entry to all patched | entry to ready |",
                  "|---|---|---|---|---|---|---|---|---|"]
        khz = {e["name"]: e.get("tsc_khz", 0) for e in envs}
        for b in boots:
            sites = b.get("sites", 0)
            k = khz.get(b["environment"]) or 0

            def t(ticks):
                us = f" ({ticks * 1000 // k} us)" if k and ticks else ""
                return f"{ticks}{us}"
            lines.append(
                f"| {b['environment']} | {sites} | "
                f"{t(b.get('patch_ticks', 0))} | "
                f"{b.get('patch_ticks', 0) // max(sites, 1)} | "
                f"{t(b.get('check_ticks', 0))} | "
                f"{b.get('check_ticks', 0) // max(sites, 1)} | "
                f"{t(b.get('alt_ticks', 0))} ({b.get('alt_sites', 0)}) | "
                f"{t(b.get('entry_to_patched', 0))} | "
                f"{t(b.get('entry_to_ready', 0))} |")
    sel = select_table(envs, records)
    if len(sel) > 2:
        lines += ["", "## One call chosen at boot: patched select vs if vs "
                  "indirect", "",
                  "One call chosen between two functions by a condition "
                  "constant after boot, per call, the empty loop (with the "
                  "same flush, for the cold cells) subtracted "
                  "(guest/include/bench_select.h; doc/benchmarks.md has "
                  "the reading). The cold cells flush the variable's cache "
                  "line before each call; only on silicon does that cost "
                  "what memory costs (TCG has no cache model).", ""] + sel
        sizes = select_sizes()
        if sizes:
            lines += ["", "Bytes of code per call site (this kernel's "
                      "bench_site_* functions, the frame subtracted) and "
                      "the data each call loads to choose:", "",
                      "| method | bytes at the site | data loaded |",
                      "|---|---|---|"]
            lines += [f"| {m} | {b} | {d} |" for m, b, d in sizes]
        if "select" in plots:
            lines += ["", f"![select]({plots['select']})"]
    lines += mmu_section(envs, records, plots)
    lines += scall_lines_section()
    if "compare" in plots:
        lines += ["", "## Native vs Xen PV, exact instruction counts", "",
                  f"![compare]({plots['compare']})"]
    (OUT / "report.md").write_text("\n".join(lines) + "\n")


KERNEL_B6 = ROOT / "build" / "bundle6" / "tinypv.elf"


def scall_lines_section():
    """The cache-line table: static-call sites (and every call rel32) that
    cross a 64-byte line or have their rel32 across an 8-byte word, in the
    normal build and with SCALL_ALIGN=6 (tests/host/test_scall_lines.py
    measures the same and asserts it)."""
    try:
        sys.path.insert(0, str(ROOT / "tests" / "host"))
        import test_scall_lines as tl
        n, a = tl.measure(KERNEL), tl.measure(KERNEL_B6)
    except Exception as e:  # the table is optional; say why it is absent
        return ["", "## Static calls and cache lines", "",
                f"Not measured: {e}"]

    def row(name, s, k=""):
        return (f"| {name} | {s[k + 'sites' if not k else k + 'calls']} | "
                f"{s[k + 'cross_line']} | {s[k + 'rel32_cross_word']} |")
    return ["", "## Static calls and cache lines", "",
            "Sites whose call crosses a 64-byte line (not inlined: Andy "
            "Lutomirski's rule) and whose rel32 crosses an aligned 8-byte "
            "word (no single store), in this build and in the "
            "`SCALL_ALIGN=6` build (every static call under "
            "`.bundle_align_mode 6`; doc/static-calls.md).", "",
            "| what | count | cross a line | rel32 across a word |",
            "|---|---|---|---|",
            f"| every call rel32 in .text | {n['all_calls']} | "
            f"{n['all_cross_line']} | {n['all_rel32_cross_word']} |",
            f"| static-call sites | {n['sites']} | {n['cross_line']} | "
            f"{n['rel32_cross_word']} |",
            f"| the kernel's own (not ktest_/bench_ keys) | "
            f"{n['kernel']['sites']} | {n['kernel']['cross_line']} | "
            f"{n['kernel']['rel32_cross_word']} |",
            f"| static-call sites, SCALL_ALIGN=6 | {a['sites']} | "
            f"{a['cross_line']} | {a['rel32_cross_word']} |", "",
            f"Alignment cost: {a['func_bytes'] - n['func_bytes']} bytes of "
            f"function text; NOPs right before sites {n['nops_before']} -> "
            f"{a['nops_before']}, each run on every call through its site."]


def select_sizes():
    """[(method, bytes at the site, data loaded)] from the kernel's symbol
    sizes: each bench_site_* function is one site in a frame; the frame
    alone is bench_site_base minus its 5-byte direct call."""
    try:
        out = subprocess.run(["readelf", "-sW", str(KERNEL)],
                             capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    size = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC":
            size[f[7]] = int(f[2], 0)
    if "bench_site_base" not in size:
        return []
    frame = size["bench_site_base"] - 5
    return [(m, size[fn] - frame, data) for m, fn, data in SELECT_SITE_FNS
            if fn in size]


def select_table(envs, records):
    """Rows: environments; columns: methods (median, or min under icount)."""
    head = ["environment", "unit"] + SELECT_MODES
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in envs:
        if e.get("skipped") or e.get("smp", 1) > 1:
            continue
        exact = e.get("icount", False)
        stat = "min" if exact else "median"
        vals = []
        for m in SELECT_MODES:
            r = cell(records, e["name"], "select", m)
            vals.append(fmt(r[stat], exact) if r else
                        f"- ({SELECT_MISSING[m]})" if m in SELECT_MISSING
                        else "-")
        if all(v.startswith("-") for v in vals):
            continue
        out.append(f"| {e['name']} | {e['unit']}, {stat} | " +
                   " | ".join(vals) + " |")
    return out


# ---------------------------------------------------------------- plots

def gnuplot(script):
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode:
        raise RuntimeError(f"gnuplot failed: {r.stderr.strip()}")


def histogram(base, title, ylabel, ymin, plot):
    """A clustered, log-scale bar chart, as base.png and base.svg."""
    for term, ext in (("pngcairo size 1200,600", "png"),
                      ("svg size 1200,600", "svg")):
        gnuplot(f"""
set terminal {term}
set output '{base}.{ext}'
set title "{title}" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set logscale y
set yrange [{ymin}:*]
set ylabel "{ylabel}" noenhanced
set xtics rotate by -30 noenhanced
set key outside right top
set grid ytics
plot {plot}
""")


def plot_env(env, records, exact):
    stat = "min" if exact else "median"
    rows = ops_of(records, env["name"])
    modes = [m for m in MAIN_MODES
             if any(cell(records, env["name"], op, m, b) for op, b in rows)]
    dat = OUT / f"{env['name']}.dat"
    with open(dat, "w") as f:
        f.write("# op " + " ".join(modes) + "\n")
        for op, backend in rows:
            label = op if env["name"] != "silicon" else f"{op}/{backend}"
            vals = []
            for m in modes:
                r = cell(records, env["name"], op, m, backend)
                v = r[stat] if r else None
                vals.append("NaN" if v is None else f"{max(v, 0.05):.3f}")
            f.write(f"{label} " + " ".join(vals) + "\n")
    base = OUT / env["name"]
    cols = ", ".join(
        f"'{dat}' using {i + 2}:xtic(1) title '{m}'" if i == 0 else
        f"'' using {i + 2} title '{m}'" for i, m in enumerate(modes))
    histogram(base, f"{env['what']}\\nper call, {stat}; unit: {env['unit']}",
              env["unit"], 0.05, cols)
    return f"{env['name']}.png"


def cluster_data(base, names, rows):
    """Writes OUT/base.dat, one line per (label, values) row (None: no
    value), one column per name; returns the plot clause histogram()
    takes: one bar per name in each cluster."""
    dat = OUT / f"{base}.dat"
    with open(dat, "w") as f:
        f.write("# cell " + " ".join(names) + "\n")
        for label, vals in rows:
            f.write(label + " " + " ".join(
                "NaN" if v is None else v for v in vals) + "\n")
    return ", ".join(
        f"'{dat}' using {i + 2}:xtic(1) title '{n}'" if i == 0 else
        f"'' using {i + 2} title '{n}'" for i, n in enumerate(names))


def plot_smp(envs, records):
    """The SMP cells of the exact (icount) environments, 2 and 4 CPUs."""
    names = [e["name"] for e in envs
             if e.get("smp", 1) > 1 and e.get("icount") and not e.get("skipped")]
    cols = cluster_data("smp", names, [
        (c, [f"{max(r['min'], 0.5):.2f}" if r else None
             for r in (cell(records, n, c, "smp") for n in names)])
        for c in SMP_CELLS])
    histogram(OUT / "smp", "SMP operations, CPU 0 against the others (QEMU "
              "-icount shift=0, every CPU's guest instructions, Xen's "
              "included)",
              "guest instructions per operation", 0.5, cols)
    return "smp.png"


def plot_user(envs, records):
    """The user-mode round trips of the exact (icount) environments: one
    unit, guest instructions, so the bars compare."""
    names = [e["name"] for e in envs if e.get("smp", 1) == 1 and
             e.get("icount") and not e.get("skipped")]
    cols = [(c, sv) for c in USER_CELLS for sv in USER_SAVES]
    dat = OUT / "user.dat"
    with open(dat, "w") as f:
        f.write("# environment " + " ".join(f"{c}-{sv}" for c, sv in cols)
                + "\n")
        for n in names:
            exact = next(e for e in envs if e["name"] == n).get("icount")
            stat = "min" if exact else "median"
            vals = []
            for c, sv in cols:
                r = user_cell(records, n, c, sv)
                vals.append("NaN" if not r else f"{max(r[stat], 0.5):.2f}")
            f.write(n + " " + " ".join(vals) + "\n")
    plot = ", ".join(
        f"'{dat}' using {i + 2}:xtic(1) title '{c.replace('_', ' ')} "
        f"(saves {sv})'" if i == 0 else
        f"'' using {i + 2} title '{c.replace('_', ' ')} (saves {sv})'"
        for i, (c, sv) in enumerate(cols))
    histogram(OUT / "user", "User-mode round trips (QEMU -icount shift=0: "
              "guest instructions, Xen's included)",
              "guest instructions per round trip", 0.5, plot)
    return "user.png"
def plot_scall(envs, records):
    """Static-call cells, one cluster per call form, one bar per env."""
    names = [e["name"] for e in envs if not e.get("skipped") and
             any(r["environment"] == e["name"] and r["op"] == "scall"
                 for r in records)]
    exact = {e["name"]: e.get("icount", False) for e in envs}
    dat = OUT / "scall.dat"
    with open(dat, "w") as f:
        f.write("# mode " + " ".join(names) + "\n")
        for m in SCALL_MODES:
            vals = []
            for n in names:
                r = cell(records, n, "scall", m)
                v = r["min" if exact[n] else "median"] if r else None
                vals.append("NaN" if v is None else f"{max(v, 0.05):.3f}")
            f.write(m + " " + " ".join(vals) + "\n")
    cols = ", ".join(
        f"'{dat}' using {i + 2}:xtic(1) title '{n}'" if i == 0 else
        f"'' using {i + 2} title '{n}'" for i, n in enumerate(names))
    histogram(OUT / "scall", "One call, seven ways: per call, each "
              "environment in its own unit (icount: instructions; TCG, "
              "KVM, Xen: emulated TSC ticks; silicon: cycles)",
              "per call (unit by environment, see the table)", 0.05, cols)
    return "scall.png"


SCALL_UPDATE_CELLS = [f"{p}_{n}" for p in ("int3", "store") for n in
                      (1, 16, 256)] + ["cs_1"]


def plot_scall_update(envs, records):
    """Static-call update cost per batch: one cluster per path and size,
    one bar per icount environment (exact instruction counts)."""
    names = [e["name"] for e in envs if e.get("icount") and
             not e.get("skipped") and
             cell(records, e["name"], "scall_update_int3_1", "live")]
    cols = cluster_data("scall_update", names, [
        (c.replace("_", "/"),
         [f"{max(r['min'], 1):.0f}" if r else None
          for r in (cell(records, n, f"scall_update_{c}", "live")
                    for n in names)])
        for c in SCALL_UPDATE_CELLS])
    histogram(OUT / "scall_update", "One static-call update batch: path / "
              "keys, instructions (icount, minimum)", "instructions per "
              "batch", 100, cols)
    return "scall_update.png"


def live_update_rows(envs, records, prefix, extra):
    """Table rows of the <prefix><path>_<n> live cells: per batch, per
    site (key), sync rounds, IPIs, then the record's fields in extra."""
    rows = []
    for e in envs:
        if e.get("skipped"):
            continue
        exact = e.get("icount", False)
        stat = "min" if exact else "median"
        for path in ("int3", "store", "cs"):
            for n in (1, 16, 256):
                r = cell(records, e["name"], f"{prefix}{path}_{n}", "live")
                if not r:
                    continue
                rows.append(
                    f"| {e['name']} | {path} | {n} | "
                    f"{fmt(r[stat], exact)} | {fmt(r[stat] / n, exact)} | "
                    f"{r.get('rounds')} | {r.get('ipis')} |" +
                    "".join(f" {r.get(k)} |" for k in extra))
    return rows


def plot_compare(records):
    dat = OUT / "compare.dat"
    ops = [op for op, _ in ops_of(records, "native-icount")]
    with open(dat, "w") as f:
        f.write("# op native-inline native-indirect xen-inline xen-indirect\n")
        for op in ops:
            vals = []
            for env in ("native-icount", "xen-icount"):
                for m in ("inline", "indirect"):
                    r = cell(records, env, op, m)
                    vals.append("NaN" if not r else f"{max(r['min'], 0.05):.2f}")
            f.write(op + " " + " ".join(vals) + "\n")
    histogram(OUT / "compare", "Guest instructions per call (QEMU -icount "
              "shift=0): native vs Xen PV dom0, inline vs indirect",
              "guest instructions (Xen's included)", 0.5,
              f"'{dat}' using 2:xtic(1) title 'native inline', '' using 3 "
              "title 'native indirect', '' using 4 title 'Xen PV inline', "
              "'' using 5 title 'Xen PV indirect'")
    return "compare.png"


def plot_select(envs, records):
    """Methods as clusters, one bar per environment (log scale: the units
    differ; each environment's unit is in the report's table)."""
    names = [e["name"] for e in envs if not e.get("skipped")
             and e.get("smp", 1) == 1
             and any(cell(records, e["name"], "select", m)
                     for m in SELECT_MODES)]
    exact = {e["name"]: e.get("icount", False) for e in envs}
    dat = OUT / "select.dat"
    with open(dat, "w") as f:
        f.write("# method " + " ".join(names) + "\n")
        for m in SELECT_MODES:
            if not any(cell(records, n, "select", m) for n in names):
                continue  # a method this build lacks: named in the title
            vals = []
            for n in names:
                r = cell(records, n, "select", m)
                v = r["min" if exact[n] else "median"] if r else None
                vals.append("NaN" if v is None else f"{max(v, 0.05):.3f}")
            f.write(f"{m} " + " ".join(vals) + "\n")
    missing = [f"{m}: {why}" for m, why in SELECT_MISSING.items()
               if not any(cell(records, n, "select", m) for n in names)]
    cols = ", ".join(
        f"'{dat}' using {i + 2}:xtic(1) title '{n}'" if i == 0 else
        f"'' using {i + 2} title '{n}'" for i, n in enumerate(names))
    histogram(OUT / "select", "One call chosen at boot between two "
              "functions, per call\\nicount: guest instructions; TCG, "
              "KVM, Xen: emulated TSC ticks; silicon: hardware cycles"
              + "".join(f" ({m})" for m in missing),
              "per call (log scale; units differ per environment)", 0.05,
              cols)
    return "select.png"


def plot_mmu(records):
    """Per-page cost against batch size, exact (icount): each Xen
    strategy with its best section choice, and native stores."""
    series = [("native-icount", "native", 0, "native store"),
              ("xen-icount", "hypercall", 0, "Xen hypercall (one by one)"),
              ("xen-icount", "batched", 1, "Xen batched (lazy section)"),
              ("xen-icount", "writable", 0, "Xen writable (emulated)")]
    series = [s for s in series
              if mmu_cell(records, s[0], s[1], 1, s[2])]
    dat = OUT / "mmu.dat"
    with open(dat, "w") as f:
        f.write("# n " + " ".join(s[3].replace(" ", "_") for s in series)
                + "\n")
        for n in mmu_sizes(records):
            vals = []
            for env, strat, lazy, _ in series:
                r = mmu_cell(records, env, strat, n, lazy)
                vals.append("NaN" if not r else f"{r['min'] / n:.2f}")
            f.write(f"{n} " + " ".join(vals) + "\n")
    cols = ", ".join(f"'{dat}' using 1:{i + 2} with linespoints lw 2 "
                     f"title '{s[3]}'" for i, s in enumerate(series))
    for term, ext in (("pngcairo size 1000,600", "png"),
                      ("svg size 1000,600", "svg")):
        gnuplot(f"""
set terminal {term}
set output '{OUT / "mmu"}.{ext}'
set title "Page-table updates per entry against batch size\\n(guest instructions, QEMU -icount shift=0, Xen's included)" noenhanced
set logscale xy
set xlabel "entries updated together (n)"
set ylabel "guest instructions per entry"
set key right center
set grid
plot {cols}
""")
    return "mmu.png"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[],
                    help="environment names to run (default: all; "
                    "also silicon and xmodify)")
    ap.add_argument("--timeout", type=h.seconds_arg, default=600)
    args = ap.parse_args(argv)
    if not KERNEL.is_file():
        sys.exit(f"bench: {KERNEL} not found; run make")
    OUT.mkdir(parents=True, exist_ok=True)
    h.LOG_DIR.mkdir(parents=True, exist_ok=True)

    envs, records, boots = [], [], []
    for env in ENVIRONMENTS + SMP_ENVIRONMENTS:
        if args.only and env["name"] not in args.only:
            continue
        info, recs, bootinfo = run_kernel_env(env, args.timeout)
        envs.append(info)
        records += recs
        if env.get("smp", 1) == 1 and not info.get("skipped"):
            records += run_user_keep(env, args.timeout)
        if bootinfo:
            boots.append(bootinfo)
    if not args.only or "silicon" in args.only:
        info, recs = run_silicon()
        envs.append(info)
        records += recs
    xmodify, xmodify_error, xmodify_failures = [], None, []
    if not args.only or "xmodify" in args.only:
        xmodify, xmodify_error, xmodify_failures = run_xmodify()

    meta = {"date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(), "host_cpu": host_cpu(),
            "qemu": qemu_version()}
    (OUT / "results.json").write_text(json.dumps(
        {"meta": meta, "environments": envs, "boot": boots,
         "records": records, "xmodify": xmodify,
         "xmodify_error": xmodify_error,
         "xmodify_failures": xmodify_failures}, indent=1) + "\n")

    plots = {}
    if shutil.which("gnuplot"):
        for e in envs:
            if not e.get("skipped") and e.get("smp", 1) == 1:
                plots[e["name"]] = plot_env(e, records, e.get("icount"))
        if any(r["environment"] == "xen-icount" for r in records) and \
                any(r["environment"] == "native-icount" for r in records):
            plots["compare"] = plot_compare(records)
        if any(r["op"] == "scall" for r in records):
            plots["scall"] = plot_scall(envs, records)
        if any(r["op"] == "select" for r in records):
            plots["select"] = plot_select(envs, records)
        if any(r["op"] == "scall_update_int3_1" and e["name"] ==
               r["environment"] and e.get("icount")
               for r in records for e in envs):
            plots["scall_update"] = plot_scall_update(envs, records)
        if any(e.get("smp", 1) > 1 and e.get("icount") and
               not e.get("skipped") for e in envs):
            plots["smp"] = plot_smp(envs, records)
        if any(r["op"] == MMU_OP and r["environment"] == "xen-icount"
               for r in records):
            plots["mmu"] = plot_mmu(records)
        if any(r["mode"] == "user" and e["name"] == r["environment"] and
               e.get("icount") for r in records for e in envs):
            plots["user"] = plot_user(envs, records)
    else:
        print("bench: gnuplot not found: no plots (install gnuplot-nox)")
    write_report(meta, envs, records, boots, plots, xmodify, xmodify_error,
                 xmodify_failures)
    print(f"bench: wrote {h.display_path(OUT / 'results.json')}, "
          f"{h.display_path(OUT / 'report.md')} and {len(plots)} plots "
          f"(PNG and SVG) in {h.display_path(OUT)}")
    failed = [e["name"] for e in envs
              if e.get("skipped", "").startswith("no complete")]
    if xmodify_error:
        failed.append("xmodify")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
