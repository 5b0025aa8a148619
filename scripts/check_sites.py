#!/usr/bin/env python3
"""check_sites.py - build-time checker of tinypv's patch site table.

Reads a linked kernel with binutils (readelf for sections and symbols,
objdump for instructions), and the record formats by name from
patch_abi.h and pvop_abi.h, and fails, with a precise message, when:

  - a .patch.sites record has kind 0, a kind not below PATCH_KIND_NR, or a
    kind this checker has no rules for (so a new kind cannot slip in
    unchecked); has a reserved byte other than 0; is longer than
    PATCH_MAX_LEN; lies outside .text; or overlaps another site of any kind;
  - a pvop record (PATCH_KIND_PVOP) names an unknown op (arg); carries a
    clobber mask (arg2) other than its op's PVOP_CLOB_<OP>; has a payload
    other than its pv_ops slot (pv_ops + 8*op); has a flag bit outside
    PVOP_SITE_FORCE_MASK | PVOP_SITE_PAD_MASK, more than one FORCE bit, or
    a pad field that names no padding style;
  - a pvop site is shorter than 6 bytes, not its op's slot, or shorter than
    an inline template of its op, or is not the unpatched site:
    `call *pv_ops+8*op(%rip)` (ff 15 disp32) then NOPs only, exactly to its
    end;
  - a pvop site comes before its function's frame set-up (the kernel is
    built with -fno-omit-frame-pointer; such a site drops a frame from
    backtraces): no `mov %rsp,%rbp` in the function at an address below
    the site. Address order approximates "on every path". A GCC `F.cold`
    fragment, entered from F, also passes when F sets up a frame. Template
    stubs and the frameless hand-written entry code (FRAME_EXEMPT) are not
    checked; `--frames=warn` makes these warnings;
  - a pvop site with saves (PATCH_KIND_PVOP_SAVES) has flags, or is not
    one-byte pushes, an unpatched site of its op, and the pops in reverse;
  - a .pvop.asm record (an assembly site's annotation, pvop_asm.h) points
    at no pvop site of its op, keeps a register its op may destroy that
    the site does not save, or names other saved registers than the
    site's pushes;
  - a static-call record (PATCH_KIND_SCALL) has nonzero arguments, a
    payload that is no key (__SCK__*), flags that are no site form; a
    trampoline record is not 8 bytes, not __SCT__<its key>, or does not
    hold `jmp *key.early(%rip); int3; int3`; a call-site record is not 5
    bytes of `call` (or, for a tail site, `jmp`) rel32 to its key's
    trampoline (a `cs call` site: 6 bytes, 2e e8); any call/jmp rel32 to
    a trampoline has no record (a stale
    table: scripts/scall_sites.py writes them after the first link); a
    trampoline has other than one record;
  - a .pvop.templates record names an unknown op, is empty, is longer than
    its op's slot, or has a reserved byte (formerly rel32) other than 0;
  - an alternative record (PATCH_KIND_ALT, alt/include/alternative.h) has
    a number of replacements (flags) other than 1 or 2, a feature (arg,
    arg2) not below CPUFEATURE_NR, a second feature or length on a
    one-replacement site, a payload that is not a 16-byte struct alt_desc
    in .alt.desc, a descriptor with a reserved byte other than 0 or forms
    outside .alt.repl, an original or replacement longer than its site, a
    replacement that does not decode into whole instructions (or leaves
    with a rel8 branch), a raw privileged instruction in a replacement
    outside the code allowed to hold one, or site text that is not its
    original (the same instructions, RIP-relative and branch targets
    compared as objdump resolves them) then NOPs exactly to its end;
  - the old .pvop.sites section is present (its records would be neither
    patched nor checked);
  - a raw privileged instruction sits outside the code allowed to hold one
    (the boot head, pvop templates, port I/O and descriptor-table helpers).

Usage: check_sites.py [--abi pvops/include/pvop_abi.h]
                      [--patch-abi patch/include/patch_abi.h]
                      [--cpufeature guest/include/cpufeature.h]
                      [--frames error|warn] KERNEL.elf
Exit status: 0 clean (warnings allowed), 1 problems found, 2 could not read
the input.
"""

import argparse
import bisect
import os
import re
import struct
import subprocess
import sys

SITE_FMT = "<iiBBBBHH"  # struct patch_site
TEMPLATE_FMT = "<QBBHBBBx"  # struct pvop_template
ALT_DESC_FMT = "<iBBBBii"  # struct alt_desc (alt/include/alternative.h)
ALT_DESC_SIZE = 16
ASM_FMT = "<iHHHHI"  # struct pvop_asm_site (pvop_asm.h)
SAVEABLE = 0xef  # one-byte push/pop: rax rcx rdx rbx rbp rsi rdi
RECORD_SIZE = 16
INDIRECT_CALL_LEN = 6  # ff 15 disp32

# Padding styles a pvop site may pin: enum patch_pad in patch/include/nops.h
# (nops, nop1, jmp, single, prefix). The pad field holds style + 1, 0 for none.
PAD_STYLES = 5

