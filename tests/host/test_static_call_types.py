#!/usr/bin/env python3
"""Compile-time type checks of static calls (scall/include/static_call.h).

What: each case compiles a few lines that define a key of type
int(int) and use it, with gcc -fsyntax-only and the kernel's warning
flags, and checks that the compiler accepts what must compile and
rejects, with the header's own message where it has one, what must not:
an update to a function of another type, a call with the wrong
arguments.

Why: static_call_update() is the only way to change where every caller
of a key goes; a target of the wrong type would be called with the
caller's arguments and read as the caller's return type. The check is a
_Static_assert in the macro, so only a compiler run can show it works.

Output: KTAP v1, one line per case. Run: python3
tests/host/test_static_call_types.py (needs gcc).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["gcc", "-std=gnu11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
         "-ffreestanding", "-I", str(ROOT / "scall" / "include"),
         "-I", str(ROOT / "patch" / "include")]

PRELUDE = """
#include <stddef.h>
#include "static_call.h"
int f(int x);
int g(int x);
long h(long x);
int two(int x, int y);
void v(int x);
DEFINE_STATIC_CALL(k, f);
int (*fp)(int) = g;
"""

MESSAGE = "type is not k"  # the _Static_assert's text (gcc escapes its quote)

# (name, statement in a function body, must compile, message if not)
CASES = [
    ("same_type_compiles", "static_call_update(k, g);", True, None),
    ("pointer_of_same_type_compiles", "static_call_update(k, fp);", True,
     None),
    ("null_compiles", "static_call_update(k, NULL);", True, None),
    ("return0_compiles", "static_call_update(k, static_call_ret0(k));",
     True, None),
    ("call_compiles", "int r = static_call(k)(1); (void)r;", True, None),
    ("other_return_type_refused", "static_call_update(k, h);", False,
     MESSAGE),
    ("other_arity_refused", "static_call_update(k, two);", False, MESSAGE),
    ("void_function_refused", "static_call_update(k, v);", False, MESSAGE),
    ("wrong_call_arguments_refused", "static_call(k)(1, 2);", False,
     "too many arguments"),
]


def run_case(tmp, name, stmt, ok, message):
    src = Path(tmp) / f"{name}.c"
    src.write_text(PRELUDE + f"void t(void) {{ {stmt} }}\n")
    r = subprocess.run(FLAGS + [str(src)], capture_output=True, text=True,
                       env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    if ok and r.returncode:
        return [f"did not compile: {stmt}"] + r.stderr.splitlines()[:8]
    if not ok and not r.returncode:
        return [f"compiled, but must not: {stmt}"]
    if not ok and message not in r.stderr:
        return [f"refused without '{message}':"] + r.stderr.splitlines()[:8]
    return []


def main():
    print("KTAP version 1")
    print(f"1..{len(CASES)}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="test_static_call_types.") as tmp:
        for n, (name, stmt, ok, message) in enumerate(CASES, 1):
            problems = run_case(tmp, name, stmt, ok, message)
            print(f"{'not ok' if problems else 'ok'} {n} {name}")
            for line in problems:
                print(f"# {name}: {line}")
            failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
