#!/usr/bin/env python3
"""Tests of scripts/check_sites.py, the build-time checker of the pvop site table.

What: each case writes a tiny x86-64 "kernel" in assembly (a pv_ops array of
PVOP_NR quads, a .text with call sites and template stubs, a .pvop.sites
table and optionally a .pvop.templates table), assembles and links it with
the host toolchain (gcc -x assembler-with-cpp, so the sources can use the
real pvop_abi.h, and plain `ld -e _start`, whose default linker script keeps
the record sections as orphans), runs

    python3 scripts/check_sites.py --abi pvops/include/pvop_abi.h x.elf

from the repository root, and checks the exit status (0 clean, 1 problems,
2 unreadable input) and that the message names the problem precisely: the
site or template address, the op name and the specific complaint, all on
one line, and the number of problems found.

Why: the real kernel only shows that the checker accepts a good table.
These deliberately broken mini-kernels show that it rejects each kind of
bad one, so a regression in the checker cannot hide a bad site.

Cases marked with a known checker bug report `not ok ... # TODO <bug>`
while the bug is there (an expected failure, not counted) and plain `ok`
once the checker is fixed.

Output: KTAP v1, one line per case, "# <case>: ..." diagnostics after a
failure; exit status 0 when every case passes.
Run: python3 tests/host/test_check_sites.py   (needs gcc, ld and binutils)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = "scripts/check_sites.py"          # relative to ROOT
ABI = "pvops/include/pvop_abi.h"            # relative to ROOT

# The op numbers and slot sizes the sources below are built with (and the
# messages quote), read from the same header the checker reads.
ABI_VALUES = {name: int(value) for name, value in re.findall(
    r"#define (PVOP_\w+) (\d+)\b", (ROOT / ABI).read_text())}
SLOT_IRQ_DISABLE = ABI_VALUES["PVOP_SLOT_IRQ_DISABLE"]
SLOT_IRQ_ENABLE = ABI_VALUES["PVOP_SLOT_IRQ_ENABLE"]
SLOT_READ_MSR = ABI_VALUES["PVOP_SLOT_READ_MSR"]
OP_READ_MSR = ABI_VALUES["PVOP_READ_MSR"]
PVOP_NR = ABI_VALUES["PVOP_NR"]

# Prepended to every mini-kernel. C preprocessor macros rather than gas
# macros so the ABI names work; `;` separates statements on one line.
PRELUDE = r"""
#include "pvop_abi.h"

/* One struct pvop_site record (<QBBHB3x) for the site at `at`. The
 * checker ignores clobbers and flags: literal 1 (rax) and 0 keep these
 * sources independent of the mask and flag names. */
#define RECORD(at, len, op) \
	.pushsection .pvop.sites, "a"; .balign 16; .quad at; \
	.byte len, op; .short 1; .byte 0, 0, 0, 0; .popsection

