#!/usr/bin/env python3
"""Tests of scripts/check_sites.py, the build-time checker of the patch site table.

What: each case writes a tiny x86-64 "kernel" in assembly (a pv_ops array of
PVOP_NR quads, a .text with call sites in functions that set up a frame, and
template stubs, a .patch.sites table of struct patch_site records and
optionally a .pvop.templates table), assembles and links it with the host
toolchain (gcc -x assembler-with-cpp, so the sources can use the real
patch_abi.h and pvop_abi.h, and plain `ld -e _start`, whose default linker
script keeps the record sections as orphans), runs

    python3 scripts/check_sites.py --abi pvops/include/pvop_abi.h
        --patch-abi patch/include/patch_abi.h [--frames=warn] x.elf

from the repository root, and checks the exit status (0 clean, 1 problems,
2 unreadable input) and that the message names the problem precisely: the
site or template address, the op name and the specific complaint, all on
one line, and the number of problems found (or, for a warning, that it is
one and the run still passes).

Why: the real kernel only shows that the checker accepts a good table.
These deliberately broken mini-kernels show that it rejects each kind of
bad one, so a regression in the checker cannot hide a bad site; a few
correct ones at the edge of a rule show that it does not reject too much.

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
PATCH_ABI = "patch/include/patch_abi.h"     # relative to ROOT

# The op numbers, slot sizes and kinds the sources below are built with (and
# the messages quote), read from the same headers the checker reads.
ABI_VALUES = {name: int(value) for name, value in re.findall(
    r"#define ((?:PVOP|PATCH)_\w+) (\d+)\b",
    (ROOT / ABI).read_text() + (ROOT / PATCH_ABI).read_text())}
SLOT_IRQ_DISABLE = ABI_VALUES["PVOP_SLOT_IRQ_DISABLE"]
SLOT_IRQ_ENABLE = ABI_VALUES["PVOP_SLOT_IRQ_ENABLE"]
SLOT_READ_MSR = ABI_VALUES["PVOP_SLOT_READ_MSR"]
OP_READ_MSR = ABI_VALUES["PVOP_READ_MSR"]
OP_WRITE_MSR = ABI_VALUES["PVOP_WRITE_MSR"]
PVOP_NR = ABI_VALUES["PVOP_NR"]
PATCH_KIND_NR = ABI_VALUES["PATCH_KIND_NR"]
PATCH_MAX_LEN = ABI_VALUES["PATCH_MAX_LEN"]
# Every kind but pvop, pvop_saves, alt, scall and test, the kinds with checker rules.
KINDS_WITHOUT_RULES = {name[len("PATCH_KIND_"):].lower(): value
                       for name, value in ABI_VALUES.items()
                       if name.startswith("PATCH_KIND_")
                       and name not in ("PATCH_KIND_NR", "PATCH_KIND_PVOP",
                                        "PATCH_KIND_PVOP_SAVES",
                                        "PATCH_KIND_ALT", "PATCH_KIND_SCALL",
                                        "PATCH_KIND_TEST")}
CPUFEATURE_NR = int(re.search(r"#define CPUFEATURE_NR (\d+)", (
    ROOT / "guest/include/cpufeature.h").read_text()).group(1))

# Prepended to every mini-kernel. C preprocessor macros rather than gas
# macros so the ABI names work; `;` separates statements on one line.
PRELUDE = r"""
#include "patch_abi.h"
#include "pvop_abi.h"

/* One struct patch_site record (<iiBBBBHH) for the site at `at`, every
 * field spelled out; addresses are relative to their field, as
 * PATCH_RECORD_ASM in patch_abi.h emits them. */
#define PATCH_RECORD(at, len, payload, kind, flags, reserved, arg, arg2) \
	.pushsection .patch.sites, "a"; .balign 16; \
	.long at - .; .long payload - .; \
	.byte kind, len, flags, reserved; .short arg, arg2; .popsection

/* The pvop record of op PVOP_<OP> as the kernel emits it: payload its
 * pv_ops slot, arg the op, arg2 the op's clobber mask. */