# Instructions only a kernel (or a hypervisor, for a PV guest) may execute,
# or that must go through a pvop: matched against objdump's mnemonic.
PRIVILEGED = {
    "cli", "sti", "hlt", "popf", "popfq", "popfw", "invlpg", "invd",
    "wbinvd", "rdmsr", "wrmsr", "in", "out", "ins", "insb", "insw", "insl",
    "outs", "outsb", "outsw", "outsl", "lgdt", "lidt", "ltr", "lldt", "lmsw",
    "clts", "swapgs", "cpuid",
    # Not privileged, but they read real state a PV guest must not trust:
    # pushf shows the real IF (always 1 in ring 3), not the event mask.
    "pushf", "pushfq", "pushfw", "sgdt", "sidt", "sldt", "str", "smsw",
}
CR_MOVE = re.compile(r"^mov\s+.*%(cr|db)\d")

# Functions allowed to hold them: the boot heads (pvh_ap_* is the AP's, the
# 64-bit half of entry/ap.S, which runs before the AP has a per-CPU area),
# the pvop templates (which *are* the native implementations), port I/O and
# descriptor loads, the benchmark's hand-written raw-instruction baselines,
# smp_parked_*, the loop other CPUs wait in while text is written (it must
# not run a patch site, so it serialises with a raw cpuid), and the patch
# seam's CR3 loads and serialisation around a batch (guest/patch_seam.c:
# they must not be pvop sites, which the batch may just have rewritten).
ALLOWED = re.compile(
    r"^(pvh_start32|pvh_ap_\w+|xen_start|pvstub_\w+|pio_\w+|desc_\w+|"
    r"bench_raw_\w+|smp_parked_\w+|seam_raw_\w+|uentry_syscall_native)$")

# Functions whose sites need no frame set-up: the template stubs (a
# template's bytes are copied into sites), and the hand-written entry code
# that runs with no C caller frame to link to: the boot heads, the trap and
# upcall entry (entry/traps.S), Xen's failsafe callback.
FRAME_EXEMPT = re.compile(
    r"^(pvstub_\w+|pvh_start32|xen_start|trap_stubs|xen_trap_stubs|"
    r"xen_upcall_entry|trap_common|trap_return_xen|xen_failsafe_entry|"
    r"uentry_syscall_common)$")
FRAME_SETUP = re.compile(r"^mov\s+%rsp,%rbp$")
COLD_PART = re.compile(r"^(.+)\.cold(?:\.\d+)?$")

# Prefix words objdump prints before a mnemonic.
PREFIX_WORDS = re.compile(
    r"^(?:(?:rep\w*|lock|[c-gs]s|data16|addr32|rex(?:\.\w+)?|notrack|bnd)"
    r"\s+)+")


class CheckError(Exception):
    """The input cannot be checked at all (missing file, tool, section)."""


def run(cmd):
    try:
        return subprocess.run(cmd, check=True, capture_output=True,
                              text=True).stdout
    except FileNotFoundError:
        raise CheckError(f"{cmd[0]} not found (install binutils)")
    except subprocess.CalledProcessError as e:
        raise CheckError(f"{' '.join(cmd)} failed: {e.stderr.strip()}")


# ------------------------------------------------------------- the headers


def defines(path):
    """{NAME: value text} of a header's object-like #defines."""
    out = {}
    for line in open(path).read().splitlines():
        m = re.match(r"#define\s+(\w+)[ \t]+(.+?)\s*(?:/\*.*)?$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def evaluate(defs, name, path):
    """The value of #define name: numbers and #defined names combined with
    `|`, `<<` and parentheses, which is all the ABI headers use."""
    tokens = re.findall(r"0[xX][0-9a-fA-F]+|\d+|\w+|<<|\S", defs.get(
        name, ""))
    if not tokens:
        raise CheckError(f"{path}: no #define {name}")
    pos = 0

    def atom():
        nonlocal pos
        tok = tokens[pos] if pos < len(tokens) else ""
        pos += 1
        if tok == "(":
            val = expr()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise CheckError(f"{path}: unbalanced {name}")
            pos += 1
            return val
        if re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", tok):
            return int(tok, 0)
        if re.fullmatch(r"[A-Za-z_]\w*", tok) and tok in defs:
            return evaluate(defs, tok, path)
        raise CheckError(f"{path}: cannot evaluate {name} "
                         f"({defs[name]}) at {tok!r}")

    def shift():
        nonlocal pos
        val = atom()
        while pos < len(tokens) and tokens[pos] == "<<":
            pos += 1
            val <<= atom()
        return val

    def expr():
        nonlocal pos
        val = shift()
        while pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            val |= shift()
        return val

    val = expr()
    if pos != len(tokens):
        raise CheckError(f"{path}: cannot evaluate {name} ({defs[name]})")
    return val


def read_pvop_abi(path):
    """Op numbers, slots, clobber masks and site flag fields (pvop_abi.h).
    An op is a PVOP_<NAME> <n> with a PVOP_SLOT_<NAME>."""
    defs = defines(path)
    abi = {"slots": {}, "ops": {}, "clobbers": {}}
    for name in defs:
        if name.startswith("PVOP_SLOT_"):
            op = name[len("PVOP_SLOT_"):]
            num = evaluate(defs, "PVOP_" + op, path)
            abi["ops"][num] = op.lower()
            abi["slots"][op.lower()] = evaluate(defs, name, path)
            abi["clobbers"][num] = evaluate(defs, "PVOP_CLOB_" + op, path)
    for field in ("NR", "SITE_FORCE_MASK", "SITE_PAD_MASK",
                  "SITE_PAD_SHIFT"):
        abi[field.lower()] = evaluate(defs, "PVOP_" + field, path)
    abi["reg_all"] = evaluate(defs, "PVREG_ALL", path)
    return abi


def read_patch_abi(path):
    """Record kinds, record size and longest site (patch_abi.h)."""
    defs = defines(path)
    abi = {"kinds": {}}
    for name in defs:
        m = re.fullmatch(r"PATCH_KIND_(\w+)", name)
        if m and m.group(1) != "NR":
            abi["kinds"][evaluate(defs, name, path)] = m.group(1).lower()
    abi["kind_nr"] = evaluate(defs, "PATCH_KIND_NR", path)
    abi["kinds_by_name"] = {v: n for n, v in abi["kinds"].items()}
    for form in ("TRAMP", "CALL", "TAIL", "CS"):
        abi["scall_" + form.lower()] = evaluate(defs, "PATCH_SCALL_" + form,
                                                path)
    abi["max_len"] = evaluate(defs, "PATCH_MAX_LEN", path)
    size = evaluate(defs, "PATCH_RECORD_SIZE", path)
    if size != struct.calcsize(SITE_FMT):
        raise CheckError(f"{path}: PATCH_RECORD_SIZE is {size}, this "
                         f"checker reads {struct.calcsize(SITE_FMT)}-byte "
                         f"records")
    return abi


# -------------------------------------------------------------- the kernel


def sections(elf):
    out = {}
    for line in run(["readelf", "-SW", elf]).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+"
                     r"([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            out[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16),
                               int(m.group(4), 16))
    return out