/* A correct site, as PVOP_SITE_ASM in pvops.h emits it. */
#define SITE(OP) \
	771: call *pv_ops+8*PVOP_##OP(%rip); \
	.nops PVOP_SLOT_##OP - (. - 771b); 773: ; \
	RECORD(771b, 773b - 771b, PVOP_##OP)

#define FUNC(name) .globl name; .type name, @function; name:

/* A template stub and its struct pvop_template record (<QBBHBB2x), as
 * TPL_BEGIN/TPL_END in pvops/templates.S make them. op and backend are
 * numbers (backend 0 native, 1 kvm); rel32 0xff means none. */
#define TPL_BEGIN(name) FUNC(pvstub_##name)
#define TPL_END(name, op, backend) \
	.Lend_##name: ret; .size pvstub_##name, . - pvstub_##name; \
	.pushsection .pvop.templates, "a"; .balign 16; .quad pvstub_##name; \
	.byte .Lend_##name - pvstub_##name, op; .short 1; \
	.byte backend, 0xff, 0, 0; .popsection

	.text
FUNC(_start)
	ret
"""

PV_OPS = r"""
	.data
	.balign 8
	.globl pv_ops
	.type pv_ops, @object
pv_ops:	.fill PVOP_NR, 8, 0
	.size pv_ops, . - pv_ops
"""

EPILOGUE = r"""
	.section .note.GNU-stack, "", @progbits
"""

WORKDIR = Path(tempfile.mkdtemp(prefix="test_check_sites."))


class Failure(Exception):
    """A case failed; the lines are printed as KTAP diagnostics."""

    def __init__(self, *lines):
        super().__init__(lines[0] if lines else "failed")
        self.lines = [l for line in lines for l in str(line).splitlines()]


# ---------------------------------------------------------------- helpers


def build(name, body, pv_ops=True):
    """Assemble PRELUDE + body (+ pv_ops) and link it; the ELF's path."""
    src, obj, elf = (WORKDIR / f"{name}{ext}" for ext in (".S", ".o", ".elf"))
    src.write_text(PRELUDE + body + (PV_OPS if pv_ops else "") + EPILOGUE)
    for cmd in (["gcc", "-c", "-x", "assembler-with-cpp", "-D__ASSEMBLY__",
                 "-I", str(ROOT / "pvops" / "include"), "-o", str(obj),
                 str(src)],
                ["ld", "-e", "_start", "-o", str(elf), str(obj)]):
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            raise Failure(f"cannot build {src}: {' '.join(cmd)} exited "
                          f"{run.returncode}", run.stderr.strip())
    return elf


def symbols(elf):
    """{name: address} of the ELF's symbols (nm)."""
    out = subprocess.run(["nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {f[2]: int(f[0], 16) for f in map(str.split, out.splitlines())
            if len(f) == 3}


def check(elf):
    """Run the checker the way the Makefile does, from the repo root."""
    return subprocess.run([sys.executable, CHECKER, "--abi", ABI, str(elf)],
                          cwd=ROOT, capture_output=True, text=True)


def expect(run, status, *lines, problems=None):
    """The checker exited `status`, and for every tuple in `lines` some
    stderr line contains all of the tuple's strings; with `problems`, it
    also counted exactly that many problems."""
    errors = run.stderr.splitlines()
    wrong = []
    if run.returncode != status:
        wrong.append(f"exit status {run.returncode}, expected {status}")
    for needles in lines:
        if not any(all(n in line for n in needles) for line in errors):
            wrong.append("no message line containing all of "
                         + ", ".join(repr(n) for n in needles))
    if problems is not None and \
            f"check_sites: {problems} problem(s)" not in errors:
        wrong.append(f"expected 'check_sites: {problems} problem(s)'")
    if wrong:
        raise Failure(*wrong, "checker stdout:", *run.stdout.splitlines(),
                      "checker stderr:", *errors)


def site(addr, op, length):
    """How the checker names a site in its messages, after "site #N "."""
    return f"at {addr:#x} (op {op}, {length} bytes)"


# ------------------------------------------------------------------ cases

CASES = []


def case(known_bug=None):
    """Register a case; known_bug: why it fails with the current checker."""
    def register(fn):
        CASES.append((fn, known_bug))
        return fn
    return register


GOOD_KERNEL = r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	mov	$0x1b, %ecx
	SITE(READ_MSR)
	SITE(IRQ_ENABLE)
	SITE(IRQ_DISABLE)
	ret

/* Allowed homes of raw privileged instructions. */
FUNC(pio_outb)
	mov	%esi, %eax
	mov	%edi, %edx
	outb	%al, %dx
	ret

TPL_BEGIN(native_irq_disable)
	cli
TPL_END(native_irq_disable, PVOP_IRQ_DISABLE, 0)

TPL_BEGIN(native_read_msr)
	rdmsr
TPL_END(native_read_msr, PVOP_READ_MSR, 0)

/* Exactly as long as its slot: the largest template that fits. */
TPL_BEGIN(kvm_irq_enable)
	sti
	.nops PVOP_SLOT_IRQ_ENABLE - 1
TPL_END(kvm_irq_enable, PVOP_IRQ_ENABLE, 1)
"""


@case()
def good_kernel_passes():
    run = check(build("good", GOOD_KERNEL))
    expect(run, 0)
    want = "check_sites: 4 sites, 3 templates ok; 4 privileged instructions"
    if want not in run.stdout or run.stderr:
        raise Failure(f"expected {want!r} on stdout and nothing on stderr",
                      "stdout:", run.stdout, "stderr:", run.stderr)


@case()
def default_linker_script_keeps_record_sections():
    """ld's default script places .pvop.* as allocated orphan sections,
    so the mini-kernels test what the checker sees in the real one."""
    elf = build("good", GOOD_KERNEL)
    out = subprocess.run(["readelf", "-SW", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    for name, size in ((".pvop.sites", 4 * 16), (".pvop.templates", 3 * 16)):
        m = re.search(rf"\s{re.escape(name)}\s+PROGBITS\s+([0-9a-f]+)\s+"
                      rf"[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\w+)", out)
        if not m:
            raise Failure(f"{name} missing from the linked ELF", out)
        addr, got, flags = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if not addr or "A" not in flags or got != size:
            raise Failure(f"{name}: address {addr:#x}, size {got}, flags "
                          f"{flags}; expected allocated, {size} bytes")


@case()
def wrong_instruction_mov_detected():
    elf = build("mov", r"""
FUNC(kernel_main)
bad:	mov	%rax, %rbx
	.nops 3
bad_end:
	RECORD(bad, bad_end - bad, PVOP_READ_MSR)
	ret
""")
    addr = symbols(elf)["bad"]
    expect(check(elf), 1,
           ("site #0", site(addr, "read_msr", 6),
            f"expected call *pv_ops+{8 * OP_READ_MSR:#x}(%rip)",
            "found 48 89 c3 "), problems=1)


@case()
def wrong_instruction_direct_call_detected():
    """A site already turned into a direct call is not an unpatched site."""
    elf = build("direct", r"""
FUNC(kernel_main)
bad:	call	pvstub_native_read_msr
	.nops 1
bad_end:
	RECORD(bad, bad_end - bad, PVOP_READ_MSR)
	ret
TPL_BEGIN(native_read_msr)
	rdmsr
TPL_END(native_read_msr, PVOP_READ_MSR, 0)
""")
    addr = symbols(elf)["bad"]
    expect(check(elf), 1,
           (site(addr, "read_msr", 6), "expected call *pv_ops", "found e8 "),
           problems=1)


@case()
def call_through_wrong_pv_ops_slot_detected():
    """The record says read_msr but the call goes through write_msr's slot."""
    elf = build("wrongslot", r"""
FUNC(kernel_main)
bad:	call	*pv_ops+8*PVOP_WRITE_MSR(%rip)
	RECORD(bad, 6, PVOP_READ_MSR)
	ret
""")
    addr = symbols(elf)["bad"]
    expect(check(elf), 1,
           (site(addr, "read_msr", 6),
            f"expected call *pv_ops+{8 * OP_READ_MSR:#x}(%rip)", "found ff 15"),
           problems=1)


@case()
def duplicate_site_overlaps():
    elf = build("dup", r"""
FUNC(kernel_main)
a:	SITE(IRQ_DISABLE)
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, PVOP_IRQ_DISABLE)
	ret
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           ("site #1", site(addr, "irq_disable", SLOT_IRQ_DISABLE),
            f"overlaps the site at {addr:#x} ({SLOT_IRQ_DISABLE} bytes)"),
           problems=1)


@case()
def partial_overlap_detected():
    """A record claiming two back-to-back read_msr sites as one: the second
    site's call lies inside it (and is not NOP padding of the first)."""
    elf = build("partial", r"""
FUNC(kernel_main)
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
b:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	RECORD(a, 12, PVOP_READ_MSR)
	RECORD(b, 6, PVOP_READ_MSR)
	ret
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #1", site(s["b"], "read_msr", 6),
            f"overlaps the site at {s['a']:#x} (12 bytes)"),
           ("site #0", site(s["a"], "read_msr", 12),
            f"padding at {s['b']:#x} is not a NOP"),
           ("site #0", site(s["a"], "read_msr", 12),
            "length differs from the read_msr slot (6 bytes)"), problems=3)


@case()
def nonadjacent_duplicate_overlaps():
    elf = build("dup2", r"""
FUNC(kernel_main)
a:	SITE(IRQ_DISABLE)
b:	SITE(IRQ_DISABLE)
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, PVOP_IRQ_DISABLE)
	ret
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (site(addr, "irq_disable", SLOT_IRQ_DISABLE),
            f"overlaps the site at {addr:#x}"), problems=1)


@case()
def site_shorter_than_template_detected():
    """A 6-byte irq_enable site cannot take a slot-sized inline template."""
    elf = build("short", r"""
FUNC(kernel_main)
a:	call	*pv_ops+8*PVOP_IRQ_ENABLE(%rip)
	RECORD(a, 6, PVOP_IRQ_ENABLE)
	ret
TPL_BEGIN(kvm_irq_enable)
	sti
	.nops PVOP_SLOT_IRQ_ENABLE - 1
TPL_END(kvm_irq_enable, PVOP_IRQ_ENABLE, 1)
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           ("site #0", site(addr, "irq_enable", 6),
            f"shorter than the {SLOT_IRQ_ENABLE}-byte inline template of "
            "irq_enable"),
           ("site #0", "length differs from the irq_enable slot"),
           problems=2)


@case()
def template_longer_than_slot_detected():
    elf = build("long", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	ret
TPL_BEGIN(kvm_read_msr)
	rdmsr
	.nops PVOP_SLOT_READ_MSR - 1
TPL_END(kvm_read_msr, PVOP_READ_MSR, 1)
""")
    addr = symbols(elf)["pvstub_kvm_read_msr"]
    expect(check(elf), 1,
           (f"template at {addr:#x} (read_msr, backend 1): "
            f"{SLOT_READ_MSR + 1} bytes, slot is {SLOT_READ_MSR}",),
           problems=1)


@case()
def unknown_site_op_detected():
    elf = build("unknown_site", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	RECORD(a, 6, 200)
	ret
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (f"site #1 at {addr:#x}: unknown op 200 (PVOP_NR is {PVOP_NR})",),
           problems=1)


@case()
def unknown_template_op_detected():
    elf = build("unknown_tpl", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	ret
TPL_BEGIN(native_mystery)
	nop
TPL_END(native_mystery, PVOP_NR, 0)
""")
    addr = symbols(elf)["pvstub_native_mystery"]
    expect(check(elf), 1,
           (f"template at {addr:#x}: unknown op {PVOP_NR}",), problems=1)


@case()
def site_outside_text_detected():
    """A record pointing at data (pv_ops itself) instead of code."""
    elf = build("outside", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	RECORD(pv_ops, 6, PVOP_READ_MSR)
	ret
""")
    addr = symbols(elf)["pv_ops"]
    expect(check(elf), 1,
           ("site #1", site(addr, "read_msr", 6), "outside .text"),
           problems=1)


@case()
def raw_privileged_in_plain_function_detected():
    elf = build("raw", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	ret
FUNC(plain_cli)
	cli
	ret
FUNC(plain_wrmsr)
	wrmsr
	ret
FUNC(plain_cr3)
	mov	%rax, %cr3
	ret
FUNC(plain_outb)
	outb	%al, $0x80
	ret
""")
    s = symbols(elf)
    expect(check(elf), 1,
           (f"raw privileged instruction 'cli' at {s['plain_cli']:#x} "
            "in plain_cli",),
           (f"raw privileged instruction 'wrmsr' at {s['plain_wrmsr']:#x} "
            "in plain_wrmsr",),
           (f"raw privileged instruction 'mov    %rax,%cr3' at "
            f"{s['plain_cr3']:#x} in plain_cr3",),
           (f"raw privileged instruction 'out    %al,$0x80' at "
            f"{s['plain_outb']:#x} in plain_outb",), problems=4)


@case()
def raw_privileged_in_allowed_functions_passes():
    """The same instructions in a pvop template stub or a port I/O helper."""
    run = check(build("allowed", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	ret
FUNC(pvstub_native_x)
	cli
	wrmsr
	mov	%rax, %cr3
	ret
FUNC(pio_outb)
	outb	%al, $0x80
	ret
"""))
    expect(run, 0)
    if "4 privileged instructions, all in allowed code" not in run.stdout:
        raise Failure("expected 4 allowed privileged instructions", run.stdout)


@case()
def prefixed_privileged_detected():
    elf = build("prefixed", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	ret
FUNC(plain_es_cli)
	.byte 0x26, 0xfa		/* es cli */
	ret
FUNC(plain_rex_wrmsr)
	.byte 0x48, 0x0f, 0x30		/* rex.W wrmsr */
	ret
FUNC(plain_data16_cs_hlt)
	.byte 0x66, 0x2e, 0xf4		/* data16 cs hlt */
	ret
""")
    s = symbols(elf)
    expect(check(elf), 1, *[(f"at {s[f]:#x} in {f}",) for f in (
        "plain_es_cli", "plain_rex_wrmsr", "plain_data16_cs_hlt")],
        problems=3)


@case()
def padding_not_nop_detected():
    elf = build("int3", r"""
FUNC(kernel_main)
a:	call	*pv_ops+8*PVOP_IRQ_DISABLE(%rip)
	.fill PVOP_SLOT_IRQ_DISABLE - 6, 1, 0xcc
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, PVOP_IRQ_DISABLE)
	ret
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           ("site #0", site(addr, "irq_disable", SLOT_IRQ_DISABLE),
            f"padding at {addr + 6:#x} is not a NOP (int3)"), problems=1)


