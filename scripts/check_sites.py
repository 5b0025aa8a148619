#!/usr/bin/env python3
"""check_sites.py - build-time checker of tinypv's pvop site table.

Reads a linked kernel with binutils (readelf for sections and symbols,
objdump for instructions) and fails, with a precise message, when:

  - a .pvop.sites record does not point at the unpatched site it describes:
    `call *pv_ops+8*op(%rip)` (ff 15 disp32) followed by NOPs only;
  - a record names an unknown op, or lies outside .text;
  - two sites overlap;
  - a site is shorter than an inline template of its op (.pvop.templates),
    or a template is longer than its op's slot (pvop_abi.h);
  - a raw privileged instruction sits outside the code allowed to hold one
    (the boot head, pvop templates, port I/O and descriptor-table helpers).

Usage: check_sites.py [--abi pvops/include/pvop_abi.h] KERNEL.elf
Exit status: 0 clean, 1 problems found, 2 could not read the input.
"""

import argparse
import os
import re
import struct
import subprocess
import sys

SITE_FMT = "<QBBHB3x"  # struct pvop_site
TEMPLATE_FMT = "<QBBHBB2x"  # struct pvop_template
RECORD_SIZE = 16

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

# Functions allowed to hold them: the boot head, the pvop templates (which
# *are* the native implementations), port I/O and descriptor loads, and the
# benchmark's hand-written raw-instruction baselines.
ALLOWED = re.compile(
    r"^(pvh_start32|xen_start|pvstub_\w+|pio_\w+|desc_\w+|bench_raw_\w+)$")

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


def read_abi(path):
    """Op numbers and slot sizes from pvop_abi.h."""
    ops, slots = {}, {}
    text = open(path).read()
    for name, val in re.findall(r"#define PVOP_SLOT_(\w+) (\d+)", text):
        slots[name] = int(val)
    for name, val in re.findall(r"#define PVOP_(\w+) (\d+)\n", text):
        if name in slots:
            ops[int(val)] = name.lower()
    nr = int(re.search(r"#define PVOP_NR (\d+)", text).group(1))
    return ops, {n.lower(): s for n, s in slots.items()}, nr


def sections(elf):
    out = {}
    for line in run(["readelf", "-SW", elf]).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+"
                     r"([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            out[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16),
                               int(m.group(4), 16))
    return out


def symbol(elf, name):
    for line in run(["readelf", "-sW", elf]).splitlines():
        f = line.split()
        if len(f) >= 8 and f[7] == name:
            return int(f[1], 16)
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


def disassemble(elf):
    """{address: (function, raw bytes, mnemonic+operands)} for .text."""
    insns, func = {}, "?"
    for line in run(["objdump", "-d", "-w", "-j", ".text", elf]).splitlines():
        m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
        if m:
            func = m.group(2)
            continue
        m = re.match(r"^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(.*)$", line)
        if m:
            raw = bytes.fromhex(m.group(2).replace(" ", ""))
            insns[int(m.group(1), 16)] = (func, raw, m.group(3).strip())
    return insns


def is_nop(raw):
    """One of the NOPs gas .nops or the patcher emits: 90 or 0f 1f /0,
    behind any number of 66 (operand size), 2e (cs) and 3e (ds) prefixes."""
    body = raw.lstrip(b"\x66\x2e\x3e")
    return body == b"\x90" or (len(body) > 2 and body[:2] == b"\x0f\x1f"
                                and (body[2] >> 3) & 7 == 0)


def fmt_bytes(b):
    return " ".join(f"{x:02x}" for x in b)