def symtab(elf):
    """[(value, size, type, name)] of the ELF's symbols."""
    out = []
    for line in run(["readelf", "-sW", elf]).splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].rstrip(":").isdigit():
            out.append((int(f[1], 16), int(f[2], 0), f[3], f[7]))
    return out


def symbol(syms, name):
    for value, _, _, sym in syms:
        if sym == name:
            return value
    raise CheckError(f"symbol {name} not found")


def section_bytes(elf, secs, name):
    if name not in secs:
        return b""
    _, off, size = secs[name]
    with open(elf, "rb") as f:
        f.seek(off)
        return f.read(size)


def records(data, fmt):
    if len(data) % RECORD_SIZE:
        raise CheckError(f"record section size {len(data)} is not a "
                         f"multiple of {RECORD_SIZE}")
    return [struct.unpack_from(fmt, data, i)
            for i in range(0, len(data), RECORD_SIZE)]


class Text:
    """The disassembled .text: instructions, the function that owns each
    address, and where each function sets up its frame."""

    def __init__(self, elf, syms):
        # A function is a FUNC symbol (to its size, or to the next one when
        # it has none); code outside every one belongs to the label before
        # it, as objdump names it.
        self.funcs = sorted((v, s, n) for v, s, t, n in syms if t == "FUNC")
        self.starts = [f[0] for f in self.funcs]
        self.labels, self.insns, self.frames = [], {}, {}
        for line in run(["objdump", "-d", "-w", "-j", ".text",
                         elf]).splitlines():
            m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
            if m:
                self.labels.append((int(m.group(1), 16), m.group(2)))
                continue
            m = re.match(r"^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(.*)$", line)
            if m:
                addr = int(m.group(1), 16)
                raw = bytes.fromhex(m.group(2).replace(" ", ""))
                func = self.owner(addr)
                self.insns[addr] = (func, raw, m.group(3).strip())
                if FRAME_SETUP.match(m.group(3).strip()):
                    self.frames.setdefault(func, addr)

    def owner(self, addr):
        """(start, name) of the function holding addr."""
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0:
            start, size, name = self.funcs[i]
            if not size or addr < start + size:
                return start, name
        i = bisect.bisect_right(self.labels, (addr, "\uffff")) - 1
        return self.labels[i] if i >= 0 else (0, "?")

    def frame_before(self, func, addr):
        """Whether func sets up its frame below addr; a cold fragment also
        counts any set-up in its parent, from which it is entered."""
        setup = self.frames.get(func)
        if setup is not None and setup < addr:
            return True
        m = COLD_PART.match(func[1])
        return bool(m) and any(f in self.frames for f in self.funcs_named(
            m.group(1)))

    def funcs_named(self, name):
        return [(v, n) for v, _, n in self.funcs if n == name]


def is_nop(raw):
    """One of the NOPs gas .nops or the patcher emits: 90 or 0f 1f /0,
    behind any number of 66 (operand size), 2e (cs) and 3e (ds) prefixes."""
    body = raw.lstrip(b"\x66\x2e\x3e")
    return body == b"\x90" or (len(body) > 2 and body[:2] == b"\x0f\x1f"
                                and (body[2] >> 3) & 7 == 0)


def fmt_bytes(b):
    return " ".join(f"{x:02x}" for x in b)


# --------------------------------------------------------------- the rules


