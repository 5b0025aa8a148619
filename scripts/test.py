#!/usr/bin/env python3
"""`make test`: run the host unit tests and boot tinypv in every configuration.

Host unit tests are programs given with --host-test that print KTAP v1 and
exit 0 on success; each boot configuration (the BOOT_CONFIGS table below) is
one QEMU run judged by scripts/tinypv_harness.py.  Every leaf test gets one
line (ok / SKIP / ERROR / FAILED / CRASHED / TIMEOUT); the run ends with
"N passed, N failed, N skipped" (every failing state counts as failed),
then, when some were errors, crashes or timeouts, "of the N failed: ...".
The exit status is 0 only when nothing failed, else the code of the most
severe state (tinypv_harness.EXIT_CODES, doc/testing.md).

Why a table: the kernel is tested in several boot configurations (platforms,
command lines, exact instruction counting); adding one is adding a row.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shlex
import subprocess
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
#   smp       optional CPU count (default 1): QEMU -smp N, under TCG without
#             icount with -accel tcg,thread=multi, under xen also
#             dom0_max_vcpus=N
#   cpu       optional TCG CPU model instead of "max" (e.g. "max,-x2apic")
#   append    kernel command line
#   timeout   optional, seconds (default 60, or --timeout)
#   expect_log    optional list of regexes that must each match a log line
#                 (each is one result, named log:<regex>)
#   expect_panic  optional regex: this boot must panic with a matching
#                 "tinypv: PANIC:" line and QEMU status 37; the KTAP stream
#                 is then not judged (one result, named panic)
#   expect_error  optional regex: the harness must judge this boot an ERROR
#                 whose reason matches, with nothing else failing (one
#                 result, named error)
#   expect_crash  optional regex: the boot must end without a verdict
#                 (the harness judges it CRASHED) with a log line
#                 matching, e.g. Xen's report of a dom0 it killed (one
#                 result, named crash)
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
    # All of dom0_mem=64M reaches the allocator (Xen itself maps only 4
    # MiB); page-table updates in each xenmmu= strategy (the mmu suite
    # also runs every strategy within each boot).
    {"name": "xen-pv", "platform": "xen", "icount": False, "append": "",
     "expect_log": [r"^memory: 65536 KiB usable, allocator \d+ pages = 6[0-4] MiB ",
                    r"^xen mmu: batched; direct map to 64 MiB "]},
    {"name": "xen-pv-mmu-hypercall", "platform": "xen", "icount": False,
     "append": "xenmmu=hypercall",
     "expect_log": [r"^memory: 65536 KiB usable, allocator \d+ pages = 6[0-4] MiB ",
                    r"^xen mmu: hypercall; direct map to 64 MiB "]},
    {"name": "xen-pv-mmu-batched", "platform": "xen", "icount": False,
     "append": "xenmmu=batched ktest=mmu.*",
     "expect_log": [r"^memory: 65536 KiB usable, allocator \d+ pages = 6[0-4] MiB ",
                    r"^xen mmu: batched; direct map to 64 MiB "]},
    {"name": "xen-pv-mmu-writable", "platform": "xen", "icount": False,
     "append": "xenmmu=writable",
     "expect_log": [r"^memory: 65536 KiB usable, allocator \d+ pages = 6[0-4] MiB ",
                    r"^xen mmu: writable; direct map to 64 MiB "]},
    {"name": "xen-pv-mmu-bad-option", "platform": "xen", "icount": False,
     "append": "ktest=cmdline.* xenmmu=fast",
     "expect_log": [r"^warning: xenmmu=fast unknown \(hypercall\|batched\|writable\); ignored$",
                    r"^xen mmu: batched; "]},
    {"name": "xen-pv-pvops-off", "platform": "xen", "icount": False,
     "append": "pvops=off"},
    {"name": "xen-pv-noinline", "platform": "xen", "icount": False,
     "append": "pvops=noinline"},
    # The user task with the register saves of the assembly sites kept
    # (pvsaves=keep); the rows above consume them where the inline bytes
    # allow (natively) and keep them where not (Xen's irq_enable).
    {"name": "native-tcg-pvsaves-keep", "platform": "native", "icount": False,
     "append": "pvsaves=keep ktest=user.*",
     "expect_log": [r"^pvop saves: site [0-9a-f]+ \(irq_enable, saves 1 register\(s\), mask 0x1\): kept \(pvsaves=keep\)$"]},
    {"name": "xen-pv-pvsaves-keep", "platform": "xen", "icount": False,
     "append": "pvsaves=keep ktest=user.*",
     "expect_log": [r"^pvop saves: site [0-9a-f]+ \(irq_enable, saves 1 register\(s\), mask 0x1\): kept \(pvsaves=keep\)$"]},
    {"name": "native-tcg-pvsaves-consume", "platform": "native", "icount": False,
     "append": "ktest=user.*",
     "expect_log": [r"^pvop saves: site [0-9a-f]+ \(irq_enable, saves 1 register\(s\), mask 0x1\): consumed, the inline bytes span the site$",
                    r"^user: task exited with status 12 after 4 system calls$"]},
    {"name": "xen-pv-pvsaves-consume", "platform": "xen", "icount": False,
     "append": "ktest=user.*",
     "expect_log": [r"^pvop saves: site [0-9a-f]+ \(irq_enable, saves 1 register\(s\), mask 0x1\): kept \(the inline bytes clobber a saved register\)$",
                    r"^user: task exited with status 12 after 4 system calls$"]},
    # Exact instruction counts (TCG -icount shift=0): the icount suite's
    # assertions, and the whole suite once more under a virtual clock.
    {"name": "native-tcg-icount", "platform": "native", "icount": True,
     "append": "icount"},
    {"name": "xen-pv-icount", "platform": "xen", "icount": True,
     "append": "icount"},
    # Bad input: unknown options warn; unsafe platform overrides are refused.
    {"name": "native-tcg-bad-options", "platform": "native", "icount": False,
     "append": "ktest=cmdline.* frobnicate=1 platform=xen-pv inject=bogus",
     "expect_log": [r"^warning: unknown option 'frobnicate' ignored$",
                    r"^warning: platform=xen-pv refused: ",
                    r"^warning: inject=bogus unknown \(corrupt-site\|corrupt-patched-site\|corrupt-scall-site\|ap-hang\|ap-fault\|ap-stack-overflow\|stop-during-start\|kvmclock-percpu\|stray-int3\); ignored$",
                    r"^platform: native$"]},
    # A ktest= glob that matches nothing is a run that proved nothing.
    {"name": "native-tcg-ktest-nomatch", "platform": "native", "icount": False,
     "append": "ktest=nomatch*",
     "expect_log": [r"^warning: ktest=nomatch\* matches no test$"],
     "expect_error": r"^no test ran \(warning: ktest=nomatch\* matches no test"},
    # notests asks for no tests: an empty plan that says why is a pass.
    {"name": "native-tcg-notests", "platform": "native", "icount": False,
     "append": "notests", "expect_log": [r"^1\.\.0 # SKIP notests$"]},
    # A console line longer than printk's buffer is cut with a marker and
    # still ends, so the next line (the boot report) stays whole.
    {"name": "native-tcg-long-line", "platform": "native", "icount": False,
     "append": "k" * 600 + "=1 ktest=cmdline.*",
     "expect_log": [r"^warning: unknown option 'k+ \[printk: \d+ more bytes cut\]$",
                    r"^boot path: pvh$"]},
    # Xen hands dom0 at most 1023 characters: the kernel says when it got
    # that many (the harness refuses longer ones); the tests still run.
    {"name": "xen-pv-cmdline-limit", "platform": "xen", "icount": False,
     "append": "ktest=cmdline.*" + " " * 1005 + "pad",
     "expect_log": [r"^warning: the command line is 1023 characters, Xen's limit "]},
    {"name": "xen-pv-platform-native", "platform": "xen", "icount": False,
     "append": "ktest=cmdline.* platform=native",
     "expect_log": [r"^warning: platform=native refused: ",
                    r"^platform: xen-pv$"]},
    # Static calls: inline (the default, every row above) and outline;
    # a stray write over a static call site is refused at the next update.
    {"name": "native-tcg-staticcall-outline", "platform": "native",
     "icount": False, "append": "staticcall=outline"},
    {"name": "native-kvm-staticcall-outline", "platform": "kvm",
     "icount": False, "append": "staticcall=outline"},
    {"name": "xen-pv-staticcall-outline", "platform": "xen", "icount": False,
     "append": "staticcall=outline"},
    {"name": "native-tcg-corrupt-scall-site", "platform": "native",
     "icount": False, "append": "inject=corrupt-scall-site",
     "expect_log": [r"^tinypv: patch: site #\d+ at [0-9a-f]+ \(kind static-call, key tick, call, 5 bytes\): holds bytes the engine did not write$",
                    r"^  found: cc "],
     "expect_panic": r"patch: site [0-9a-f]+: holds bytes the engine did not write"},
    {"name": "xen-pv-corrupt-scall-site", "platform": "xen", "icount": False,
     "append": "inject=corrupt-scall-site",
     "expect_panic": r"patch: site [0-9a-f]+: holds bytes the engine did not write"},
    # A corrupt site table must stop the boot, naming the site.
    {"name": "native-tcg-corrupt-site", "platform": "native", "icount": False,
     "append": "inject=corrupt-site",
     "expect_panic": r"patch: site [0-9a-f]+: does not hold its original bytes"},
    {"name": "xen-pv-corrupt-site", "platform": "xen", "icount": False,
     "append": "inject=corrupt-site",
     "expect_panic": r"patch: site [0-9a-f]+: does not hold its original bytes"},
    # A stray write over a patched site: the next re-patch must refuse it.
    {"name": "native-tcg-corrupt-patched-site", "platform": "native",
     "icount": False, "append": "inject=corrupt-patched-site",
     "expect_panic": r"patch: site [0-9a-f]+: holds bytes the engine did not write"},
    {"name": "xen-pv-corrupt-patched-site", "platform": "xen", "icount": False,
     "append": "inject=corrupt-patched-site",
     "expect_panic": r"patch: site [0-9a-f]+: holds bytes the engine did not write"},
    # ... also where the site is left as assembled (pvops=off): the
    # engine checks a site it is asked to keep, not only one it rewrites.
    {"name": "native-tcg-off-corrupt-patched-site", "platform": "native",
     "icount": False, "append": "pvops=off inject=corrupt-patched-site",
     "expect_panic": r"patch: site [0-9a-f]+: no longer holds its original bytes"},
    # SMP: every CPU comes up and runs the per-CPU checks (the smp suite),
    # and the whole suite runs with the others idling (text patching stops
    # them). thread=multi under TCG: the CPUs really run in parallel.
    {"name": "native-tcg-smp2", "platform": "native", "icount": False, "smp": 2,
     "append": "",
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$",
                    r"^cpu 0: up \(apic id 0, the boot CPU\)$", r"^cpu 1: up \(apic id 1\)$"]},
    {"name": "native-tcg-smp4", "platform": "native", "icount": False, "smp": 4,
     "append": "",
     "expect_log": [r"^cpus: 4 online \(of 4 present\)$", r"^cpu 3: up \(apic id 3\)$"]},
    {"name": "native-kvm-smp2", "platform": "kvm", "icount": False, "smp": 2,
     "append": "",
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$", r"^cpu 1: up \(apic id 1\)$",
                    r"^kvm pv tlb flush: (on|offered, but|not offered)",
                    r"^kvmclock: (the boot CPU's, shared|per CPU)"]},
    # KVM -cpu host has x2APIC: the IPI sender is selected to its x2APIC-only
    # form (alt/). Without the feature (clearcpuid=) the LAPIC is in xAPIC
    # mode and the original sender runs; with noalternatives the original
    # serves x2APIC mode.
    {"name": "native-kvm-smp2-clearcpuid", "platform": "kvm", "icount": False, "smp": 2,
     "append": "clearcpuid=x2apic,serialize ktest=smp.*ipi*",
     "expect_log": [r"^apic: xapic$", r"^cpus: 2 online \(of 2 present\)$",
                    r"^alternative feature x2apic +sites +\d+: original \d+, replacement 0$"]},
    {"name": "native-kvm-smp2-noalternatives", "platform": "kvm", "icount": False, "smp": 2,
     "append": "noalternatives ktest=smp.*ipi*",
     "expect_log": [r"^apic: x2apic$", r"^cpus: 2 online \(of 2 present\)$"]},
    {"name": "xen-pv-smp2", "platform": "xen", "icount": False, "smp": 2,
     "append": "",
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$",
                    r"^cpu 0: up \(vcpu 0, the boot CPU\)$", r"^cpu 1: up \(vcpu 1\)$"]},
    # CPU-feature alternatives (alt/). qemu64 really lacks rdtscp,
    # clflushopt, erms, serialize and x2apic: those sites keep their
    # original form (only the benchmark's lm sites, a feature every x86-64
    # CPU has, are patched).
    {"name": "native-tcg-qemu64", "platform": "native", "icount": False,
     "cpu": "qemu64", "append": "",
     "expect_log": [r"^cpu features: (?!.*\b(rdtscp|clflushopt|erms|serialize|x2apic)\b)",
                    r"^alternative feature rdtscp +sites +\d+: original \d+, replacement 0$",
                    r"^alternative feature clflushopt +sites +\d+: original \d+, replacement 0$",
                    r"^alternative feature erms +sites +\d+: original \d+, replacement 0$",
                    r"^alternative feature serialize +sites +\d+: original \d+, replacement 0$",
                    r"^alternative feature x2apic +sites +\d+: original \d+, replacement 0$"]},
    {"name": "native-tcg-noalternatives", "platform": "native", "icount": False,
     "append": "noalternatives",
     "expect_log": [r"^cpu features: .*\brdtscp\b",
                    r"^alternatives: \d+ sites, 0 patched, \d+ as assembled "
                    r"\(noalternatives\), 0 writes$"]},
    {"name": "native-tcg-clearcpuid", "platform": "native", "icount": False,
     "append": "clearcpuid=rdtscp,clflushopt,erms,nosuchfeature",
     "expect_log": [r"^warning: clearcpuid=nosuchfeature: no such feature",
                    r"^cpu features cleared \(clearcpuid=\): erms clflushopt rdtscp$",
                    r"^alternative feature rdtscp +sites +\d+: original \d+, replacement 0$"]},
    {"name": "xen-noalternatives", "platform": "xen", "icount": False,
     "append": "noalternatives ktest=alt.*",
     "expect_log": [r"^cpu features: .*\bxen_pv\b",
                    r"^alternatives: \d+ sites, 0 patched, .*\(noalternatives\)"]},
    # Live patching under load: other CPUs call the live suite's sites and
    # static calls in a loop while CPU 0 re-patches them (test_live.c,
    # test_scall_live.c): 10,000 one-site updates per path (KVM 1,000).
    # At -smp 4 the host's two cores hold four busy vCPU threads, and each
    # sync round waits for the host scheduler to run all of them (~3 ms):
    # that row runs 300 per path here; `make stress` runs it at 10,000.
    {"name": "native-tcg-smp2-live", "platform": "native", "icount": False, "smp": 2,
     "append": "livestress ktest=*live.*", "timeout": 300,
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$"]},
    {"name": "native-tcg-smp4-live", "platform": "native", "icount": False, "smp": 4,
     "append": "livestress liveupdates=300 ktest=*live.*", "timeout": 300,
     "expect_log": [r"^cpus: 4 online \(of 4 present\)$"]},
    {"name": "native-kvm-smp2-live", "platform": "kvm", "icount": False, "smp": 2,
     "append": "livestress ktest=*live.*", "timeout": 300,
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$",
                    r"# scall_live: tail site, targets only: 1001 updates"]},
    {"name": "xen-pv-smp2-live", "platform": "xen", "icount": False, "smp": 2,
     "append": "livestress ktest=*live.*", "timeout": 300,
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$"]},
    # A real int3 (no batch owns it) is reported as a breakpoint.
    {"name": "native-tcg-stray-int3", "platform": "native", "icount": False,
     "append": "inject=stray-int3",
     "expect_log": [r"^patch: no live batch owns the int3 at [0-9a-f]+ \(it holds cc now"],
     "expect_panic": r"unhandled #BP breakpoint"},
    {"name": "xen-pv-stray-int3", "platform": "xen", "icount": False,
     "append": "inject=stray-int3",
     "expect_panic": r"unhandled #BP breakpoint"},
    # No x2APIC: the IPIs and remote flushes go through the xAPIC's MMIO ICR.
    {"name": "native-tcg-smp2-xapic", "platform": "native", "icount": False, "smp": 2,
     "cpu": "max,-x2apic", "append": "ktest=smp.*",
     "expect_log": [r"^apic: xapic$", r"^cpus: 2 online \(of 2 present\)$"]},
    # icount runs the CPUs in turn on one thread: deterministic SMP.
    {"name": "native-tcg-icount-smp2", "platform": "native", "icount": True, "smp": 2,
     "append": "icount",
     "expect_log": [r"^cpus: 2 online \(of 2 present\)$"]},
    # nosmp and maxcpus= keep CPUs off; the smp suite then skips.
    {"name": "native-tcg-smp2-nosmp", "platform": "native", "icount": False, "smp": 2,
     "append": "nosmp ktest=smp.*",
     "expect_log": [r"^cpus: 1 online \(of 2 present\)$"]},
    {"name": "native-tcg-smp4-maxcpus1", "platform": "native", "icount": False, "smp": 4,
     "append": "maxcpus=1 ktest=smp.*",
     "expect_log": [r"^cpus: 1 online \(of 4 present\)$"]},
    {"name": "native-tcg-smp4-maxcpus3", "platform": "native", "icount": False, "smp": 4,
     "append": "maxcpus=3 ktest=smp.*",
     "expect_log": [r"^cpus: 3 online \(of 4 present\)$"]},
    {"name": "xen-pv-smp2-maxcpus1", "platform": "xen", "icount": False, "smp": 2,
     "append": "maxcpus=1 ktest=smp.*",
     "expect_log": [r"^cpus: 1 online \(of 2 present\)$"]},
    # maxcpus=0 is nosmp, and says so.
    {"name": "native-tcg-smp2-maxcpus0", "platform": "native", "icount": False, "smp": 2,
     "append": "maxcpus=0 ktest=smp.every_cpu_reports_in",
     "expect_log": [r"^warning: maxcpus=0: the boot CPU only, as nosmp$",
                    r"^cpus: 1 online \(of 2 present\)$"]},
    # A text write while a CPU is half-way up cannot park it: a panic naming it.
    {"name": "native-tcg-smp2-stop-during-start", "platform": "native", "icount": False,
     "smp": 2, "append": "inject=stop-during-start",
     "expect_panic": r"smp: cpu 1 \(apic id 1\) is starting and cannot be stopped for a text write"},
    # An AP stack overflow runs into its guard page: a #DF that names the CPU.
    {"name": "native-tcg-smp2-stack-overflow", "platform": "native", "icount": False, "smp": 2,
     "append": "inject=ap-stack-overflow",
     "expect_log": [r"^tinypv: EXCEPTION #DF .* on cpu 1$",
                    r"^tinypv: cpu 1: kernel stack overflow: 0x[0-9a-f]+ is the guard page below its stack \(percpu slot 1\)$"],
     "expect_panic": r"unhandled #DF"},
    # Under Xen PV the fault cannot be delivered on the overflowed stack:
    # Xen kills dom0 and its report names the vCPU and the unmapped page.
    {"name": "xen-pv-smp2-stack-overflow", "platform": "xen", "icount": False, "smp": 2,
     "append": "inject=ap-stack-overflow",
     "expect_log": [r"^\(XEN\) Domain 0 \(vcpu#1\) crashed on cpu#\d+:$",
                    r"^\(XEN\)  L1\[0x[0-9a-f]+\] = 0000000000000000 "],
     "expect_crash": r"^\(XEN\) domain_crash_sync called from entry\.S"},
    {"name": "native-kvm-smp2-stack-overflow", "platform": "kvm", "icount": False, "smp": 2,
     "append": "inject=ap-stack-overflow",
     "expect_log": [r"^tinypv: cpu 1: kernel stack overflow: 0x[0-9a-f]+ is the guard page below its stack \(percpu slot 1\)$"],
     "expect_panic": r"unhandled #DF"},
    # KVM: each vCPU its own kvmclock (forced; this host sets the stable bit).
    {"name": "native-kvm-smp2-kvmclock-percpu", "platform": "kvm", "icount": False, "smp": 2,
     "append": "inject=kvmclock-percpu ktest=smp.*clock*",
     "expect_log": [r"^kvmclock: per CPU \(forced by inject=kvmclock-percpu\)$",
                    r"^cpus: 2 online \(of 2 present\)$"]},
    # An AP that never comes up is named, stopped, and the others carry on.
    {"name": "native-tcg-smp3-ap-hang", "platform": "native", "icount": False, "smp": 3,
     "append": "inject=ap-hang ktest=smp.*",
     "expect_log": [r"^warning: cpu 1 did not come up \(apic id 1\)$",
                    r"^cpu 1: up \(apic id 2\)$",
                    r"^cpus: 2 online \(of 3 present\)$"]},
    {"name": "xen-pv-smp3-ap-hang", "platform": "xen", "icount": False, "smp": 3,
     "append": "inject=ap-hang ktest=smp.*",
     "expect_log": [r"^warning: cpu 1 did not come up \(vcpu 1\)$",
                    r"^cpu 1: up \(vcpu 2\)$",
                    r"^cpus: 2 online \(of 3 present\)$"]},
    # A fault on another CPU: the report names it; the boot is a crash.
    {"name": "native-tcg-smp2-ap-fault", "platform": "native", "icount": False, "smp": 2,
     "append": "inject=ap-fault",
     "expect_log": [r"^tinypv: EXCEPTION #UD invalid opcode \(vector 6\) error 0 at [0-9a-f]+ on cpu 1$",
                    r"^cpu 1 RSP: "],
     "expect_panic": r"unhandled #UD invalid opcode"},
    {"name": "xen-pv-smp2-ap-fault", "platform": "xen", "icount": False, "smp": 2,
     "append": "inject=ap-fault",
     "expect_log": [r"on cpu 1$", r"^cpu 1 RSP: "],
     "expect_panic": r"unhandled #UD invalid opcode"},
    # More CPUs than the kernel supports (NR_CPUS_MAX 16): the maximum, and a warning.
    {"name": "native-tcg-smp18", "platform": "native", "icount": False, "smp": 18,
     "append": "ktest=smp.*",
     "expect_log": [r"^warning: 18 CPUs present, this kernel supports 16; starting 16$",
                    r"^cpus: 16 online \(of 18 present\)$"]},
]

CONFIG_KEYS = {"name", "platform", "icount", "append", "smp", "cpu", "timeout",
               "expect_log", "expect_panic", "expect_error", "expect_crash"}
INTERPRETERS = {"python", "python3", "sh", "bash", "env", "valgrind"}
RESERVED_PREFIXES = ("host-", "run-", "bench-")     # other logs' names


@dataclass
class Job:
    """One thing to run: a host test program or a boot configuration."""
    name: str                   # "host/test_printk" or "native-tcg"
    describe: str               # what --list shows
    run: Callable[[], "Report"] | None = None   # None when not run
    skip_reason: str = ""
    skip_status: str = h.SKIP   # SKIP, or ERROR when the environment is broken


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
        if row["name"].startswith(RESERVED_PREFIXES) or not re.fullmatch(r"[\w+-]+", row["name"]):
            sys.exit(f"test: {where}: name must be letters, digits, '_', '+', '-' and not "
                     f"start with {', '.join(RESERVED_PREFIXES)} (their logs live there)")
        if row.get("platform") not in h.PLATFORMS:
            sys.exit(f"test: {where}: platform must be one of {', '.join(h.PLATFORMS)}")
        if row.get("icount") and row["platform"] == "kvm":
            sys.exit(f"test: {where}: icount needs TCG, not kvm")
        if sum(bool(row.get(k)) for k in ("expect_panic", "expect_error", "expect_crash")) > 1:
            sys.exit(f"test: {where}: at most one of expect_panic, expect_error, expect_crash")
        problem = (h.smp_problem(row.get("smp", 1))
                   or h.append_problem(row["platform"], row.get("append", "")))
        if problem:
            sys.exit(f"test: {where}: {problem}")
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


def host_test_names(commands) -> list[str]:
    """host_test_name of each command, made unique: host/x, host/x-2, ...

    Two commands running programs of the same name would otherwise share
    result names and a log.
    """
    names, used = [], set()
    for command in commands:
        base = name = host_test_name(command)
        number = 1
        while name in used:
            number += 1
            name = f"{base}-{number}"
        used.add(name)
        names.append(name)
    return names


def describe_config(row) -> str:
    icount = ", icount" if row.get("icount") else ""
    if row.get("smp", 1) > 1:
        icount += f", smp {row['smp']}"
    if row.get("cpu"):
        icount += f", cpu {row['cpu']}"
    append = row.get("append", "")
    if len(append) > 60:
        append = append[:40] + f"...({len(append)} chars)"
    return f"{row['platform']}{icount}, append={append!r}"


def cannot_log(name: str, err: OSError, log_dir: Path) -> Report:
    failure = h.TestResult("log", h.ERROR, f"cannot write a log in "
                                           f"{h.display_path(log_dir)}: {err.strerror or err}")
    return Report(name, f"== {name}: no log", [failure])


def run_host_test(name: str, command: str, timeout: float, log_dir: Path) -> Report:
    try:
        log_path = h.fresh_log(log_dir / f"{name.replace('/', '-')}.log")
    except OSError as err:
        return cannot_log(name, err, log_dir)
    try:
        run = h.run_process(shlex.split(command), log_path, timeout)
    except (OSError, subprocess.SubprocessError) as err:
        failure = h.TestResult("run", h.ERROR,
                               f"cannot run {command!r}: {getattr(err, 'strerror', None) or err}")
        return Report(name, f"== {name}: cannot run", [failure], log_path)
    outcome = h.classify_host(run.lines, run.exit_status, run.timed_out, run.stopped_because)
    exit_text = run.stopped_because or h.describe_host_exit(run.exit_status)
    header = (f"== {name} ({command}) {run.wall_time:.1f} s, {exit_text}, "
              f"log {h.display_path(log_path)}")
    return Report(name, header, outcome.results, log_path)


def run_boot(row, kernel: Path, timeout: float, log_dir: Path) -> Report:
    name = row["name"]
    if not kernel.is_file():
        failure = h.TestResult("boot", h.ERROR, f"{h.display_path(kernel)} not found; run make")
        return Report(name, f"== {name}: no kernel", [failure])
    try:
        log_path = h.fresh_log(log_dir / f"{name}.log")
    except OSError as err:
        return cannot_log(name, err, log_dir)
    try:
        boot = h.boot_tinypv(row["platform"], kernel, row.get("append", ""),
                             row.get("icount", False), timeout, log_path,
                             smp=row.get("smp", 1), cpu=row.get("cpu"))
    except (OSError, subprocess.SubprocessError) as err:
        failure = h.TestResult("boot", h.ERROR, f"cannot run QEMU or write its log: "
                                                f"{getattr(err, 'strerror', None) or err}")
        return Report(name, f"== {name}: cannot run", [failure], log_path)
    run = boot.run
    exit_text = run.stopped_because or h.describe_exit(run.exit_status)
    header = (f"== {name} ({describe_config(row)}) {run.wall_time:.1f} s, {exit_text}, "
              f"log {h.display_path(log_path)}")
    results = boot.outcome.results
    if row.get("expect_panic"):
        results = [expected_panic(row["expect_panic"], run)]
    elif row.get("expect_error"):
        results = [expected_error(row["expect_error"], results)]
    elif row.get("expect_crash"):
        results = [expected_crash(row["expect_crash"], results, run)]
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


def expected_error(regex: str, results) -> "h.TestResult":
    """The harness had to judge the boot an ERROR matching regex, and nothing else failing."""
    errors = [r for r in results if r.status == h.ERROR and re.search(regex, r.reason)]
    others = [r for r in results if r.status in h.FAILING and r not in errors]
    if errors and not others:
        return h.TestResult("error", h.OK)
    seen = "; ".join(f"{r.status} {r.name} ({r.reason})" for r in results
                     if r.status in h.FAILING) or "nothing failed"
    return h.TestResult("error", h.FAILED, f"wanted one ERROR /{regex}/, got: {seen}")


def expected_crash(regex: str, results, run) -> "h.TestResult":
    """The boot had to be judged CRASHED, with a log line matching regex."""
    if not any(r.status == h.CRASHED for r in results):
        seen = "; ".join(f"{r.status} {r.name}" for r in results) or "no results"
        return h.TestResult("crash", h.FAILED, f"no crash; got: {seen}",
                            tail=h.log_tail(run.lines))
    if not any(re.search(regex, ln) for ln in run.lines):
        return h.TestResult("crash", h.FAILED, f"crashed, but no line matches /{regex}/",
                            tail=h.log_tail(run.lines))
    return h.TestResult("crash", h.OK)


def expected_line(regex: str, lines) -> "h.TestResult":
    name = f"log:{regex}"
    if any(re.search(regex, ln) for ln in lines):
        return h.TestResult(name, h.OK)
    return h.TestResult(name, h.FAILED, "no log line matches")


def matches(name: str, patterns) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


# `make stress` (scripts/test.py --stress): what make test shortens.
STRESS_CONFIGS = [
    {"name": "native-tcg-smp4-stress", "platform": "native", "icount": False, "smp": 4,
     "append": "livestress ktest=*live.*", "timeout": 3600,
     "expect_log": [r"^cpus: 4 online \(of 4 present\)$",
                    r"# scall_live: call site: 10001 updates"]},
]


def make_jobs(args, check_platforms: bool = True) -> list[Job]:
    """Selected host tests first, then selected boot rows, each runnable or skipped."""
    jobs = []
    for name, command in zip(host_test_names(args.host_test), args.host_test):
        if matches(name, args.only):
            jobs.append(Job(name, command, lambda n=name, c=command:
                            run_host_test(n, c, args.timeout or h.DEFAULT_TIMEOUT,
                                          args.log_dir)))
    problems = {}
    for row in STRESS_CONFIGS if args.stress else BOOT_CONFIGS:
        if not matches(row["name"], args.only):
            continue
        platform = row["platform"]
        if platform not in problems:
            problems[platform] = h.platform_check(platform) if check_platforms else None
        status, reason = problems[platform] or (h.SKIP, "")
        timeout = args.timeout or row.get("timeout", h.DEFAULT_TIMEOUT)
        run = None if reason else \
            (lambda r=row, t=timeout: run_boot(r, args.kernel, t, args.log_dir))
        jobs.append(Job(row["name"], describe_config(row), run, reason, status))
    return jobs


def print_list(jobs) -> None:
    width = max(len(job.name) for job in jobs)
    for job in jobs:
        skip = f"  ({job.skip_status}: {job.skip_reason})" if job.skip_reason else ""
        print(f"{job.name:<{width}}  {job.describe}{skip}")


def print_test_list(args) -> int:
    """--list-tests: every in-kernel test, boot configuration and host test."""
    try:
        tests = h.kernel_tests(args.kernel)
    except (OSError, ValueError) as err:
        print(f"test: cannot read the in-kernel tests from {h.display_path(args.kernel)}: "
              f"{getattr(err, 'strerror', None) or err} (build it with make)", file=sys.stderr)
        return h.EXIT_CODES[h.ERROR]
    print(f"In-kernel tests in {h.display_path(args.kernel)} ({len(tests)}; "
          f"choose with make run APPEND='ktest=GLOB', e.g. ktest='irq.*'):")
    for test in tests:
        print(f"  {test}")
    jobs = make_jobs(args, check_platforms=False)
    boots = [job for job in jobs if not job.name.startswith("host/")]
    hosts = [job for job in jobs if job.name.startswith("host/")]
    for title, group in (("Boot configurations", boots), ("Host tests", hosts)):
        if not group:
            continue
        print(f"{title} ({len(group)}; choose with scripts/test.py --only GLOB):")
        width = max(len(job.name) for job in group)
        for job in group:
            print(f"  {job.name:<{width}}  {job.describe}")
    return 0


def skipped_report(job: Job) -> Report:
    return Report(job.name, "", [h.TestResult("", job.skip_status, job.skip_reason)])


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


def print_report(report: Report, results: list, failed_names: list) -> None:
    if report.header:
        print(report.header)
    for result in report.results:
        full_name = f"{report.name}/{result.name}" if result.name else report.name
        for line in h.format_result(full_name, result, report.log_path):
            print(line)
        results.append(result)
        if result.status in h.FAILING:
            failed_names.append(full_name)
    sys.stdout.flush()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run tinypv's host unit tests and boot it in every configuration.")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="run only configurations / host tests whose name matches "
                             "(e.g. 'native-*', 'host/*'); repeatable")
    parser.add_argument("--timeout", type=h.seconds_arg, default=None, metavar="S",
                        help=f"seconds per boot or host test (default: the row's, "
                             f"else {h.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--stress", action="store_true",
                        help="run the long stress rows (make stress) instead "
                             "of make test's rows")
    parser.add_argument("--list", action="store_true",
                        help="list configurations and host tests (and why any is skipped), "
                             "run nothing")
    parser.add_argument("--list-tests", action="store_true",
                        help="list every in-kernel test (suite.name, read from the kernel "
                             "ELF), boot configuration and host test; run nothing")
    parser.add_argument("--host-test", action="extend", nargs="+", default=[], metavar="CMD",
                        help="host test command printing KTAP (quote commands with "
                             "arguments); repeatable")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="run up to N jobs at once (default 1; the machine has 2 cores)")
    parser.add_argument("--kernel", type=Path, default=h.DEFAULT_KERNEL,
                        help=f"kernel ELF (default {h.display_path(h.DEFAULT_KERNEL)})")
    parser.add_argument("--log-dir", type=Path, default=h.LOG_DIR,
                        help=f"where logs go (default {h.display_path(h.LOG_DIR)})")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("-j must be at least 1")
    return args


def finish(results, failed_names, start: float, interrupted) -> int:
    """Print the closing lines every run ends with; the exit status."""
    if interrupted is not None:
        print("test: interrupted; the counts below cover finished jobs only")
    print(f"== total {time.monotonic() - start:.1f} s")
    if failed_names:
        print("failed: " + " ".join(failed_names))
    for line in h.summary_lines(results):
        print(line)
    sys.stdout.flush()
    return interrupted if interrupted is not None else h.exit_code(results)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_configs(BOOT_CONFIGS + STRESS_CONFIGS)
    h.exit_cleanly_on_termination()
    if args.list_tests:
        return print_test_list(args)
    results, failed_names = [], []
    start = time.monotonic()
    interrupted = None
    try:
        if not args.list:
            problem = h.log_dir_problem(args.log_dir)
            if problem:
                print_report(Report("logs", "", [h.TestResult("", h.ERROR, problem)]),
                             results, failed_names)
                return finish(results, failed_names, start, None)
        jobs = make_jobs(args)
        if args.list:
            if jobs:
                print_list(jobs)
            return 0
        if not jobs:
            print(f"test: nothing matches --only {' '.join(args.only)}", file=sys.stderr)
            print(h.summary_line(0, 0, 0))
            return h.EXIT_USAGE
        for report in run_jobs(jobs, args.jobs):
            print_report(report, results, failed_names)
    except KeyboardInterrupt:
        interrupted = 130
    except SystemExit as stop:
        interrupted = stop.code
    return finish(results, failed_names, start, interrupted)


if __name__ == "__main__":
    sys.exit(main())