@case()
def padding_past_site_end_detected():
    """The record ends in the middle of the last padding NOP."""
    elf = build("pastend", r"""
FUNC(kernel_main)
a:	call	*pv_ops+8*PVOP_IRQ_DISABLE(%rip)
	.nops 4
	RECORD(a, 8, PVOP_IRQ_DISABLE)
	ret
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (site(addr, "irq_disable", 8), "padding runs past the site end"),
           (site(addr, "irq_disable", 8), "length differs from the "
            "irq_disable slot (9 bytes)"), problems=2)


@case()
def prefixed_non_nop_padding_detected():
    elf = build("csret", r"""
FUNC(kernel_main)
a:	call	*pv_ops+8*PVOP_IRQ_DISABLE(%rip)
	.byte 0x2e, 0xc3		/* cs ret */
	.nops PVOP_SLOT_IRQ_DISABLE - 8
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, PVOP_IRQ_DISABLE)
	ret
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (site(addr, "irq_disable", SLOT_IRQ_DISABLE),
            f"padding at {addr + 6:#x} is not a NOP (cs ret)"), problems=1)


@case()
def not_an_elf_exits_2():
    path = WORKDIR / "not_an_elf.elf"
    path.write_text("this is not an ELF file\n")
    expect(check(path), 2, (f"check_sites: {path}:",))