def check_templates(templates, pv):
    """Problems of the .pvop.templates records, and each op's longest."""
    errors, longest = [], {}
    for addr, length, op, clobbers, backend, reserved, one_insn in templates:
        if op >= pv["nr"]:
            errors.append(f"template at {addr:#x}: unknown op {op}")
            continue
        name = pv["ops"][op]
        where = f"template at {addr:#x} ({name}, backend {backend})"
        if length == 0:
            errors.append(f"{where} is empty: 'nothing' is not a template")
        if length > pv["slots"][name]:
            errors.append(f"{where}: {length} bytes, slot is "
                          f"{pv['slots'][name]}")
        if reserved:
            errors.append(f"{where}: reserved byte (formerly rel32) is "
                          f"{reserved:#x}, must be 0")
        longest[op] = max(longest.get(op, 0), length)
    return errors, longest


def check_pvop_flags(where, flags, pv):
    force, pad_mask = pv["site_force_mask"], pv["site_pad_mask"]
    errors = []
    if flags & ~(force | pad_mask):
        errors.append(f"{where}: flags {flags:#x} have bits "
                      f"{flags & ~(force | pad_mask):#x} outside "
                      f"PVOP_SITE_FORCE_MASK | PVOP_SITE_PAD_MASK")
    if bin(flags & force).count("1") > 1:
        errors.append(f"{where}: flags {flags:#x} pin more than one "
                      f"dispatch mode (PVOP_SITE_FORCE_* bits "
                      f"{flags & force:#x})")
    pad = (flags & pad_mask) >> pv["site_pad_shift"]
    if pad > PAD_STYLES:
        errors.append(f"{where}: flags {flags:#x} pad field {pad} names no "
                      f"padding style (0 none, 1..{PAD_STYLES} style + 1)")
    return errors


def check_pvop_bytes(where, addr, length, op, k):
    """The unpatched site: the indirect call through op's pv_ops slot, then
    whole NOPs ending exactly at the site end."""
    raw = k["text"][addr - k["text_addr"]: addr - k["text_addr"] + length]
    want = b"\xff\x15" + struct.pack(
        "<i", k["pv_ops"] + 8 * op - (addr + INDIRECT_CALL_LEN))
    if raw[:INDIRECT_CALL_LEN] != want:
        return [f"{where}: expected call *pv_ops+{8 * op:#x}(%rip) "
                f"({fmt_bytes(want)}), found {fmt_bytes(raw)}"]
    pos = addr + INDIRECT_CALL_LEN
    while pos < addr + length:
        insn = k["code"].insns.get(pos)
        if not insn or not is_nop(insn[1]):
            found = insn[2] if insn else "no instruction boundary"
            return [f"{where}: padding at {pos:#x} is not a NOP ({found})"]
        pos += len(insn[1])
    if pos > addr + length:
        return [f"{where}: padding runs past the site end"]
    return []


def check_pvop_frame(where, addr, k):
    """The site at addr comes after its function's frame set-up (unless
    the function is exempt); counts the function as checked."""
    func = k["code"].owner(addr)
    name = func[1]
    if FRAME_EXEMPT.match(name):
        return []
    k["frame_funcs"].add(func)
    if k["code"].frame_before(func, addr):
        return []
    setup = k["code"].frames.get(func)
    cold = COLD_PART.match(name)
    if setup is not None:
        why = f"mov %rsp,%rbp at {setup:#x}"
    elif cold:
        why = f"neither {name} nor {cold.group(1)} has a mov %rsp,%rbp"
    else:
        why = f"{name} has no mov %rsp,%rbp"
    return [f"{where} in {name} comes before {name}'s frame set-up "
            f"({why})"]


def check_pvop_saves_site(i, where, rec, k):
    """A pvop site with its saves (PATCH_KIND_PVOP_SAVES): the pvop rules,
    no flags, and the pushes, site and pops (check_saves_site)."""
    return check_pvop_site(i, where, rec, k, saves=True)


def check_pvop_site(i, where, rec, k, saves=False):
    """Problems of one pvop record: (errors, frame problems)."""
    addr, payload, _, length, flags, _, op, clobbers = rec
    pv = k["pv"]
    if op >= pv["nr"]:
        return [f"site #{i} at {addr:#x}: unknown op {op} (PVOP_NR is "
                f"{pv['nr']})"], []
    name = pv["ops"][op]
    errors = []
    if clobbers != pv["clobbers"][op]:
        errors.append(f"{where}: clobber mask {clobbers:#x} is not "
                      f"PVOP_CLOB_{name.upper()} ({pv['clobbers'][op]:#x})")
    slot = k["pv_ops"] + 8 * op
    if payload != slot:
        errors.append(f"{where}: payload {payload:#x} is not its pv_ops "
                      f"slot pv_ops+{8 * op:#x} ({slot:#x})")
    frame = check_pvop_frame(where, addr, k)
    if saves:
        if flags:
            errors.append(f"{where}: flags {flags:#x}: a site with saves "
                          f"takes none")
        return errors + check_saves_site(where, addr, length, op, k), frame
    errors += check_pvop_flags(where, flags, pv)
    if length < INDIRECT_CALL_LEN:
        errors.append(f"{where}: shorter than the 6-byte indirect call")
        return errors, frame
    if length != pv["slots"][name]:
        errors.append(f"{where}: length differs from the {name} slot "
                      f"({pv['slots'][name]} bytes)")
    if length < k["longest"].get(op, 0):
        errors.append(f"{where}: shorter than the {k['longest'][op]}-byte "
                      f"inline template of {name}")
    return errors + check_pvop_bytes(where, addr, length, op, k), frame


