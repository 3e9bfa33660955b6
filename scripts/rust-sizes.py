#!/usr/bin/env python3
"""Lists the source files of a crate over a line limit and its functions over a length limit, outside
`#[cfg(test)]` items and the `tests/` directory.

    scripts/rust-sizes.py server [--file-lines 600] [--fn-lines 120]

A function's length counts the lines from its `fn` keyword to its closing brace. Exits 1 when something
is over a limit."""

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rustsrc import blank, inside, matching_brace, rust_files, test_spans  # noqa: E402


def functions(code):
    """(name, first line, last line) of every function with a body, test items excluded."""
    tests = test_spans(code)
    found = []
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", code):
        if inside(tests, m.start()):
            continue
        # The body starts at the first `{` outside parentheses; a `;` first means no body.
        depth, k = 0, m.end()
        while k < len(code):
            ch = code[k]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth == 0 and ch in "{;":
                break
            k += 1
        if k >= len(code) or code[k] == ";":
            continue
        end = matching_brace(code, k)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        found.append((m.group(1), first, last))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crate", help="the crate directory (its src/ is read)")
    ap.add_argument("--file-lines", type=int, default=600)
    ap.add_argument("--fn-lines", type=int, default=120)
    args = ap.parse_args()
    over = 0
    print(f"files over {args.file_lines} lines:")
    for path in rust_files(args.crate):
        n = path.read_text().count("\n")
        if n > args.file_lines:
            print(f"  {n:5} {path}")
            over += 1
    print(f"functions over {args.fn_lines} lines (tests excluded):")
    for path in rust_files(args.crate):
        for name, first, last in functions(blank(path.read_text())):
            length = last - first + 1
            if length > args.fn_lines:
                print(f"  {length:5} {path}:{first} {name}")
                over += 1
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
