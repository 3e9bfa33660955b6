#!/usr/bin/env python3
"""The size rules of docs/ARCHITECTURE.md: no Rust source file over 600 lines, no function over 120 lines
outside tests (test files, `#[cfg(test)]` modules and `#[test]` functions) and generated tables.

Usage: scripts/house-check.py [--fn-limit N] [--file-limit N] [paths...]; exit 1 when a rule is broken."""

import argparse
import pathlib
import re
import subprocess
import sys

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def strip(line, state):
    """The line without comments, string and char literals (so braces inside them do not count)."""
    out = []
    i = 0
    while i < len(line):
        c = line[i]
        if state["block"]:
            if line.startswith("*/", i):
                state["block"] -= 1
                i += 2
            elif line.startswith("/*", i):
                state["block"] += 1
                i += 2
            else:
                i += 1
            continue
        if state["raw"] is not None:
            end = '"' + "#" * state["raw"]
            j = line.find(end, i)
            if j < 0:
                return "".join(out)
            state["raw"] = None
            i = j + len(end)
            continue
        if state["str"]:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                state["str"] = False
            i += 1
            continue
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state["block"] += 1
            i += 2
            continue
        m = re.match(r'b?r(#*)"', line[i:])
        if m:
            state["raw"] = len(m.group(1))
            i += len(m.group(0))
            continue
        if c == '"':
            state["str"] = True
            i += 1
            continue
        if c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|[^\\'])'", line[i:])
            if m:
                i += len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out)


def functions(path):
    """(name, first line, length) of every function outside test code in `path`."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    state = {"block": 0, "str": False, "raw": None}
    code = [strip(l, state) for l in lines]
    result = []
    skip_until = -1
    i = 0
    pending_test = False
    while i < len(code):
        line = code[i]
        if i <= skip_until:
            i += 1
            continue
        if re.search(r"#\[(cfg\(test\)|test|tokio::test|proptest)", line):
            pending_test = True
        m = FN.match(line) or (re.match(r"^\s*mod\s+\w+\s*\{", line) if pending_test else None)
        if m:
            depth = 0
            opened = False
            j = i
            while j < len(code):
                for ch in code[j]:
                    if ch == "{":
                        depth += 1
                        opened = True
                    elif ch == "}":
                        depth -= 1
                if opened and depth <= 0:
                    break
                if not opened and code[j].rstrip().endswith(";"):
                    break
                j += 1
            if pending_test:
                skip_until = j
            elif FN.match(line) and opened:
                result.append((FN.match(line).group(7), i + 1, j - i + 1))
                # nested functions are counted with their parent
                skip_until = j
            pending_test = False
        elif line.strip() and not line.strip().startswith("#"):
            pending_test = False if not re.search(r"#\[", line) else pending_test
        i += 1
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fn-limit", type=int, default=120)
    ap.add_argument("--file-limit", type=int, default=600)
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args()
    files = a.paths or subprocess.run(
        ["git", "ls-files", "*.rs"], capture_output=True, text=True, check=True
    ).stdout.split()
    broken = 0
    for f in files:
        p = pathlib.Path(f)
        n = len(p.read_text(encoding="utf-8", errors="replace").splitlines())
        if n > a.file_limit:
            print(f"{f}: {n} lines (limit {a.file_limit})")
            broken += 1
        if "/tests/" in f or f.startswith("tests/") or "/benches/" in f:
            continue
        for name, line, length in functions(p):
            if length > a.fn_limit:
                print(f"{f}:{line}: fn {name}: {length} lines (limit {a.fn_limit})")
                broken += 1
    print(f"{broken} over the limits", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