def disasm(elf, section, all_bytes=False):
    """{address: (raw bytes, instruction text)} of one section."""
    out = {}
    for line in run(["objdump", "-D" if all_bytes else "-d", "-w", "-j",
                     section, elf]).splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(.*)$", line)
        if m:
            out[int(m.group(1), 16)] = (bytes.fromhex(
                m.group(2).replace(" ", "")), m.group(3).strip())
    return out


def walk(insns, start, length):
    """The instructions of [start, start + length): [(addr, raw, text)],
    or an error message."""
    out, pos = [], start
    while pos < start + length:
        insn = insns.get(pos)
        if not insn:
            return f"no instruction boundary at {pos:#x}"
        if "(bad)" in insn[1] or insn[1].startswith(".byte"):
            return f"undecodable bytes at {pos:#x}"
        out.append((pos,) + insn)
        pos += len(insn[0])
    if pos != start + length:
        return f"last instruction runs {pos - start - length} byte(s) " \
               f"past the end"
    return out


RIP_DISP = re.compile(r"-?0x[0-9a-f]+\(%rip\)")
REL8 = re.compile(r"^(j\w+|loop\w*|jrcxz|jecxz)\s+([0-9a-f]+)")


def same_insn(a, b):
    """The same instruction at two addresses: RIP-relative operands compared
    by the target objdump resolves (its comment), branches by target."""
    ta, tb = RIP_DISP.sub("(%rip)", a[2]), RIP_DISP.sub("(%rip)", b[2])
    return len(a[1]) == len(b[1]) and ta == tb


def check_alt_site(i, where, rec, k):
    """Problems of one alternative record: (errors, no frame problems)."""
    addr, payload, _, length, flags, _, f1, f2 = rec
    errors = []
    if flags not in (1, 2):
        errors.append(f"{where}: {flags} replacements (flags), must be 1 "
                      f"or 2")
        return errors, []
    nr = k["cpufeature_nr"]
    for f in (f1, f2):
        if f >= nr:
            errors.append(f"{where}: feature {f} is not below "
                          f"CPUFEATURE_NR ({nr})")
    desc_at, desc = k["alt_desc"]
    off = payload - desc_at
    if off < 0 or off + ALT_DESC_SIZE > len(desc) or off % 4:
        errors.append(f"{where}: payload {payload:#x} is not a descriptor "
                      f"in .alt.desc")
        return errors, []
    o, olen, l1, l2, reserved, r1, r2 = struct.unpack_from(ALT_DESC_FMT,
                                                           desc, off)
    forms = [("original", payload + o, olen),
             ("replacement 1", payload + 8 + r1, l1),
             ("replacement 2", payload + 12 + r2, l2)][:flags + 1]
    if reserved:
        errors.append(f"{where}: descriptor reserved byte is {reserved:#x}")
    if flags == 1 and (f2 or l2):
        errors.append(f"{where}: one replacement, but a second feature "
                      f"({f2}) or length ({l2})")
    repl_at, repl_len = k["alt_repl"]
    func = k["code"].owner(addr)
    for name, at, n in forms:
        if n and (at < repl_at or at + n > repl_at + repl_len):
            errors.append(f"{where}: {name} at {at:#x} is outside .alt.repl")
            return errors, []
        if n > length:
            errors.append(f"{where}: {name} is {n} bytes, longer than its "
                          f"site")
            continue
        insns = walk(k["alt_insns"], at, n)
        if isinstance(insns, str):
            errors.append(f"{where}: {name}: {insns}")
            continue
        for a, _, text in insns:
            m = REL8.match(text)
            if m and len(k["alt_insns"][a][0]) == 2 and not (
                    at <= int(m.group(2), 16) <= at + n):
                errors.append(f"{where}: {name}: rel8 branch at {a:#x} "
                              f"leaves it")
            mnem = PREFIX_WORDS.sub("", text).split()
            mnem = mnem[0] if mnem else ""
            if (mnem in PRIVILEGED or CR_MOVE.match(text)) and \
                    not ALLOWED.match(func[1].split(".")[0]):
                errors.append(f"{where}: {name}: raw privileged "
                              f"instruction '{text}' in a site of "
                              f"{func[1]}")
        if name == "original":
            site = walk({a: v[1:] for a, v in k["code"].insns.items()},
                        addr, n)
            if isinstance(site, str) or len(site) != len(insns) or not all(
                    same_insn(x, y) for x, y in zip(site, insns)):
                raw = k["text"][addr - k["text_addr"]:
                                addr - k["text_addr"] + length]
                errors.append(f"{where}: does not start with its original "
                              f"({n} bytes at {at:#x}), found "
                              f"{fmt_bytes(raw)}")
                continue
            pos = addr + n
            while pos < addr + length:
                insn = k["code"].insns.get(pos)
                if not insn or not is_nop(insn[1]):
                    found = insn[2] if insn else "no instruction boundary"
                    errors.append(f"{where}: padding at {pos:#x} is not a "
                                  f"NOP ({found})")
                    break
                pos += len(insn[1])
            else:
                if pos > addr + length:
                    errors.append(f"{where}: padding runs past the site "
                                  f"end")
    return errors, []