#define PVOP_RECORD(at, len, OP, flags) \
	PATCH_RECORD(at, len, pv_ops + 8 * PVOP_##OP, PATCH_KIND_PVOP, \
		     flags, 0, PVOP_##OP, PVOP_CLOB_##OP)
#define RECORD(at, len, OP) PVOP_RECORD(at, len, OP, 0)

/* A correct site, as PVOP_SITE_ASM in pvops.h emits it. */
#define SITE_FLAGS(OP, flags) \
	771: call *pv_ops+8*PVOP_##OP(%rip); \
	.nops PVOP_SLOT_##OP - (. - 771b); 773: ; \
	PVOP_RECORD(771b, 773b - 771b, OP, flags)
#define SITE(OP) SITE_FLAGS(OP, 0)

#define FUNC(name) .globl name; .type name, @function; name:

/* What gcc -fno-omit-frame-pointer puts around a function's body; every
 * site must come after FRAME_BEGIN. */
#define FRAME_BEGIN push %rbp; mov %rsp, %rbp
#define FRAME_END pop %rbp; ret

/* A struct pvop_template record (<QBBHBBBx) for the template at `at`. */
#define TPL_RECORD(at, len, op, backend, reserved) \
	.pushsection .pvop.templates, "a"; .balign 16; .quad at; \
	.byte len, op; .short 1; .byte backend, reserved, 0, 0; .popsection

/* A template stub and its record, as TPL_BEGIN/TPL_END in
 * pvops/templates.S make them. op and backend are numbers (backend 0
 * native, 1 kvm). */
#define TPL_BEGIN(name) FUNC(pvstub_##name)
#define TPL_END(name, op, backend) \
	.Lend_##name: ret; .size pvstub_##name, . - pvstub_##name; \
	TPL_RECORD(pvstub_##name, .Lend_##name - pvstub_##name, op, \
		   backend, 0)

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
                 "-I", str(ROOT / "pvops" / "include"),
                 "-I", str(ROOT / "patch" / "include"), "-o", str(obj),
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


def check(elf, *options):
    """Run the checker the way the Makefile does, from the repo root."""
    return subprocess.run([sys.executable, CHECKER, "--abi", ABI,
                           "--patch-abi", PATCH_ABI, *options, str(elf)],
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
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	mov	$0x1b, %ecx
	SITE(READ_MSR)
	SITE(IRQ_ENABLE)
	SITE(IRQ_DISABLE)
	FRAME_END

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


def expect_clean(run, summary):
    """Exit 0, `summary` in the stdout line, nothing on stderr."""
    expect(run, 0)
    if summary not in run.stdout or run.stderr:
        raise Failure(f"expected {summary!r} on stdout and nothing on "
                      "stderr", "stdout:", run.stdout, "stderr:", run.stderr)


@case()
def good_kernel_passes():
    expect_clean(check(build("good", GOOD_KERNEL)),
                 "check_sites: 4 sites, 3 templates ok; frame set-up "
                 "checked in 1 function(s); 4 privileged instructions")


@case()
def default_linker_script_keeps_record_sections():
    """ld's default script places .patch.sites and .pvop.templates as
    allocated orphan sections, so the mini-kernels test what the checker
    sees in the real one."""
    elf = build("good", GOOD_KERNEL)
    out = subprocess.run(["readelf", "-SW", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    for name, size in ((".patch.sites", 4 * 16), (".pvop.templates", 3 * 16)):
        m = re.search(rf"\s{re.escape(name)}\s+PROGBITS\s+([0-9a-f]+)\s+"
                      rf"[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\w+)", out)
        if not m:
            raise Failure(f"{name} missing from the linked ELF", out)
        addr, got, flags = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if not addr or "A" not in flags or got != size:
            raise Failure(f"{name}: address {addr:#x}, size {got}, flags "
                          f"{flags}; expected allocated, {size} bytes")


@case()
def relative_fields_resolve_to_site_and_payload():
    """The checker turns `.long x - .` back into x: a site and its payload
    seen at the right addresses are what makes the good kernel pass, and a
    record whose site field is off by one byte is caught at that byte."""
    elf = build("offbyone", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	RECORD(a + 1, 6, READ_MSR)
	FRAME_END
""")
    addr = symbols(elf)["a"] + 1
    expect(check(elf), 1,
           ("site #0", site(addr, "read_msr", 6), "expected call *pv_ops",
            "found 15 "), problems=1)


@case()
def wrong_instruction_mov_detected():
    elf = build("mov", r"""
FUNC(kernel_main)
	FRAME_BEGIN
bad:	mov	%rax, %rbx
	.nops 3
bad_end:
	RECORD(bad, bad_end - bad, READ_MSR)
	FRAME_END
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
	FRAME_BEGIN
bad:	call	pvstub_native_read_msr
	.nops 1
bad_end:
	RECORD(bad, bad_end - bad, READ_MSR)
	FRAME_END
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
	FRAME_BEGIN
bad:	call	*pv_ops+8*PVOP_WRITE_MSR(%rip)
	RECORD(bad, 6, READ_MSR)
	FRAME_END
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
	FRAME_BEGIN
a:	SITE(IRQ_DISABLE)
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, IRQ_DISABLE)
	FRAME_END
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
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
b:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	RECORD(a, 12, READ_MSR)
	RECORD(b, 6, READ_MSR)
	FRAME_END
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
	FRAME_BEGIN
a:	SITE(IRQ_DISABLE)
b:	SITE(IRQ_DISABLE)
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, IRQ_DISABLE)
	FRAME_END
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (site(addr, "irq_disable", SLOT_IRQ_DISABLE),
            f"overlaps the site at {addr:#x}"), problems=1)


@case()
def overlap_across_kinds_detected():
    """A record of another kind over a pvop site is an overlap too (and,
    while that kind has no rules, an error of its own)."""
    elf = build("overlap_kinds", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE(IRQ_DISABLE)
	PATCH_RECORD(a + 2, 4, pv_ops, PATCH_KIND_PCALL, 0, 0, 0, 0)
	FRAME_END
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           ("site #1", f"at {addr + 2:#x} (kind pcall, 4 bytes)",
            f"overlaps the site at {addr:#x} ({SLOT_IRQ_DISABLE} bytes)"),
           ("site #1", "has no checker rules"), problems=2)


@case()
def site_shorter_than_template_detected():
    """A 6-byte irq_enable site cannot take a slot-sized inline template."""
    elf = build("short", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_IRQ_ENABLE(%rip)
	RECORD(a, 6, IRQ_ENABLE)
	FRAME_END
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
def site_longer_than_patch_max_len_detected():
    elf = build("toolong", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	.nops PATCH_MAX_LEN + 1 - 6
	RECORD(a, PATCH_MAX_LEN + 1, READ_MSR)
	FRAME_END
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           ("site #0", site(addr, "read_msr", PATCH_MAX_LEN + 1),
            f"longer than PATCH_MAX_LEN ({PATCH_MAX_LEN} bytes)"),
           ("site #0", "length differs from the read_msr slot"), problems=2)


@case()
def template_longer_than_slot_detected():
    elf = build("long", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
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
def empty_template_detected():
    elf = build("empty_tpl", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
TPL_BEGIN(kvm_io_delay)
TPL_END(kvm_io_delay, PVOP_IO_DELAY, 1)
""")
    addr = symbols(elf)["pvstub_kvm_io_delay"]
    expect(check(elf), 1,
           (f"template at {addr:#x} (io_delay, backend 1) is empty: "
            "'nothing' is not a template",), problems=1)


@case()
def template_reserved_byte_detected():
    """The old rel32 byte (0xff for none) is reserved now and must be 0."""
    elf = build("tpl_reserved", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
FUNC(pvstub_native_irq_disable)
	cli
	ret
	TPL_RECORD(pvstub_native_irq_disable, 1, PVOP_IRQ_DISABLE, 0, 0xff)
""")
    addr = symbols(elf)["pvstub_native_irq_disable"]
    expect(check(elf), 1,
           (f"template at {addr:#x} (irq_disable, backend 0): reserved "
            "byte (formerly rel32) is 0xff, must be 0",), problems=1)


@case()
def unknown_site_op_detected():
    elf = build("unknown_site", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(a, 6, pv_ops + 8 * PVOP_READ_MSR, PATCH_KIND_PVOP, 0, 0,
		     200, PVOP_CLOB_READ_MSR)
	FRAME_END
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (f"site #1 at {addr:#x}: unknown op 200 (PVOP_NR is {PVOP_NR})",),
           problems=1)


@case()
def unknown_template_op_detected():
    elf = build("unknown_tpl", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
TPL_BEGIN(native_mystery)
	nop
TPL_END(native_mystery, PVOP_NR, 0)
""")
    addr = symbols(elf)["pvstub_native_mystery"]
    expect(check(elf), 1,
           (f"template at {addr:#x}: unknown op {PVOP_NR}",), problems=1)


@case()
def invalid_kind_detected():
    """Kind 0 (a zeroed record) and PATCH_KIND_NR are no kind at all."""
    elf = build("kind0", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE(IRQ_DISABLE)
b:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(b, 6, pv_ops + 8 * PVOP_READ_MSR, 0, 0, 0,
		     PVOP_READ_MSR, PVOP_CLOB_READ_MSR)
c:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(c, 6, pv_ops + 8 * PVOP_READ_MSR, PATCH_KIND_NR, 0, 0,
		     PVOP_READ_MSR, PVOP_CLOB_READ_MSR)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           (f"site #1 at {s['b']:#x}: invalid kind 0",),
           (f"site #2 at {s['c']:#x}: invalid kind {PATCH_KIND_NR}",),
           problems=2)


@case()
def kinds_without_rules_detected():
    """Every kind but pvop, alt and scall (pcall today) has no rules yet, so a
    record of one must not pass unchecked."""
    body = ["FUNC(kernel_main)", "\tFRAME_BEGIN"]
    for name in KINDS_WITHOUT_RULES:
        body += [f"{name}:\tcall\t*pv_ops+8*PVOP_READ_MSR(%rip)",
                 f"\tPATCH_RECORD({name}, 6, pv_ops, PATCH_KIND_"
                 f"{name.upper()}, 0, 0, 0, 0)"]
    elf = build("norules", "\n".join(body + ["\tFRAME_END", ""]))
    s = symbols(elf)
    expect(check(elf), 1, *[
        (f"at {s[name]:#x} (kind {name}, 6 bytes)",
         f"kind {kind} ({name}) has no checker rules in this build")
        for name, kind in KINDS_WITHOUT_RULES.items()],
        problems=len(KINDS_WITHOUT_RULES))
    if not KINDS_WITHOUT_RULES:
        raise Failure("patch_abi.h defines no kind but pvop and scall")


# ---- static calls: a key, its trampoline, call sites (static_call.h) ----

SCALL_KEY = r"""
	.data
	.balign 8
	.globl __SCK__k
__SCK__k: .quad f, f, 0, 0, 0, 0, 0
	.text
FUNC(f)
	ret
	.balign 8
FUNC(__SCT__k)
	jmp	*__SCK__k+8(%rip)
	int3
	int3
	PATCH_RECORD(__SCT__k, 8, __SCK__k, PATCH_KIND_SCALL,
		     PATCH_SCALL_TRAMP, 0, 0, 0)
"""


def scall_kernel(name, body):
    return build(name, SCALL_KEY + "FUNC(kernel_main)\n\tFRAME_BEGIN\n" +
                 body + "\n\tFRAME_END\n")


@case()
def scall_recorded_sites_pass():
    elf = scall_kernel("scall_ok", r"""
c1:	call	__SCT__k
	PATCH_RECORD(c1, 5, __SCK__k, PATCH_KIND_SCALL, PATCH_SCALL_CALL, 0, 0, 0)
c2:	{disp32} jmp	__SCT__k
	PATCH_RECORD(c2, 5, __SCK__k, PATCH_KIND_SCALL, PATCH_SCALL_TAIL, 0, 0, 0)
c3:	.byte 0x2e
	call	__SCT__k
	PATCH_RECORD(c3, 6, __SCK__k, PATCH_KIND_SCALL, PATCH_SCALL_CS, 0, 0, 0)
""")
    expect(check(elf), 0)


@case()
def scall_unrecorded_call_detected():
    elf = scall_kernel("scall_stale", r"""
c1:	call	__SCT__k
""")
    addr = symbols(elf)["c1"]
    expect(check(elf), 1, (f"static call at {addr:#x} (call to __SCT__k) "
                           f"has no site record",), problems=1)


@case()
def scall_record_not_a_call_to_its_trampoline_detected():
    elf = scall_kernel("scall_wrong", r"""
c1:	call	f
	PATCH_RECORD(c1, 5, __SCK__k, PATCH_KIND_SCALL, PATCH_SCALL_CALL, 0, 0, 0)
c2:	call	__SCT__k
	PATCH_RECORD(c2, 5, __SCK__k, PATCH_KIND_SCALL, PATCH_SCALL_TAIL, 0, 0, 0)
c3:	.byte 0x3e
	call	__SCT__k
	PATCH_RECORD(c3, 6, __SCK__k, PATCH_KIND_SCALL, PATCH_SCALL_CS, 0, 0, 0)
""")
    s = symbols(elf)
    expect(check(elf), 1,
           (f"at {s['c1']:#x} (kind scall, 5 bytes)",
            "not a call rel32 to __SCT__k"),
           (f"at {s['c2']:#x} (kind scall, 5 bytes)",
            "not a jmp rel32 to __SCT__k"),
           (f"at {s['c3']:#x} (kind scall, 6 bytes)",
            "not a cs call rel32 to __SCT__k"), problems=3)


@case()
def scall_bad_trampoline_and_payload_detected():
    elf = build("scall_tramp", SCALL_KEY.replace(
        "int3\n\tint3", "nop\n\tint3") + r"""
FUNC(kernel_main)
	FRAME_BEGIN
c1:	call	__SCT__k
	PATCH_RECORD(c1, 5, f, PATCH_KIND_SCALL, PATCH_SCALL_CALL, 0, 0, 0)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           (f"at {s['__SCT__k']:#x} (kind scall, 8 bytes)",
            "not the unpatched trampoline"),
           (f"at {s['c1']:#x} (kind scall, 5 bytes)",
            "is no static-call key"), problems=2)


@case()
def reserved_byte_detected():
    elf = build("reserved", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(a, 6, pv_ops + 8 * PVOP_READ_MSR, PATCH_KIND_PVOP, 0, 1,
		     PVOP_READ_MSR, PVOP_CLOB_READ_MSR)
	FRAME_END
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           ("site #0", site(addr, "read_msr", 6),
            "reserved byte is 0x1, must be 0"), problems=1)


@case()
def clobbers_not_the_ops_mask_detected():
    """arg2 must be exactly PVOP_CLOB_<OP>: neither more nor less."""
    elf = build("clobbers", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(a, 6, pv_ops + 8 * PVOP_READ_MSR, PATCH_KIND_PVOP, 0, 0,
		     PVOP_READ_MSR, 0xffff)
b:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(b, 6, pv_ops + 8 * PVOP_READ_MSR, PATCH_KIND_PVOP, 0, 0,
		     PVOP_READ_MSR, PVREG_RAX)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #0", site(s["a"], "read_msr", 6),
            "clobber mask 0xffff is not PVOP_CLOB_READ_MSR (0x5)"),
           ("site #1", site(s["b"], "read_msr", 6),
            "clobber mask 0x1 is not PVOP_CLOB_READ_MSR (0x5)"), problems=2)


@case()
def payload_not_pv_ops_slot_detected():
    elf = build("payload", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(a, 6, pv_ops + 8 * PVOP_WRITE_MSR, PATCH_KIND_PVOP, 0, 0,
		     PVOP_READ_MSR, PVOP_CLOB_READ_MSR)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #0", site(s["a"], "read_msr", 6),
            f"payload {s['pv_ops'] + 8 * OP_WRITE_MSR:#x} is not its pv_ops "
            f"slot pv_ops+{8 * OP_READ_MSR:#x} "
            f"({s['pv_ops'] + 8 * OP_READ_MSR:#x})"), problems=1)


@case()
def undefined_flag_bits_detected():
    elf = build("flags_undef", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE_FLAGS(IRQ_DISABLE, 0x80)
b:	SITE_FLAGS(IRQ_DISABLE, 0x80 | PVOP_SITE_FORCE_CALL)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #0", site(s["a"], "irq_disable", SLOT_IRQ_DISABLE),
            "flags 0x80 have bits 0x80 outside PVOP_SITE_FORCE_MASK | "
            "PVOP_SITE_PAD_MASK"),
           ("site #1", site(s["b"], "irq_disable", SLOT_IRQ_DISABLE),
            "flags 0x82 have bits 0x80 outside"), problems=2)


@case()
def two_force_bits_detected():
    elf = build("flags_force", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE_FLAGS(IRQ_DISABLE, PVOP_SITE_FORCE_INDIRECT | PVOP_SITE_FORCE_CALL)
b:	SITE_FLAGS(IRQ_DISABLE, PVOP_SITE_FORCE_MASK)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #0", site(s["a"], "irq_disable", SLOT_IRQ_DISABLE),
            "flags 0x3 pin more than one dispatch mode"),
           ("site #1", "flags 0x7 pin more than one dispatch mode"),
           problems=2)