@case()
def missing_file_exits_2():
    path = WORKDIR / "no_such_kernel.elf"
    expect(check(path), 2, (f"check_sites: {path}:",))


@case()
def missing_pv_ops_exits_2():
    elf = build("no_pv_ops", r"""
	.data
pv_ops_is_elsewhere:
	.quad 0
	.text
FUNC(kernel_main)
a:	call	*pv_ops_is_elsewhere(%rip)
	RECORD(a, 6, PVOP_IRQ_DISABLE)
	ret
""", pv_ops=False)
    expect(check(elf), 2, (str(elf), "symbol pv_ops not found"))


@case()
def missing_site_table_exits_2():
    elf = build("no_sites", r"""
FUNC(kernel_main)
	ret
""")
    expect(check(elf), 2, (str(elf), "has no .pvop.sites section"))


@case()
def truncated_site_table_exits_2():
    elf = build("truncated", r"""
FUNC(kernel_main)
	SITE(IRQ_DISABLE)
	.pushsection .pvop.sites, "a"
	.quad 0
	.popsection
	ret
""")
    expect(check(elf), 2, (str(elf), "record section size 24 is not a "
                           "multiple of 16"))


# ------------------------------------------------------------------ main


def main():
    print("KTAP version 1")
    print(f"1..{len(CASES)}")
    failed = 0
    for number, (fn, known_bug) in enumerate(CASES, 1):
        name = fn.__name__
        try:
            fn()
        except Failure as e:
            lines = e.lines
        except Exception as e:  # a bug in the test itself, or missing tools
            lines = [f"{type(e).__name__}: {e}"]
        else:
            print(f"ok {number} {name}")
            continue
        if known_bug:
            print(f"not ok {number} {name} # TODO known check_sites.py bug: "
                  f"{known_bug}")
        else:
            print(f"not ok {number} {name}")
            failed += 1
        for line in lines:
            print(f"# {name}: {line}")
    if failed == 0 and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(WORKDIR, ignore_errors=True)
    else:
        print(f"# files kept in {WORKDIR}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
