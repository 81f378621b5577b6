#!/usr/bin/env python3
"""Checks that src/ keeps its layering: no file imports from a higher layer and no files import
each other in a cycle. Run by .ci/run; exits 1 and lists the offending imports otherwise.

    python3 .ci/check-layers.py          # the check
    python3 .ci/check-layers.py --graph  # also print every module-to-module edge

A file's layer is its top-level module (src/log/segment.rs is in `log`). LAYERS lists them
from the bottom up, as README.md's "Source layout" describes: a file may use its own layer
and the ones listed before it. Edges are the `crate::`, `super::` and `self::` paths in the
code outside comments, string literals and `#[cfg(test)]` items (tests may reach across
layers for fixtures), each resolved to the file that defines the item: a path through a
`mod.rs` that re-exports a child's item (`pub use child::Item`) counts as an edge to the
child, but a path naming another top-level module stays an edge to that module even when
the item is re-exported there from below. The resolution is lexical, not the compiler's: it is meant to be conservative on
this code base, where every import is a plain path.

ALLOWED lists the edges that still break the rule, each with the issue that removes it. The
check fails when an edge outside it appears and when an entry of it no longer occurs, so the
list can only shrink.
"""
import pathlib
import re
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Bottom to top. `config` sits above the domain modules because the broker configuration is
# assembled from their config types (GroupConfig, ShareBrokerConfig, LogConfig).
LAYERS = [
    "constants",
    "io",
    "protocol",
    "metrics",
    "log",
    "replica",
    "group",
    "share",
    "txn",
    "security",
    "cluster",
    "config",
    "shard",
    "admin_http",
    "server",
    "client",
    "bench",
    "cli",
    "lib",
]

# (from, to) file pairs, relative to src/, that may break the rule for now, each with the issue
# that removes it. Empty since issue 18 split log/partition_log.rs; keep it that way.
ALLOWED: set[tuple[str, str]] = set()