@case()
def pad_field_out_of_range_detected():
    """Five padding styles: pad field 1..5; 6 and 7 name none."""
    elf = build("flags_pad", r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE_FLAGS(IRQ_DISABLE, PVOP_SITE_PAD(5))
b:	SITE_FLAGS(IRQ_DISABLE, PVOP_SITE_PAD_MASK)
	FRAME_END
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #0", site(s["a"], "irq_disable", SLOT_IRQ_DISABLE),
            "flags 0x60 pad field 6 names no padding style"),
           ("site #1", "flags 0x70 pad field 7 names no padding style"),
           problems=2)


@case()
def defined_flags_pass():
    """Each FORCE bit alone and every padding style, with and without a
    FORCE bit: the flag rules reject nothing the kernel may pin."""
    sites = [f"\tSITE_FLAGS(IRQ_DISABLE, {flags})" for flags in
             ["PVOP_SITE_FORCE_INDIRECT", "PVOP_SITE_FORCE_CALL",
              "PVOP_SITE_FORCE_INLINE"]
             + [f"PVOP_SITE_PAD({style})" for style in range(5)]
             + ["PVOP_SITE_FORCE_INLINE | PVOP_SITE_PAD(4)"]]
    run = check(build("flags_ok", "\n".join(
        ["FUNC(kernel_main)", "\tFRAME_BEGIN", *sites, "\tFRAME_END", ""])))
    expect_clean(run, f"check_sites: {len(sites)} sites, 0 templates ok")