def parse_saves(raw, slot):
    """The saved-register mask of pushes, call, pops (or None)."""
    extra = len(raw) - slot
    if extra <= 0 or extra % 2:
        return None
    n, mask = extra // 2, 0
    for b in raw[:n]:
        r = b - 0x50
        if not 0 <= r <= 7 or not SAVEABLE & (1 << r) or mask >> r:
            return None
        mask |= 1 << r
    pops = bytes(0x58 + r for r in range(7, -1, -1) if mask & (1 << r))
    if raw[n + slot:] != pops:
        return None
    return mask


def check_saves_site(where, addr, length, op, k):
    """A site with its saves (PATCH_KIND_PVOP_SAVES): one-byte pushes, the
    ordinary site of op's slot, the pops in reverse order; the .pvop.asm
    record names the same registers."""
    name = k["pv"]["ops"][op]
    slot = k["pv"]["slots"][name]
    raw = k["text"][addr - k["text_addr"]: addr - k["text_addr"] + length]
    mask = parse_saves(raw, slot)
    if mask is None:
        return [f"{where}: with saves, expected one-byte pushes, "
                f"the {slot}-byte {name} site and the matching pops, found "
                f"{fmt_bytes(raw)}"]
    n = (length - slot) // 2
    k.setdefault("saves", {})[addr] = mask
    return check_pvop_bytes(where, addr + n, slot, op, k)


def check_asm_records(asm, sites, k):
    """The .pvop.asm records: each names a pvop site of its op, its
    annotation keeps no register the op may clobber unless the site saves
    it, and a saves site's record names the registers its pushes save."""
    pv, errors = k["pv"], []
    by_addr = {rec[0]: rec for rec in sites}
    for i, (addr, annot, op, saved, res, res2) in enumerate(asm):
        where = f"asm site #{i} at {addr:#x}"
        rec = by_addr.get(addr)
        kname = k["patch"]["kinds"].get(rec[2]) if rec else None
        if kname not in ("pvop", "pvop_saves"):
            errors.append(f"{where}: no pvop site record there")
            continue
        if rec[6] != op or op not in pv["ops"]:
            errors.append(f"{where}: op {op} differs from its site's "
                          f"({rec[6]})")
            continue
        name = pv["ops"][op]
        if res or res2:
            errors.append(f"{where}: reserved fields are not 0")
        if annot & ~pv["reg_all"]:
            errors.append(f"{where}: annotation {annot:#x} names rsp or "
                          f"bits past r11")
        clob = pv["clobbers"][op]
        if clob & ~(annot | saved):
            errors.append(f"{where} ({name}): annotation {annot:#x} keeps "
                          f"{clob & ~(annot | saved):#x}, which "
                          f"PVOP_CLOB_{name.upper()} ({clob:#x}) may "
                          f"destroy, and the site saves none of it")
        has_saves = kname == "pvop_saves"
        if has_saves != bool(saved):
            errors.append(f"{where} ({name}): saves {saved:#x} but the "
                          f"site record is of kind {kname}")
        elif saved and k.get("saves", {}).get(addr) != saved:
            errors.append(f"{where} ({name}): records saves {saved:#x}, "
                          f"the pushes save "
                          f"{k.get('saves', {}).get(addr, 0):#x}")
    return errors


SCALL_TRAMP_LEN = 8  # jmp *key.early(%rip); int3; int3
SCALL_CALL_LEN = 5  # call/jmp rel32
SCALL_KEY_EARLY = 8  # offsetof(struct static_call_key, early)


def check_scall_site(i, where, rec, k):
    """A static-call record: the key's trampoline as assembled, or a call
    (tail jmp) rel32 to the trampoline of the key it names."""
    addr, payload, _, length, flags, _, arg, arg2 = rec
    sc, pa, errors = k["scall"], k["patch"], []
    raw = k["text"][addr - k["text_addr"]:][:length]
    if arg or arg2:
        errors.append(f"{where}: arguments {arg}, {arg2} must be 0")
    key = sc["key_at"].get(payload)
    if key is None:
        return errors + [f"{where}: payload {payload:#x} is no static-call "
                         f"key (__SCK__*)"], []
    if flags == pa["scall_tramp"]:
        want = bytes([0xff, 0x25]) + (
            payload + SCALL_KEY_EARLY - (addr + 6)).to_bytes(
                4, "little", signed=True) + b"\xcc\xcc"
        if length != SCALL_TRAMP_LEN:
            errors.append(f"{where}: a trampoline is {SCALL_TRAMP_LEN} "
                          f"bytes")
        elif sc["tramps"].get(key) != addr:
            errors.append(f"{where}: is not __SCT__{key}, the trampoline "
                          f"of its key __SCK__{key}")
        elif raw != want:
            errors.append(f"{where}: holds {fmt_bytes(raw)}, not the "
                          f"unpatched trampoline {fmt_bytes(want)}")
        return errors, []
    if flags not in (pa["scall_call"], pa["scall_tail"], pa["scall_cs"]):
        return errors + [f"{where}: flags {flags} are no static-call site "
                         f"form"], []
    op = 0xe9 if flags == pa["scall_tail"] else 0xe8
    pre = b"\x2e" if flags == pa["scall_cs"] else b""
    want_len = SCALL_CALL_LEN + len(pre)
    if length != want_len:
        return errors + [f"{where}: a {'cs ' if pre else ''}call site is "
                         f"{want_len} bytes"], []
    target = addr + length + int.from_bytes(raw[length - 4:length],
                                            "little", signed=True)
    if raw[:len(pre) + 1] != pre + bytes([op]) or \
            target != sc["tramps"].get(key):
        errors.append(f"{where}: holds {fmt_bytes(raw)}, not a "
                      f"{'cs call' if pre else 'call' if op == 0xe8 else 'jmp'}"
                      f" rel32 to __SCT__{key}")
    return errors, []


