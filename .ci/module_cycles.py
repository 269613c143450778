#!/usr/bin/env python3
"""Lists each crate's modules and what they import (`crate::module` paths, `use super::`
from a submodule counts as its parent), and fails when two modules import each other,
directly or around a circle. Cargo already refuses circles between crates.

    python3 .ci/module_cycles.py [--graph]

Also fails when a library crate names a plan's pack (`packs/`): only the CLI wires packs in.
--graph prints every crate's workspace dependencies and every module's imports (the layer
picture). Exits 1 on a circle or a pack named.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(src):
    """Top-level module name -> the text of its files (a folder module includes its files)."""
    out = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src)
        if rel.parts[0] in ("main.rs", "lib.rs", "bin"):
            continue
        name = rel.parts[0].removesuffix(".rs")
        out[name] = out.get(name, "") + f.read_text()
    return out


def imports(text, names, own):
    found = set()
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", text):
        if m.group(1) in names and m.group(1) != own:
            found.add(m.group(1))
    return found


def circles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def manifests():
    """The workspace's crates' manifests (not the build folder's, not the fuzz workspace)."""
    for manifest in sorted(ROOT.glob("**/Cargo.toml")):
        rel = manifest.relative_to(ROOT).parts
        if rel[0] not in ("target", "fuzz") and (manifest.parent / "src").is_dir():
            yield manifest


def crate_deps(manifest):
    """(crate name, the workspace crates it depends on, dev-dependencies left out)."""
    text = manifest.read_text()
    name = re.search(r'^name = "([^"]+)"', text, re.M).group(1)
    deps = set()
    section = None
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip()
        elif section in ("[dependencies]", "[build-dependencies]"):
            m = re.match(r"(blast-[a-z0-9-]+)", line)
            if m:
                deps.add(m.group(1))
    return name, deps


def main():
    show = "--graph" in sys.argv
    bad = False
    crates = dict(crate_deps(m) for m in manifests())
    packs = {crate_deps(m)[0] for m in manifests() if "packs" in m.relative_to(ROOT).parts}
    if show:
        print("crates:")
        for name in sorted(crates):
            print(f"  {name} -> {', '.join(sorted(crates[name])) or '-'}")
    for name, deps in sorted(crates.items()):
        if name not in ("blast", "blast-benches") and name not in packs and deps & packs:
            bad = True
            print(f"{name} names a pack ({', '.join(sorted(deps & packs))}): only the CLI wires packs in")
    for manifest in manifests():
        src = manifest.parent / "src"
        mods = modules(src)
        graph = {m: imports(t, mods, m) for m, t in mods.items()}
        crate = manifest.parent.relative_to(ROOT)
        if show:
            print(f"{crate}:")
            for m in sorted(graph):
                print(f"  {m} -> {', '.join(sorted(graph[m])) or '-'}")
        for c in circles(graph):
            bad = True
            print(f"{crate}: modules import each other in a circle: {' <-> '.join(c)}")
    if not bad:
        print("no module imports another that imports it back, in any crate")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