EARLY_SITE = r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
/* As gcc shrink-wraps a function whose asm it does not know makes a call:
 * the site runs on the caller's frame. */
FUNC(early_site)
a:	SITE(IRQ_DISABLE)
	FRAME_BEGIN
	FRAME_END
/* As gcc leaves a function that makes no call it knows of. */
FUNC(no_frame)
b:	SITE(IRQ_ENABLE)
	ret
"""


def early_site_lines(elf, warning=""):
    s = symbols(elf)
    frame = s["a"] + SLOT_IRQ_DISABLE + 1       # after push %rbp
    return [(f"{warning}site #1", site(s["a"], "irq_disable",
                                       SLOT_IRQ_DISABLE),
             "in early_site comes before early_site's frame set-up "
             f"(mov %rsp,%rbp at {frame:#x})"),
            (f"{warning}site #2", site(s["b"], "irq_enable", SLOT_IRQ_ENABLE),
             "in no_frame comes before no_frame's frame set-up (no_frame has "
             "no mov %rsp,%rbp)")]


@case()
def site_before_frame_setup_detected():
    elf = build("early", EARLY_SITE)
    expect(check(elf), 1, *early_site_lines(elf), problems=2)


@case()
def site_after_frame_setup_passes():
    """The same site after push %rbp; mov %rsp,%rbp, behind a label (which
    is not a function and so does not hide the set-up before it)."""
    run = check(build("late", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
FUNC(late_site)
	FRAME_BEGIN
a:	SITE(IRQ_DISABLE)
	FRAME_END
"""))
    expect_clean(run, "frame set-up checked in 2 function(s);")