def strip(text):
    """The code of `text` with comments, string and char literals blanked out."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not _ident_before(text, i):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == "b" and text.startswith('b"', i) and not _ident_before(text, i):
            i = _skip_string(text, i + 1)
            out.append('""')
        elif c == '"':
            i = _skip_string(text, i)
            out.append('""')
        elif c == "'":
            # A char literal ('x', '\n', '\u{1F}') or a lifetime ('a): only the former closes.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                i += len(m.group(0))
                out.append("' '")
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _ident_before(text, i):
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def _skip_string(text, i):
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return i


def drop_test_items(code):
    """`code` without the items behind `#[cfg(test)]` (a `mod tests { ... }` or one line)."""
    out = []
    pos = 0
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        if m.start() < pos:
            continue
        out.append(code[pos:m.start()])
        i = m.end()
        # The item ends at the first `;` before any `{`, or at the `}` closing its first `{`.
        depth = 0
        while i < len(code):
            ch = code[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            elif ch == ";" and depth == 0:
                i += 1
                break
            i += 1
        pos = i
    out.append(code[pos:])
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    # Whitespace only matters around `as` (`Foo as Bar`); squeeze it everywhere else.
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", re.sub(r"\s+", " ", tree)).strip()
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(tree):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(tree[start:i])
            start = i + 1
    parts.append(tree[start:])
    paths = []
    for part in filter(None, parts):
        brace = part.find("{")
        if brace < 0:
            paths.append(part.split(" as ")[0].strip())
            continue
        prefix = part[:brace]
        for sub in expand_use(part[brace + 1:part.rindex("}")]):
            paths.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
    return paths


class Crate:
    def __init__(self):
        self.files = {}  # module path tuple -> file path relative to src/
        for path in sorted(SRC.rglob("*.rs")):
            rel = path.relative_to(SRC)
            if rel.as_posix() == "main.rs":
                continue  # the binary: a crate of its own, using the library as `sluice::`
            parts = list(rel.with_suffix("").parts)
            if parts[-1] in ("mod", "lib"):
                parts.pop()
            self.files[tuple(parts)] = rel.as_posix()
        self.code = {f: drop_test_items(strip((SRC / f).read_text())) for f in self.files.values()}
        self.module_of = {f: m for m, f in self.files.items()}
        self.reexports = {m: self._reexports(m) for m in self.files}

    def _uses(self, module):
        """(path, is_pub) per `use` in the module's file, paths made absolute."""
        code = self.code[self.files[module]]
        for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", code):
            for path in expand_use(m.group(2)):
                absolute = self.absolute(module, path)
                if absolute is not None:
                    yield absolute, m.group(1) is not None

    def _reexports(self, module):
        names = {}
        for path, is_pub in self._uses(module):
            if is_pub and path and path[-1] != "*":
                names[path[-1]] = path
        return names

    def absolute(self, module, path):
        """The path's segments from the crate root, or None for an external crate or std."""
        segs = [s for s in path.split("::") if s]
        if not segs:
            return None
        if segs[0] == "crate":
            return tuple(segs[1:])
        base = list(module)
        if segs[0] == "self":
            segs = segs[1:]
        elif segs[0] == "super":
            while segs and segs[0] == "super":
                if not base:
                    return None
                base.pop()
                segs = segs[1:]
        elif tuple(base + segs[:1]) in self.files:
            pass  # a child module named without `self::` (2018 uniform paths)
        else:
            return None
        return tuple(base + segs)

    def resolve(self, path, across=True, depth=0):
        """The file defining the item `path` names (through re-exports), or None. With
        `across` false, a re-export is followed only within the path's top-level module."""
        for cut in range(len(path), -1, -1):
            module = path[:cut]
            if module in self.files:
                rest = path[cut:]
                if rest and depth < 8 and rest[0] in self.reexports[module]:
                    target = self.reexports[module][rest[0]] + rest[1:]
                    if target != path and (across or target[:1] == path[:1]):
                        return self.resolve(target, across, depth + 1) or self.files[module]
                return self.files[module]
        return None

    def edges(self):
        """Per file, the files defining what it uses (for cycles), and the files it names:
        a path naming `crate::server` is an import from the server even when the item is
        re-exported there from below (for the layer rule)."""
        found, named = defaultdict(set), defaultdict(set)
        for module, file in self.files.items():
            code = self.code[file]
            paths = [p for p, _ in self._uses(module)]
            inline = re.sub(r"\buse\s+[^;]+;", "", code)
            for m in re.finditer(r"\b(?:crate|super|self)(?:::\w+)+", inline):
                absolute = self.absolute(module, m.group(0))
                if absolute is not None:
                    paths.append(absolute)
            pub_paths = self._pub_paths(module)
            for path in paths:
                for graph, across in ((found, True), (named, False)):
                    target = self.resolve(path, across)
                    if target is None or target == file:
                        continue
                    # A module's `pub use` of its own children declares its interface; the
                    # re-export is followed when resolving, so it is no dependency of its own.
                    if path in pub_paths and self._is_descendant(target, module):
                        continue
                    graph[file].add(target)
        return found, named

    def _pub_paths(self, module):
        return {p for p, is_pub in self._uses(module) if is_pub}

    def _is_descendant(self, file, module):
        other = self.module_of[file]
        return len(other) > len(module) and other[: len(module)] == module


def layer(file):
    top = pathlib.PurePosixPath(file).parts[0]
    return "lib" if top == "lib.rs" else top.removesuffix(".rs")


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan, iterative)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def main():
    crate = Crate()
    graph, named = crate.edges()
    rank = {name: i for i, name in enumerate(LAYERS)}
    unknown = sorted({layer(f) for f in crate.files.values()} - set(rank))
    if unknown:
        sys.exit(f"check-layers: add these top-level modules to LAYERS: {unknown}")

    if "--graph" in sys.argv:
        pairs = sorted({(layer(a), layer(b)) for a, bs in graph.items() for b in bs})
        for a, b in pairs:
            if a != b:
                print(f"{a} -> {b}")

    all_edges = {(a, b) for g in (graph, named) for a, bs in g.items() for b in bs}
    upward = sorted(e for e in all_edges if rank[layer(e[0])] < rank[layer(e[1])])
    kept = defaultdict(set)
    for a, bs in graph.items():
        for b in bs:
            if (a, b) not in ALLOWED:
                kept[a].add(b)
    problems = []
    for a, b in upward:
        if (a, b) not in ALLOWED:
            problems.append(f"upward import: {a} ({layer(a)}) uses {b} ({layer(b)})")
    for component in cycles(kept):
        inner = sorted((a, b) for a in component for b in kept[a] if b in component)
        problems.append(
            "file cycle: " + ", ".join(component) + "\n    edges: "
            + "\n           ".join(f"{a} -> {b}" for a, b in inner)
        )
    for a, b in sorted(set(ALLOWED) - all_edges):
        problems.append(f"stale allow-list entry (remove it from ALLOWED): {a} -> {b}")

    for problem in problems:
        print(problem)
    print(
        f"check-layers: {len(crate.files)} files, {len(all_edges)} imports, "
        f"{len(ALLOWED)} allowed exceptions, {len(problems)} problems"
    )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