def check_scall_complete(sites, k):
    """Every call/jmp rel32 to a trampoline is recorded, and every
    trampoline has exactly one record."""
    sc, pa, errors = k["scall"], k["patch"], []
    scall = pa["kinds_by_name"].get("scall")
    recorded = {r[0] for r in sites if r[2] == scall
                and r[4] != pa["scall_tramp"]}
    tramp_recs = [r[0] for r in sites if r[2] == scall
                  and r[4] == pa["scall_tramp"]]
    for addr, kind, name in sc["calls"]:
        if addr not in recorded:
            errors.append(f"static call at {addr:#x} ({kind} to "
                          f"__SCT__{name}) has no site record: the site "
                          f"table is stale (rebuild; scripts/"
                          f"scall_sites.py)")
    for name, addr in sorted(sc["tramps"].items()):
        n = tramp_recs.count(addr)
        if n != 1:
            errors.append(f"trampoline __SCT__{name} has {n} records, "
                          f"not 1")
    return errors


def check_test_site(i, where, rec, k):
    """The live suite's sites: call/cs call rel32 to the payload, or nop2."""
    addr, payload, _, length, flags, _, arg, arg2 = rec
    off = addr - k["text_addr"]
    raw = k["text"][off:off + length]
    if flags or arg or arg2:
        return [f"{where}: a test site has no flags or arguments"], []
    if length == 2:
        ok = raw == b"\x66\x90"
    elif length in (5, 6):
        p = length - 5
        rel = struct.unpack("<i", raw[p + 1:p + 5])[0]
        ok = ((p == 0 or raw[0] == 0x2e) and raw[p] == 0xe8
              and addr + length + rel == payload)
    else:
        ok = False
    if not ok:
        return [f"{where}: not a call (or cs call) to its payload "
                f"{payload:#x}, nor a 2-byte nop: {fmt_bytes(raw)}"], []
    return [], []


# The rules of each kind, by its name in patch_abi.h.
KIND_RULES = {"pvop": check_pvop_site, "pvop_saves": check_pvop_saves_site,
              "alt": check_alt_site,
              "scall": check_scall_site, "test": check_test_site}


def describe(i, rec, k):
    """How messages name a record: its op when it is a pvop site."""
    addr, _, kind, length, _, _, arg, _ = rec
    kname = k["patch"]["kinds"][kind]
    what = f"kind {kname}"
    if kname in ("pvop", "pvop_saves") and arg in k["pv"]["ops"]:
        what = f"op {k['pv']['ops'][arg]}"
    return f"site #{i} at {addr:#x} ({what}, {length} bytes)"


def check_records(sites, k):
    """Problems of every .patch.sites record: (errors, frame problems)."""
    pa, errors, frames = k["patch"], [], []
    text_end = k["text_addr"] + len(k["text"])
    prev = None
    # In address order, remembering the site that ends furthest, so that
    # duplicates and overlaps are found whatever the table order.
    for i, rec in sorted(enumerate(sites), key=lambda e: (e[1][0], e[0])):
        addr, _, kind, length, _, reserved, _, _ = rec
        if kind == 0 or kind >= pa["kind_nr"] or kind not in pa["kinds"]:
            errors.append(f"site #{i} at {addr:#x}: invalid kind {kind} "
                          f"(the kinds are 1..{pa['kind_nr'] - 1})")
            continue
        kname = pa["kinds"][kind]
        where = describe(i, rec, k)
        if kname not in KIND_RULES:
            errors.append(f"{where}: kind {kind} ({kname}) has no checker "
                          f"rules in this build")
        if reserved:
            errors.append(f"{where}: reserved byte is {reserved:#x}, must "
                          f"be 0")
        if length > pa["max_len"]:
            errors.append(f"{where}: longer than PATCH_MAX_LEN "
                          f"({pa['max_len']} bytes)")
        if addr < k["text_addr"] or addr + length > text_end:
            errors.append(f"{where}: outside .text")
            continue
        if prev and addr < prev[0] + prev[1]:
            errors.append(f"{where}: overlaps the site at {prev[0]:#x} "
                          f"({prev[1]} bytes)")
        if not prev or addr + length > prev[0] + prev[1]:
            prev = (addr, length)
        if kname in KIND_RULES:
            e, f = KIND_RULES[kname](i, where, rec, k)
            errors += e
            frames += f
    return errors, frames