@case()
def frames_warn_demotes_only_the_frame_rule():
    """--frames=warn: the same two sites are warnings and the run passes;
    any other problem still fails it."""
    elf = build("early", EARLY_SITE)
    run = check(elf, "--frames=warn")
    expect(run, 0, *early_site_lines(elf, "warning: "))
    want = ("frame set-up checked in 3 function(s), 2 site(s) before it "
            "(warnings)")
    if want not in run.stdout:
        raise Failure(f"expected {want!r} on stdout", run.stdout)
    elf = build("early_and_bad", EARLY_SITE + r"""
FUNC(bad_clobbers)
	FRAME_BEGIN
c:	call	*pv_ops+8*PVOP_READ_MSR(%rip)
	PATCH_RECORD(c, 6, pv_ops + 8 * PVOP_READ_MSR, PATCH_KIND_PVOP, 0, 0,
		     PVOP_READ_MSR, PVREG_RAX)
	FRAME_END
""")
    expect(check(elf, "--frames=warn"), 1, *early_site_lines(elf, "warning: "),
           ("site #3", "clobber mask 0x1 is not PVOP_CLOB_READ_MSR"),
           problems=1)


@case()
def frame_exempt_functions_pass():
    """Template stubs and the frameless entry code need no frame set-up."""
    run = check(build("exempt", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
FUNC(pvstub_native_x)
	SITE(IRQ_DISABLE)
	ret
FUNC(trap_common)
	SITE(IRQ_DISABLE)
	ret
"""))
    expect_clean(run, "frame set-up checked in 1 function(s);")


@case()
def cold_fragment_uses_parents_frame():
    """gcc's F.cold is entered from F: F's set-up counts for its sites. A
    cold fragment of a function with no frame at all is still caught."""
    elf = build("cold", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
FUNC(warm)
	FRAME_BEGIN
	FRAME_END
FUNC(cold_only)
	ret
FUNC(warm.cold)
a:	SITE(IRQ_DISABLE)
	ud2
FUNC(cold_only.cold)
b:	SITE(IRQ_DISABLE)
	ud2
""")
    s = symbols(elf)
    expect(check(elf), 1,
           ("site #2", site(s["b"], "irq_disable", SLOT_IRQ_DISABLE),
            "in cold_only.cold comes before cold_only.cold's frame set-up "
            "(neither cold_only.cold nor cold_only has a mov %rsp,%rbp)"),
           problems=1)


@case()
def site_outside_text_detected():
    """A record pointing at data (pv_ops itself) instead of code."""
    elf = build("outside", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	RECORD(pv_ops, 6, READ_MSR)
	FRAME_END
""")
    addr = symbols(elf)["pv_ops"]
    expect(check(elf), 1,
           ("site #1", site(addr, "read_msr", 6), "outside .text"),
           problems=1)


@case()
def old_site_section_detected():
    """Records left in the old .pvop.sites would be neither patched nor
    checked."""
    elf = build("old_section", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
	.pushsection .pvop.sites, "a"
	.quad kernel_main, 0
	.popsection
""")
    expect(check(elf), 1,
           (".pvop.sites is present: records in the old format are "
            "neither patched nor checked",), problems=1)


@case()
def raw_privileged_in_plain_function_detected():
    elf = build("raw", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
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
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
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
def label_does_not_allow_privileged():
    """A label named like allowed code inside a plain function is not a
    function: the instruction after it is still the plain function's."""
    elf = build("label", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
FUNC(plain)
	nop
pio_fake:
	cli
	ret
""")
    s = symbols(elf)
    expect(check(elf), 1,
           (f"raw privileged instruction 'cli' at {s['pio_fake']:#x} "
            "in plain ",), problems=1)


@case()
def prefixed_privileged_detected():
    elf = build("prefixed", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	FRAME_END
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
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_IRQ_DISABLE(%rip)
	.fill PVOP_SLOT_IRQ_DISABLE - 6, 1, 0xcc
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, IRQ_DISABLE)
	FRAME_END
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
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_IRQ_DISABLE(%rip)
	.nops 4
	RECORD(a, 8, IRQ_DISABLE)
	FRAME_END
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
	FRAME_BEGIN
a:	call	*pv_ops+8*PVOP_IRQ_DISABLE(%rip)
	.byte 0x2e, 0xc3		/* cs ret */
	.nops PVOP_SLOT_IRQ_DISABLE - 8
	RECORD(a, PVOP_SLOT_IRQ_DISABLE, IRQ_DISABLE)
	FRAME_END
""")
    addr = symbols(elf)["a"]
    expect(check(elf), 1,
           (site(addr, "irq_disable", SLOT_IRQ_DISABLE),
            f"padding at {addr + 6:#x} is not a NOP (cs ret)"), problems=1)



# ------------------------------------------------- sites in assembly

ASM_KERNEL = r"""
#include "pvop_asm.h"
FUNC(kernel_main)
	FRAME_BEGIN
a:	PVOP_ASM_SITE(SWAPGS, CLBR_NONE)
b:	PVOP_ASM_SITE_SAVED(IRQ_ENABLE, CLBR_NONE, PVREG_RAX | PVREG_RCX)
c:	PVOP_ASM_SITE(IRQ_DISABLE, CLBR_ANY)
	FRAME_END
"""

# A .pvop.asm record (<iHHHHI) for the site at `at`, fields spelled out;
# a PATCH_KIND_PVOP_SAVES site record.
ASM_RECORD = r"""
#define SAVES_RECORD(at, len, OP) \
	PATCH_RECORD(at, len, pv_ops + 8 * PVOP_##OP, PATCH_KIND_PVOP_SAVES, \
		     0, 0, PVOP_##OP, PVOP_CLOB_##OP)
#define ASM_RECORD(at, annot, op, saved) \
	.pushsection .pvop.asm, "a"; .balign 16; .long at - .; \
	.short annot, op, saved, 0; .long 0; .popsection
"""


@case()
def asm_sites_pass():
    """pvop_asm.h's sites, with and without saves: clean, counted."""
    elf = build("asm_ok", ASM_KERNEL)
    run = check(elf)
    expect_clean(run, "check_sites: 3 sites, 0 templates ok")
    if "3 assembly sites, 1 with saves" not in run.stdout:
        raise Failure("expected '3 assembly sites, 1 with saves'",
                      run.stdout)
    # The saves site: push rax, push rcx, the slot, pop rcx, pop rax.
    s = symbols(elf)
    out = subprocess.run(["objdump", "-d", "-w", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    want = [f"{s['b']:x}:\t50 ", f"{s['b'] + 1:x}:\t51 ",
            f"{s['b'] + 2:x}:\tff 15 "]
    for w in want:
        if not any(line.strip().startswith(w) for line in out.splitlines()):
            raise Failure(f"no instruction line starting {w!r}", out)


@case()
def asm_annotation_keeping_op_clobbers_detected():
    """irq_enable may destroy rax; an annotation that keeps rax, with no
    save of it, is a problem (the macro refuses it when assembling; a
    hand-made record is caught by the checker)."""
    elf = build("asm_annot", ASM_RECORD + r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE(IRQ_ENABLE)
	ASM_RECORD(a, 0, PVOP_IRQ_ENABLE, 0)
	FRAME_END
""")
    expect(check(elf), 1,
           ("asm site #0", "(irq_enable): annotation 0x0 keeps 0x1",
            "PVOP_CLOB_IRQ_ENABLE"), problems=1)


@case()
def asm_record_without_site_detected():
    elf = build("asm_nosite", ASM_RECORD + r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	SITE(IRQ_ENABLE)
b:	nop
	ASM_RECORD(b, PVREG_RAX, PVOP_IRQ_ENABLE, 0)
	ASM_RECORD(a, PVREG_RAX, PVOP_IRQ_DISABLE, 0)
	FRAME_END
""")
    expect(check(elf), 1, ("asm site #0", "no pvop site record there"),
           ("asm site #1", "differs from its site's"), problems=2)


@case()
def asm_assembler_refuses_bad_annotation():
    """PVOP_ASM_SITE itself: an annotation that keeps a register the op
    destroys does not assemble."""
    try:
        build("asm_refused", r"""
#include "pvop_asm.h"
FUNC(kernel_main)
	PVOP_ASM_SITE(IRQ_ENABLE, CLBR_NONE)
""")
    except Failure as f:
        if any("annotation keeps" in l for l in f.lines):
            return
        raise
    raise Failure("the site assembled")


@case()
def saves_not_mirrored_detected():
    """A site with saves: the pops must undo the pushes in reverse."""
    elf = build("saves_mirror", ASM_RECORD + r"""
FUNC(kernel_main)
	FRAME_BEGIN
a:	push	%rax
	call	*pv_ops+8*PVOP_IRQ_ENABLE(%rip)
	.nops	PVOP_SLOT_IRQ_ENABLE - 6
	pop	%rcx
b:	SAVES_RECORD(a, b - a, IRQ_ENABLE)
	ASM_RECORD(a, 0, PVOP_IRQ_ENABLE, PVREG_RAX)
	FRAME_END
""")
    expect(check(elf), 1,
           ("site #0", "with saves, expected one-byte pushes",
            "found 50 ff 15"), problems=2)


@case()
def saves_record_disagreeing_with_pushes_detected():
    elf = build("saves_rec", ASM_RECORD + r"""
#include "pvop_asm.h"
FUNC(kernel_main)
	FRAME_BEGIN
a:	push	%rax
	call	*pv_ops+8*PVOP_IRQ_ENABLE(%rip)
	.nops	PVOP_SLOT_IRQ_ENABLE - 6
	pop	%rax
b:	SAVES_RECORD(a, b - a, IRQ_ENABLE)
	ASM_RECORD(a, 0, PVOP_IRQ_ENABLE, PVREG_RCX | PVREG_RAX)
c:	SITE_FLAGS(IRQ_ENABLE, 0)
	ASM_RECORD(c, PVREG_RAX, PVOP_IRQ_ENABLE, PVREG_RAX)
	FRAME_END
""")
    expect(check(elf), 1,
           ("asm site #0", "records saves 0x3, the pushes save 0x1"),
           ("asm site #1", "saves 0x1 but the site record is of kind "
            "pvop"), problems=2)

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
	FRAME_BEGIN
a:	call	*pv_ops_is_elsewhere(%rip)
	PATCH_RECORD(a, 6, pv_ops_is_elsewhere, PATCH_KIND_PVOP, 0, 0,
		     PVOP_IRQ_DISABLE, PVOP_CLOB_IRQ_DISABLE)
	FRAME_END
""", pv_ops=False)
    expect(check(elf), 2, (str(elf), "symbol pv_ops not found"))


@case()
def missing_site_table_exits_2():
    elf = build("no_sites", r"""
FUNC(kernel_main)
	ret
""")
    expect(check(elf), 2, (str(elf), "has no .patch.sites section"))


@case()
def truncated_site_table_exits_2():
    elf = build("truncated", r"""
FUNC(kernel_main)
	FRAME_BEGIN
	SITE(IRQ_DISABLE)
	.pushsection .patch.sites, "a"
	.quad 0
	.popsection
	FRAME_END
""")
    expect(check(elf), 2, (str(elf), "record section size 24 is not a "
                           "multiple of 16"))


# ------------------------------------------------------------------ main


# ------------------------------------------------------- alternative sites


def alt_site(label, orig, repls, site_len=None, flags=None, feats=None,
             orig_copy=None, reserved=0):
    """An alternative site as ALTERNATIVE/ALTERNATIVE_2 emit it
    (alt/include/alternative.h): the original padded with NOPs to
    site_len (default: the longest form), its copy and the replacements
    in .alt.repl, a struct alt_desc in .alt.desc and the record. The
    keyword arguments break one rule each."""
    n = len(repls)
    feats = feats if feats is not None else [187, 73][:n]
    out = [f"{label}:\t{orig}", f"{label}o:"]
    if site_len is not None:
        out.append(f"\t.nops {site_len} - ({label}o - {label})")
    else:  # max(0, replacement - original); a gas comparison is -1 if true
        d = f"((r{label}0e-r{label}0) - ({label}o-{label}))"
        out.append(f"\t.nops -({d} > 0) * {d}")
    out.append(f"{label}e:")
    out.append('\t.pushsection .alt.repl, "a"')
    out.append(f"c{label}:\t{orig_copy if orig_copy is not None else orig}")
    out.append(f"c{label}e:")
    for i, r in enumerate(repls):
        out += [f"r{label}{i}:\t{r}", f"r{label}{i}e:"]
    out.append("\t.popsection")
    out.append('\t.pushsection .alt.desc, "a"; .balign 4')
    l2 = f"r{label}1e - r{label}1" if n > 1 else "0"
    r2 = f"r{label}1" if n > 1 else f"r{label}0"
    out.append(f"d{label}:\t.long c{label} - .; .byte c{label}e - c{label},"
               f" r{label}0e - r{label}0, {l2}, {reserved}; "
               f".long r{label}0 - .; .long {r2} - .")
    out.append("\t.popsection")
    f1 = feats[0]
    f2 = feats[1] if len(feats) > 1 else 0
    out.append(f"\tPATCH_RECORD({label}, {label}e - {label}, d{label}, "
               f"PATCH_KIND_ALT, {flags if flags is not None else n}, 0, "
               f"{f1}, {f2})")
    return "\n".join(out) + "\n"


def alt_kernel(*sites, func="kernel_main"):
    return (f"FUNC({func})\n\tFRAME_BEGIN\n" + "".join(sites) +
            "\tFRAME_END\n")


@case()
def good_alternatives_pass():
    """One- and two-replacement sites, a RIP-relative original (its copy
    in .alt.repl has another displacement, the same target) and a
    replacement with a rel32 call out of it all pass."""
    elf = build("alt_good", alt_kernel(
        alt_site("a", "lfence; rdtsc", ["rdtscp"]),
        alt_site("b", "clflush (%rdi)", ["clflushopt (%rdi)",
                                         "clwb (%rdi)"], site_len=4),
        alt_site("c", "mov pv_ops(%rip), %rax", ["call _start"],
                 feats=[225])))
    expect_clean(check(elf), "check_sites: 3 sites")


@case()
def alt_replacement_longer_than_site_detected():
    elf = build("alt_long", alt_kernel(
        alt_site("a", "lfence; rdtsc", ["rdtscp; lfence; lfence"],
                 site_len=5)))
    a = symbols(elf)["a"]
    expect(check(elf), 1, (f"at {a:#x} (kind alt, 5 bytes)",
                           "replacement 1 is 9 bytes, longer than its "
                           "site"), problems=1)


@case()
def alt_feature_and_flags_checked():
    elf = build("alt_feat", alt_kernel(
        alt_site("a", "lfence; rdtsc", ["rdtscp"],
                 feats=[CPUFEATURE_NR]),
        alt_site("b", "lfence; rdtsc", ["rdtscp"], flags=3),
        alt_site("c", "lfence; rdtsc", ["rdtscp"], feats=[187, 73]),
        alt_site("d", "lfence; rdtsc", ["rdtscp"], reserved=1)))
    s = symbols(elf)
    expect(check(elf), 1,
           (f"at {s['a']:#x}", f"feature {CPUFEATURE_NR} is not below "
            f"CPUFEATURE_NR"),
           (f"at {s['b']:#x}", "3 replacements (flags), must be 1 or 2"),
           (f"at {s['c']:#x}", "one replacement, but a second feature "
            "(73)"),
           (f"at {s['d']:#x}", "descriptor reserved byte is 0x1"),
           problems=4)


@case()
def alt_site_not_its_original_detected():
    """The text differs from the recorded original (a stale copy), or its
    padding is not NOPs."""
    elf = build("alt_orig", alt_kernel(
        alt_site("a", "lfence; rdtsc", ["rdtscp"], orig_copy="mfence; "
                 "rdtsc"),
        alt_site("b", "rdtsc; int3; int3; int3", ["rdtscp"], site_len=5,
                 orig_copy="rdtsc")))
    s = symbols(elf)
    expect(check(elf), 1,
           (f"at {s['a']:#x}", "does not start with its original"),
           (f"at {s['b']:#x}", "padding at", "is not a NOP (int3)"),
           problems=2)


@case()
def alt_replacement_privileged_or_leaving_rel8_detected():
    """A replacement may not smuggle in a raw privileged instruction, nor
    a rel8 branch out of itself, nor bytes that are no instruction."""
    elf = build("alt_repl", alt_kernel(
        alt_site("a", "nop; nop", ["cli"]),
        alt_site("b", "nop; nop", [".byte 0xeb, 0x10"], site_len=2),
        alt_site("c", "nop; nop", [".byte 0x0f"], site_len=2)))
    s = symbols(elf)
    expect(check(elf), 1,
           (f"at {s['a']:#x}", "raw privileged instruction 'cli'"),
           (f"at {s['b']:#x}", "rel8 branch"),
           (f"at {s['c']:#x}", "replacement 1"),
           problems=3)


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

