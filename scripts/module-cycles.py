#!/usr/bin/env python3
"""Prints the import cycles between the modules of a crate: the strongly connected components of the
graph whose edges are `use super::…`/`use crate::…`/`use child::…` declarations and inline
`super::x`/`crate::x`/`child::x` paths (`child` a submodule of the file's module), outside `#[cfg(test)]`
items.

    scripts/module-cycles.py server [--edges]

An edge goes to the module that defines the item: `use crate::Live` is an edge to `live` when the crate
root only re-exports `Live` (`pub use live::Live`). A module's re-exports of its own submodules' items
(`pub use envs::EnvRow` in `store`) are its public facade, not dependencies of its code, and are not
edges; re-exports of other modules' items are. Each file is one module (`a/b.rs` and `a/b/mod.rs` are
`a::b`, `lib.rs` is the root, shown as `crate`). Exits 1 when there is a cycle."""

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rustsrc import blank, inside, rust_files, test_spans  # noqa: E402


def module_of(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return ()
    return tuple(parts)


def use_trees(code):
    """Each `use` declaration's tree text, and whether it is `pub` (a re-export)."""
    for m in re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]*);", code):
        yield m.start(), m.group(2), m.group(1) is not None


def expand(tree):
    """The paths of a use tree: `a::{b, c::{d, e}}` gives a::b, a::c::d, a::c::e."""
    tree = re.sub(r"\s+as\s+[A-Za-z0-9_]+", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        brace = s.find("{")
        if brace < 0:
            yield prefix + s
            return
        head = s[:brace]
        inner = s[brace + 1:s.rfind("}")]
        for part in split_top(inner):
            yield from walk(prefix + head, part)

    return [p for p in walk("", tree) if p]


def resolve(current, segments, modules):
    """The absolute path (tuple) of `segments` written in module `current`, or None when external (a
    path starting with a child module's name is relative to `current`)."""
    if not segments:
        return None
    if current + (segments[0],) in modules:
        return current + tuple(segments)
    if segments[0] == "crate":
        return tuple(segments[1:])
    if segments[0] in ("super", "self"):
        base = list(current)
        i = 0
        while i < len(segments) and segments[i] in ("super", "self"):
            if segments[i] == "super":
                if not base:
                    return None
                base.pop()
            i += 1
        return tuple(base) + tuple(segments[i:])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crate", help="the crate directory (its src/ is read)")
    ap.add_argument("--edges", action="store_true", help="also print every edge")
    args = ap.parse_args()
    src = Path(args.crate, "src")
    codes = {}
    for path in rust_files(args.crate):
        codes[module_of(src, path)] = blank(path.read_text())
    modules = set(codes)

    # Re-exports: (module, item) -> the absolute path it re-exports.
    reexports = {}
    for mod, code in codes.items():
        tests = test_spans(code)
        for at, tree, public in use_trees(code):
            if not public or inside(tests, at):
                continue
            for p in expand(tree):
                segs = [s for s in p.split("::") if s]
                target = resolve(mod, segs, modules) or mod + tuple(segs)
                if target:
                    reexports[(mod, target[-1])] = target

    def defining_module(path, seen=0):
        """The longest prefix of `path` that is a module, following re-exports of its next segment."""
        for k in range(len(path), -1, -1):
            prefix = path[:k]
            if prefix in modules:
                if k < len(path) and (prefix, path[k]) in reexports and seen < 8:
                    return defining_module(reexports[(prefix, path[k])] + path[k + 1:], seen + 1)
                return prefix
        return None

    edges = {m: set() for m in modules}
    for mod, code in codes.items():
        tests = test_spans(code)
        paths = []
        for at, tree, public in use_trees(code):
            if inside(tests, at):
                continue
            for p in expand(tree):
                segs = [s for s in p.split("::") if s]
                target = resolve(mod, segs, modules)
                facade = public and target is not None and target[:len(mod)] == mod and len(target) > len(mod)
                if not facade:
                    paths.append(segs)
        children = "|".join(re.escape(c[-1]) for c in modules if len(c) == len(mod) + 1 and c[:-1] == mod)
        heads = "crate|super" + (f"|{children}" if children else "")
        for m in re.finditer(rf"(?<![A-Za-z0-9_:.])((?:{heads})(?:::[A-Za-z_][A-Za-z0-9_]*)+)", code):
            if inside(tests, m.start()):
                continue
            line_start = code.rfind("\n", 0, m.start()) + 1
            if re.match(r"\s*(pub(\([^)]*\))?\s+)?use\b", code[line_start:m.start()]):
                continue
            paths.append(m.group(1).split("::"))
        for segs in paths:
            target = resolve(mod, segs, modules)
            if target is None:
                continue
            target = defining_module(target)
            if target is not None and target != mod:
                edges[mod].add(target)

    name = lambda m: "::".join(m) if m else "crate"  # noqa: E731
    if args.edges:
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print(f"{name(m)} -> {name(t)}")

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    cycles = [sorted(c) for c in sccs if len(c) > 1]
    print(f"{len(modules)} modules, {sum(len(e) for e in edges.values())} edges, {len(cycles)} cycle(s)")
    for c in sorted(cycles, key=len, reverse=True):
        members = set(c)
        print(f"cycle of {len(c)}: {', '.join(name(m) for m in c)}")
        for m in c:
            inner = sorted(name(t) for t in edges[m] if t in members)
            print(f"    {name(m)} -> {', '.join(inner)}")
    sys.exit(1 if cycles else 0)


if __name__ == "__main__":
    main()