def check_privileged(text):
    errors, allowed = [], 0
    for addr in sorted(text.insns):
        (_, func), _, text_ = text.insns[addr]
        insn_text = PREFIX_WORDS.sub("", text_)
        mnem = insn_text.split()[0] if insn_text else ""
        if mnem in PRIVILEGED or CR_MOVE.match(insn_text):
            if not ALLOWED.match(func.split(".")[0]):
                errors.append(f"raw privileged instruction '{text_}' at "
                              f"{addr:#x} in {func} (only the boot head, "
                              f"pvop templates, pio_*, desc_*, bench_raw_* "
                              f"and the patch seam's seam_raw_* may hold "
                              f"one)")
            else:
                allowed += 1
    return errors, allowed


def site_records(elf, secs):
    """The records with their addresses and payloads made absolute."""
    base = secs[".patch.sites"][0]
    out = []
    for n, rec in enumerate(records(
            section_bytes(elf, secs, ".patch.sites"), SITE_FMT)):
        at = base + n * RECORD_SIZE
        out.append((at + rec[0], at + 4 + rec[1]) + rec[2:])
    return out


def scall_context(text, syms):
    """Trampolines, keys, and every call/jmp rel32 to a trampoline."""
    import scall_sites
    tramps, keys, calls, _ = scall_sites.find_in(text, syms)
    return {"tramps": tramps, "key_at": {v: n for n, v in keys.items()},
            "calls": calls}


def check_sites(elf, abi, patch_abi, cpufeature):
    """(errors, frame problems, counts) of the kernel at elf."""
    k = {"pv": read_pvop_abi(abi), "patch": read_patch_abi(patch_abi),
         "cpufeature_nr": evaluate(defines(cpufeature), "CPUFEATURE_NR",
                                   cpufeature)}
    secs = sections(elf)
    for s in (".text", ".patch.sites"):
        if s not in secs:
            raise CheckError(f"{elf} has no {s} section")
    syms = symtab(elf)
    k["text_addr"] = secs[".text"][0]
    k["text"] = section_bytes(elf, secs, ".text")
    k["pv_ops"] = symbol(syms, "pv_ops")
    sites = site_records(elf, secs)
    templates = records(section_bytes(elf, secs, ".pvop.templates"),
                        TEMPLATE_FMT)
    k["code"] = Text(elf, syms)
    k["alt_desc"] = (secs.get(".alt.desc", (0,))[0],
                     section_bytes(elf, secs, ".alt.desc"))
    if ".alt.repl" in secs:
        k["alt_repl"] = (secs[".alt.repl"][0], secs[".alt.repl"][2])
        k["alt_insns"] = disasm(elf, ".alt.repl", all_bytes=True)
    else:
        k["alt_repl"], k["alt_insns"] = (0, 0), {}
    k["frame_funcs"] = set()
    k["scall"] = scall_context(k["code"], syms)

    errors, k["longest"] = check_templates(templates, k["pv"])
    if ".pvop.sites" in secs:
        errors.append(".pvop.sites is present: records in the old format "
                      "are neither patched nor checked")
    e, frames = check_records(sites, k)
    errors += e
    asm = []
    if ".pvop.asm" in secs:
        base = secs[".pvop.asm"][0]
        for n, rec in enumerate(records(
                section_bytes(elf, secs, ".pvop.asm"), ASM_FMT)):
            asm.append((base + 16 * n + rec[0],) + rec[1:])
    errors += check_asm_records(asm, sites, k)
    errors += check_scall_complete(sites, k)
    e, nraw = check_privileged(k["code"])
    errors += e
    counts = {"sites": len(sites), "templates": len(templates),
              "asm": len(asm), "saves": len(k.get("saves", {})),
              "functions": len(k["frame_funcs"]), "privileged": nraw}
    return errors, frames, counts


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abi", default=os.path.join(
        here, "..", "pvops", "include", "pvop_abi.h"),
        help="pvop_abi.h (default: %(default)s)")
    ap.add_argument("--patch-abi", default=os.path.join(
        here, "..", "patch", "include", "patch_abi.h"),
        help="patch_abi.h (default: %(default)s)")
    ap.add_argument("--cpufeature", default=os.path.join(
        here, "..", "guest", "include", "cpufeature.h"),
        help="cpufeature.h (default: %(default)s)")
    ap.add_argument("--frames", choices=("error", "warn"), default="error",
                    help="a site before its function's frame set-up is an "
                    "error (default) or a warning")
    ap.add_argument("kernel")
    args = ap.parse_args()
    try:
        errors, frames, n = check_sites(args.kernel, args.abi,
                                        args.patch_abi, args.cpufeature)
    except (CheckError, OSError) as e:
        print(f"check_sites: {args.kernel}: {e}", file=sys.stderr)
        return 2
    if args.frames == "error":
        errors += frames
        frames = []
    for e in errors:
        print(f"check_sites: {args.kernel}: {e}", file=sys.stderr)
    for w in frames:
        print(f"check_sites: {args.kernel}: warning: {w}", file=sys.stderr)
    if errors:
        print(f"check_sites: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    warned = f", {len(frames)} site(s) before it (warnings)" if frames else ""
    print(f"check_sites: {n['sites']} sites, {n['templates']} templates ok; "
          f"frame set-up checked in {n['functions']} function(s){warned}; "
          f"{n['privileged']} privileged instructions, all in allowed code; "
          f"{n['asm']} assembly sites, {n['saves']} with saves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
