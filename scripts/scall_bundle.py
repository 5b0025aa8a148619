#!/usr/bin/env python3
"""scall_bundle.py - keep every static call inside one aligned block.

Rewrites a compiler-generated assembly file in place so that each
`call __SCT__x` / `jmp __SCT__x` (a static-call site, see
scripts/scall_sites.py) is assembled under `.bundle_align_mode N`: gas
then pads with NOPs before the instruction when it would cross a 2^N-byte
boundary, and nothing else changes (the mode is switched off again right
after it). This is the mitigation Josh Poimboeuf proposed in seed 000:

  N = 6: no site crosses a 64-byte cache line, so every site meets Andy
         Lutomirski's rule and can be inlined (doc/static-calls.md);
  N = 3: no site crosses an 8-byte word, so every rel32 lies inside one
         naturally aligned 8-byte word (the single-store condition).

Usage: scall_bundle.py N FILE.s
"""

import re
import sys

SITE = re.compile(r"^\s*(call|jmp)\s+__SCT__\w+\s*$")
CS = re.compile(r"^\s*\.byte\s+0x2e\s*$")  # static_call_cs_void()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("3", "6"):
        sys.exit("usage: scall_bundle.py 3|6 FILE.s")
    n, path = sys.argv[1], sys.argv[2]
    out, sites = [], 0
    with open(path) as f:
        for line in f:
            if SITE.match(line) and out and CS.match(out[-1]):
                # the prefix and its call are one 6-byte site
                prefix = out.pop()
                out += [f"\t.bundle_align_mode {n}\n", "\t.bundle_lock\n",
                        prefix, line, "\t.bundle_unlock\n",
                        "\t.bundle_align_mode 0\n"]
                sites += 1
            elif SITE.match(line):
                out += [f"\t.bundle_align_mode {n}\n", line,
                        "\t.bundle_align_mode 0\n"]
                sites += 1
            else:
                out.append(line)
    with open(path, "w") as f:
        f.writelines(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
