#!/usr/bin/env python3
"""Prints the import cycles between the modules (files) of each crate: the strongly connected components
of the graph whose edges are `use crate::…`, `use super::…` and path expressions `crate::a::b` naming
another module of the same crate. Test modules (`#[cfg(test)]` blocks are not parsed apart: files under
`tests/` are skipped) do not count.

Usage: scripts/import-cycles.py [crate_dir ...]   (default: every workspace member with a src/)"""

import pathlib
import re
import sys


def module_of(src: pathlib.Path, f: pathlib.Path):
    """The module path of file `f` under `src` (`lib.rs`/`main.rs` → `crate`)."""
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("lib", "main") and len(parts) == 1:
        return ("crate",)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return ("crate", *parts)


def resolve(path, here, modules):
    """The longest known module that `path` (a list of segments) names, seen from module `here`."""
    if not path:
        return None
    if path[0] == "crate":
        cur = ["crate"]
    elif path[0] == "super":
        cur = list(here)
        while path and path[0] == "super":
            cur = cur[:-1] if len(cur) > 1 else cur
            path = path[1:]
        path = ["_"] + path
    elif path[0] == "self":
        cur = list(here)
        path = ["_"] + path[1:]
    else:
        return None
    best = tuple(cur) if tuple(cur) in modules else None
    for seg in path[1:]:
        cur.append(seg)
        if tuple(cur) in modules:
            best = tuple(cur)
        else:
            break
    return best


def expand_use(text):
    """Every path a `use` tree names: `a::{b, c::d}` → [a::b, a::c::d]."""
    text = re.sub(r"\s+", "", text)
    out = []

    def walk(prefix, t):
        depth = 0
        items, cur = [], ""
        for ch in t:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            items.append(cur)
        for it in items:
            m = re.match(r"^(.*?)::\{(.*)\}$", it)
            if m:
                walk(prefix + m.group(1).split("::"), m.group(2))
            elif it.startswith("{") and it.endswith("}"):
                walk(prefix, it[1:-1])
            else:
                out.append(prefix + it.split(" as ")[0].split("as")[0].split("::"))

    walk([], text)
    return out


def graph(crate_dir: pathlib.Path):
    src = crate_dir / "src"
    files = [f for f in src.rglob("*.rs") if "bin" not in f.relative_to(src).parts]
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for m, f in modules.items():
        text = f.read_text(encoding="utf-8", errors="replace")
        text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]
        # Comments (doc links included) are not imports.
        text = re.sub(r"//[^\n]*", "", text)
        paths = []
        for u in re.findall(r"\buse\s+((?:crate|super|self)[^;]*);", text):
            paths += expand_use(u)
        for p in re.findall(r"\b((?:crate|super)(?:::\w+)+)", text):
            paths.append(p.split("::"))
        for p in paths:
            target = resolve(p, m, modules)
            if target and target != m and not (m[: len(target)] == target):
                edges[m].add(target)
    return modules, edges


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            strong(v)
    return out


def main():
    dirs = [pathlib.Path(d) for d in sys.argv[1:]] or sorted(
        p.parent for p in pathlib.Path(".").glob("*/src") if (p.parent / "Cargo.toml").exists()
    )
    total = 0
    for d in dirs:
        modules, edges = graph(d)
        for comp in sccs(list(modules), edges):
            total += 1
            names = ["::".join(c[1:]) or "crate" for c in comp]
            print(f"{d}: {len(comp)} modules: {', '.join(names)}")
    print(f"{total} cycles", file=sys.stderr)


if __name__ == "__main__":
    main()
