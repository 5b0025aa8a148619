#!/usr/bin/env python3
"""Cache-line-safe static-call sites: what crosses, and what aligning costs.

What: reads two builds of the same kernel with binutils (through
scripts/scall_sites.py): the normal one, and one built with SCALL_ALIGN=6,
where every static call is assembled under `.bundle_align_mode 6`
(scripts/scall_bundle.py). For each it counts the static-call sites whose
5-byte call crosses a 64-byte line (Andy Lutomirski's rule in seed 003:
such a site is not inlined) and those whose rel32 crosses a naturally
aligned 8-byte word (the single-store condition), and between the two it
measures what the alignment costs: the bytes added to functions, and the
NOP instructions in front of sites (each executed on every call). It then
boots the aligned kernel (QEMU TCG, `ktest=scall.*`) and reads its boot
report: every site must be inlined. Checks:

  - the normal build's sites are counted and the figures printed;
  - in the aligned build no site crosses a line;
  - booted, the aligned build inlines 100% of its sites, and passes the
    static-call suite;
  - both builds have the same sites (alignment adds no call, drops none).

Why: seed 000 (Josh Poimboeuf) claims `.bundle_align_mode 6` makes 100%
of sites inlinable instead of ~95%, and Nadav Amit found it "works well"
without saying what it costs. This measures both on our kernel.

Output: KTAP v1; the figures are diagnostics of the first case and are
written to build/scall_lines.txt. Run: python3 tests/host/test_scall_lines.py
NORMAL.elf ALIGNED.elf
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import check_sites as cs  # noqa: E402
import scall_sites  # noqa: E402
import tinypv_harness as h  # noqa: E402
import ktap  # noqa: E402  (tests/host, next to this file)

REPORT = re.compile(r"^static calls: inline, (\d+) keys, (\d+) call sites "
                    r"\((\d+) tail, \d+ cs\), (\d+) inline, (\d+) on the trampoline "
                    r"\((\d+) cross a 64-byte line, (\d+) of keys pinned "
                    r"outline\)$")


# Keys of the test suite and the benchmark: their sites are many and alike
# (256 generated functions), so the kernel's own are also counted apart.
NOT_KERNEL = ("ktest_", "bench_")


def measure(elf):
    syms = cs.symtab(str(elf))
    text = cs.Text(str(elf), syms)
    _, _, sites, _ = scall_sites.find_in(text, syms)
    s = scall_sites.stats(sites)
    s["kernel"] = scall_sites.stats(
        [x for x in sites if not x[2].startswith(NOT_KERNEL)])
    addrs = sorted(text.insns)
    index = {a: i for i, a in enumerate(addrs)}
    nops = 0
    for addr, _, _ in sites:
        i = index[addr] - 1
        while i >= 0 and cs.is_nop(text.insns[addrs[i]][1]):
            nops += 1
            i -= 1
    s["nops_before"] = nops
    # Every direct call the compiler placed, static call or not: a larger
    # sample of where calls land than the kernel's few static calls.
    calls = [a for a in addrs if text.insns[a][1][:1] == b"\xe8" and
             len(text.insns[a][1]) == 5]
    s["all_calls"] = len(calls)
    s["all_cross_line"] = sum(scall_sites.crosses(a, 5, 64) for a in calls)
    s["all_rel32_cross_word"] = sum(scall_sites.crosses(a + 1, 4, 8)
                                    for a in calls)
    s["func_bytes"] = sum(size for _, size, t, _ in syms if t == "FUNC")
    s["names"] = sorted((name, kind) for _, kind, name in sites)
    return s


def pct(a, b):
    return f"{100 * a / b:.1f}%" if b else "-"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_scall_lines.py NORMAL.elf ALIGNED.elf")
    normal, aligned = Path(sys.argv[1]), Path(sys.argv[2])
    cases = []
    try:
        n, a = measure(normal), measure(aligned)
    except (cs.CheckError, OSError) as e:
        print("KTAP version 1\n1..1\nnot ok 1 read_builds")
        print(f"# read_builds: {e}")
        return 1
    figures = [
        f"normal build: {n['sites']} sites ({n['tail']} tail), "
        f"{n['cross_line']} cross a 64-byte line ({pct(n['cross_line'], n['sites'])}), "
        f"{n['rel32_cross_word']} have their rel32 across an 8-byte word "
        f"({pct(n['rel32_cross_word'], n['sites'])})",
        f"  of which the kernel's own (keys other than ktest_*, bench_*): "
        f"{n['kernel']['sites']} sites, {n['kernel']['cross_line']} cross "
        f"a line, {n['kernel']['rel32_cross_word']} rel32 across a word",
        f"every call rel32 in the normal build's .text: {n['all_calls']}, "
        f"{n['all_cross_line']} cross a line "
        f"({pct(n['all_cross_line'], n['all_calls'])}), "
        f"{n['all_rel32_cross_word']} rel32 across a word "
        f"({pct(n['all_rel32_cross_word'], n['all_calls'])})",
        f"aligned build (.bundle_align_mode 6): {a['cross_line']} cross a "
        f"line, {a['rel32_cross_word']} rel32 across a word",
        f"alignment cost: {a['func_bytes'] - n['func_bytes']} bytes of "
        f"function text ({n['func_bytes']} -> {a['func_bytes']}); NOP "
        f"instructions right before sites {n['nops_before']} -> "
        f"{a['nops_before']} (+{a['nops_before'] - n['nops_before']}, "
        f"each run on every call through its site)",
    ]
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "scall_lines.txt").write_text("\n".join(figures) + "\n")
    cases.append(("normal_build_counted", n["sites"] > 0, None, figures))
    cases.append(("aligned_build_no_site_crosses_a_line",
                  a["cross_line"] == 0 and a["sites"] > 0, None,
                  [f"{a['cross_line']} of {a['sites']} cross a line"]))
    cases.append(("same_sites_in_both_builds", n["names"] == a["names"], None,
                  [f"{len(n['names'])} vs {len(a['names'])} sites"]))

    reason = h.platform_unavailable_reason("native")
    if reason:
        cases.append(("aligned_build_inlines_every_site", True, reason, []))
    else:
        boot = h.boot_tinypv("native", aligned, "ktest=scall.*",
                             icount=False, timeout=120)
        got = [REPORT.match(l) for l in boot.run.lines]
        got = [m for m in got if m]
        passed = any(l.strip() == "tinypv: result PASS"
                     for l in boot.run.lines)
        # Every site inlined but those of keys pinned to their
        # trampoline (the benchmark's controls): none left for crossing.
        ok = bool(got) and passed and got[0].group(6) == "0" and \
            got[0].group(5) == got[0].group(7)
        diag = [got[0].group(0) if got else "no static calls line in the "
                "boot report", "suite passed" if passed else
                "suite did not pass: " + " | ".join(boot.run.lines[-3:])]
        cases.append(("aligned_build_inlines_every_site", ok, None, diag))

    return ktap.report(cases)


if __name__ == "__main__":
    sys.exit(main())
