#!/usr/bin/env python3
"""Lists Rust functions longer than a limit (default 120 lines) outside tests, by brace matching.

Usage: scripts/long-functions.py [--limit N] DIR...
Skips `#[cfg(test)]` modules, `tests/` directories and `*tests.rs` files. Strings, chars and comments
are blanked before braces are counted, so braces inside them do not count.
"""
import argparse
import pathlib
import re
import sys

FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")


def blank(text):
    """The text with comments, strings and char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif (m := re.match(r'b?r(#*)"', text[i:])):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1])); i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            out.append(" " * m.end()); i += m.end()
        else:
            out.append(c); i += 1
    return "".join(out)


def long_functions(path, limit):
    lines = blank(path.read_text()).split("\n")
    found, skip_to, pending_cfg_test = [], -1, False
    for idx, line in enumerate(lines):
        if idx <= skip_to:
            continue
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            pending_cfg_test = True
            continue
        m = FN.match(line)
        is_mod = re.match(r"\s*(pub\s+)?mod\s+\w+\s*\{", line)
        if not (m or (is_mod and pending_cfg_test)):
            if line.strip() and not line.strip().startswith("#"):
                pending_cfg_test = False
            continue
        # Find the body's closing brace (a declaration without a body ends at ';').
        depth, opened, end = 0, False, None
        for j in range(idx, len(lines)):
            for ch in lines[j]:
                if ch == "{":
                    depth += 1; opened = True
                elif ch == "}":
                    depth -= 1
                elif ch == ";" and not opened and depth == 0:
                    end = j; break
            if end is not None or (opened and depth == 0):
                end = j; break
        if end is None:
            continue
        if is_mod and pending_cfg_test:
            skip_to = end
        elif opened and not pending_cfg_test and end - idx + 1 > limit:
            found.append((end - idx + 1, m.group(1), idx + 1))
        pending_cfg_test = False
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    rows = []
    for d in args.dirs:
        for p in sorted(pathlib.Path(d).rglob("*.rs")):
            if "tests" in p.parts or p.name.endswith("tests.rs") or "target" in p.parts:
                continue
            rows += [(n, f"{p}:{line}", name) for n, name, line in long_functions(p, args.limit)]
    for n, where, name in sorted(rows, reverse=True):
        print(f"{n:5} {where} {name}")
    if not rows:
        print(f"no function over {args.limit} lines")
    return 1 if rows else 0


if __name__ == "__main__":
    sys.exit(main())
