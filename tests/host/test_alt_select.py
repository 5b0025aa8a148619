#!/usr/bin/env python3
"""Tests of ALTERNATIVE_SELECT (alt/include/alternative.h) at compile time.

What: compiles small C files with the kernel's flags and include paths:
  - two functions of the same type: compiles, and the selector is exactly
    `lea orig(%rip)`, `lea alt(%rip)`, then a 3-byte NOP (the site), with
    one PATCH_KIND_ALT record whose feature is the condition;
  - functions of different types (int(int) vs int(long), int(int) vs
    void(int), a function vs an object): must NOT compile, and gcc must
    say "ALTERNATIVE_SELECT(sel): ... have different types".
Why: the select hands back a function pointer of orig's type; if alt had
another type, callers would call it with the wrong convention, silently.
Output: KTAP v1; exit 0 when every case passes.
Run: python3 tests/host/test_alt_select.py   (needs gcc and objdump)
"""

import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
         "-ffreestanding", "-fno-pic", "-fno-pie", "-mcmodel=kernel",
         "-mno-red-zone", "-I", str(ROOT / "alt/include"),
         "-I", str(ROOT / "guest/include"), "-I", str(ROOT / "patch/include"),
         "-c"]
ERMS = int(re.search(r"#define X86_FEATURE_ERMS (\d+)",
                     (ROOT / "guest/include/cpufeature.h").read_text())[1])
KIND_ALT = int(re.search(r"#define PATCH_KIND_ALT (\d+)",
                         (ROOT / "patch/include/patch_abi.h").read_text())[1])
WORK = Path(tempfile.mkdtemp(prefix="test_alt_select."))

GOOD = """
#include "alternative.h"
int f_orig(int x) { return x + 1; }
int f_alt(int x) { return x + 2; }
ALTERNATIVE_SELECT(sel, f_orig, f_alt, X86_FEATURE_ERMS)
__attribute__((noinline)) void *get(void) { return (void *)sel(); }
"""

BAD = {
    "int(int) vs int(long)": ("int f_orig(int x) { return x; }",
                              "int f_alt(long x) { return (int)x; }"),
    "int(int) vs void(int)": ("int f_orig(int x) { return x; }",
                              "void f_alt(int x) { (void)x; }"),
    "function vs object": ("int f_orig(int x) { return x; }",
                           "int f_alt;"),
}


def compile_c(name, text):
    src, obj = WORK / f"{name}.c", WORK / f"{name}.o"
    src.write_text(text)
    r = subprocess.run(FLAGS + ["-o", str(obj), str(src)],
                       capture_output=True, text=True)
    return r, obj


def good_compiles_to_lea_lea_nop():
    r, obj = compile_c("good", GOOD)
    if r.returncode:
        return [f"gcc failed: {r.stderr.strip()}"]
    dis = subprocess.run(["objdump", "-d", "-r", "-w", str(obj)],
                         capture_output=True, text=True, check=True).stdout
    body = dis.split("<get>:")[1].split("\n\n")[0].splitlines()
    insns = [l.split("\t") for l in body if re.match(r"^\s+[0-9a-f]+:\t", l)]
    text = [i[2].strip() if len(i) > 2 else "" for i in insns]
    relocs = [l for l in body if "R_X86_64_PC32" in l]
    out = []
    if len(text) < 3 or not (text[0].startswith("lea") and
                             text[1].startswith("lea") and
                             text[2].startswith("nop") and
                             len(bytes.fromhex(insns[2][1].replace(" ", "")))
                             == 3):
        out.append("selector is not lea; lea; 3-byte nop: " + repr(text))
    if not (len(relocs) == 2 and "f_orig" in relocs[0]
            and "f_alt" in relocs[1]):
        out.append("lea targets are not f_orig, f_alt: " + repr(relocs))
    sec = subprocess.run(["objcopy", "-O", "binary", "--only-section",
                          ".patch.sites", str(obj), str(WORK / "s.bin")],
                         capture_output=True, text=True)
    data = (WORK / "s.bin").read_bytes() if not sec.returncode else b""
    if len(data) != 16:
        out.append(f".patch.sites holds {len(data)} bytes, want one record")
    else:
        _, _, kind, length, flags, _, arg, arg2 = struct.unpack(
            "<iiBBBBHH", data)
        if (kind, length, flags, arg, arg2) != (KIND_ALT, 3, 1, ERMS, 0):
            out.append(f"record kind {kind} len {length} flags {flags} "
                       f"arg {arg} arg2 {arg2}, want {KIND_ALT} 3 1 {ERMS} 0")
    return out


def bad_types_refused(what, orig, alt):
    r, _ = compile_c("bad", f'#include "alternative.h"\n{orig}\n{alt}\n'
                     f"ALTERNATIVE_SELECT(sel, f_orig, f_alt, 0)\n"
                     f"void *get(void) {{ return (void *)sel(); }}\n")
    if r.returncode == 0:
        return [f"{what}: compiled, must not"]
    if "ALTERNATIVE_SELECT(sel): f_orig and f_alt have different types" \
            not in r.stderr:
        return [f"{what}: refused, but not by the type check:",
                *r.stderr.strip().splitlines()[:6]]
    return []


def main():
    cases = [("good_compiles_to_lea_lea_nop", good_compiles_to_lea_lea_nop)]
    for what, (o, a) in BAD.items():
        slug = re.sub(r"\W+", "_", what)
        cases.append((f"refused_{slug}",
                      lambda w=what, o=o, a=a: bad_types_refused(w, o, a)))
    print("KTAP version 1")
    print(f"1..{len(cases)}")
    failed = 0
    for n, (name, fn) in enumerate(cases, 1):
        problems = fn()
        print(f"{'not ok' if problems else 'ok'} {n} {name}")
        for p in problems:
            print(f"# {name}: {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
