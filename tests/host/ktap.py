"""ktap.py - KTAP v1 output for the Python host tests (ktap.h's twin).

    cases = [("name", passed, skip_reason_or_None, ["diagnostic", ...])]
    sys.exit(ktap.report(cases))

Diagnostics come before their result line, as `# name: text`; a skipped
case is `ok N name # SKIP reason`. Returns the exit status: 1 if any case
failed, else 0.
"""


def report(cases):
    print("KTAP version 1")
    print(f"1..{len(cases)}")
    failed = 0
    for i, (name, ok, skip, diags) in enumerate(cases, 1):
        for d in diags:
            print(f"# {name}: {d}")
        if skip:
            print(f"ok {i} {name} # SKIP {skip}")
        elif ok:
            print(f"ok {i} {name}")
        else:
            failed += 1
            print(f"not ok {i} {name}")
    return 1 if failed else 0