def check_sites(elf, abi):
    ops, slots, nr = read_abi(abi)
    secs = sections(elf)
    for s in (".text", ".pvop.sites"):
        if s not in secs:
            raise CheckError(f"{elf} has no {s} section")
    text_addr, text_off, text_size = secs[".text"]
    text = section_bytes(elf, secs, ".text")
    pv_ops = symbol(elf, "pv_ops")
    sites = records(section_bytes(elf, secs, ".pvop.sites"), SITE_FMT)
    templates = records(section_bytes(elf, secs, ".pvop.templates"),
                        TEMPLATE_FMT)
    insns = disassemble(elf)
    errors = []

    longest = {}
    for addr, length, op, clobbers, backend, rel32 in templates:
        name = ops.get(op, f"op{op}")
        if op >= nr:
            errors.append(f"template at {addr:#x}: unknown op {op}")
            continue
        if length > slots[name]:
            errors.append(f"template at {addr:#x} ({name}, backend "
                          f"{backend}): {length} bytes, slot is "
                          f"{slots[name]}")
        longest[op] = max(longest.get(op, 0), length)

    prev = None
    # In address order, remembering the site that ends furthest, so that
    # duplicates and overlaps are found whatever the table order.
    for i, (addr, length, op, clobbers, flags) in sorted(
            enumerate(sites), key=lambda e: (e[1][0], e[0])):
        where = f"site #{i} at {addr:#x}"
        if op >= nr:
            errors.append(f"{where}: unknown op {op} (PVOP_NR is {nr})")
            continue
        name = ops[op]
        where += f" (op {name}, {length} bytes)"
        if addr < text_addr or addr + length > text_addr + text_size:
            errors.append(f"{where}: outside .text")
            continue
        if prev and addr < prev[0] + prev[1]:
            errors.append(f"{where}: overlaps the site at {prev[0]:#x} "
                          f"({prev[1]} bytes)")
        if not prev or addr + length > prev[0] + prev[1]:
            prev = (addr, length)
        if length < 6:
            errors.append(f"{where}: shorter than the 6-byte indirect call")
            continue
        if length != slots[name]:
            errors.append(f"{where}: length differs from the {name} slot "
                          f"({slots[name]} bytes)")
        if length < longest.get(op, 0):
            errors.append(f"{where}: shorter than the {longest[op]}-byte "
                          f"inline template of {name}")
        raw = text[addr - text_addr: addr - text_addr + length]
        want = b"\xff\x15" + struct.pack(
            "<i", pv_ops + 8 * op - (addr + 6))
        if raw[:6] != want:
            errors.append(f"{where}: expected call *pv_ops+{8 * op:#x}"
                          f"(%rip) ({fmt_bytes(want)}), found "
                          f"{fmt_bytes(raw)}")
            continue
        pos = addr + 6
        while pos < addr + length:
            insn = insns.get(pos)
            if not insn or not is_nop(insn[1]):
                found = insn[2] if insn else "no instruction boundary"
                errors.append(f"{where}: padding at {pos:#x} is not a NOP "
                              f"({found})")
                break
            pos += len(insn[1])
        if pos > addr + length:
            errors.append(f"{where}: padding runs past the site end")

    raw_found = 0
    for addr in sorted(insns):
        func, raw, text_ = insns[addr]
        insn_text = PREFIX_WORDS.sub("", text_)
        mnem = insn_text.split()[0] if insn_text else ""
        if mnem in PRIVILEGED or CR_MOVE.match(insn_text):
            if not ALLOWED.match(func.split(".")[0]):
                errors.append(f"raw privileged instruction '{text_}' at "
                              f"{addr:#x} in {func} (only the boot head, "
                              f"pvop templates, pio_* and desc_* may hold "
                              f"one)")
            else:
                raw_found += 1
    return errors, len(sites), len(templates), raw_found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abi", default=os.path.join(
        here, "..", "pvops", "include", "pvop_abi.h"))
    ap.add_argument("kernel")
    args = ap.parse_args()
    try:
        errors, nsites, ntpl, nraw = check_sites(args.kernel, args.abi)
    except (CheckError, OSError) as e:
        print(f"check_sites: {args.kernel}: {e}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"check_sites: {args.kernel}: {e}", file=sys.stderr)
    if errors:
        print(f"check_sites: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_sites: {nsites} sites, {ntpl} templates ok; "
          f"{nraw} privileged instructions, all in allowed code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
