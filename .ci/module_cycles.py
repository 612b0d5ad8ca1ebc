#!/usr/bin/env python3
"""Fails if two of the crate's top-level modules import each other,
directly or through others.

A module is a file or a folder directly under src/ (lib.rs is the root and
only re-exports). An import is any `crate::` path outside comments and
test modules; a name re-exported by lib.rs counts as an import of the
module it comes from. Prints the import graph, then any cycle.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"


def module_of(path):
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def code_of(path):
    text = path.read_text()
    # Test modules may reach anywhere; they are not the structure.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    return "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("//")
    )


def top_names(group):
    """The first identifier of each item of a `{...}` use group."""
    names, depth, item = [], 0, ""
    for ch in group:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            names.append(item)
            item = ""
        else:
            item += ch
    names.append(item)
    return [m.group(0) for n in names if (m := re.match(r"\s*\w+", n))]


def brace_group(text, start):
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return ""


def referenced(code):
    names = []
    for m in re.finditer(r"crate::(\{|\w+)", code):
        if m.group(1) == "{":
            names += [n.strip() for n in top_names(brace_group(code, m.start(1)))]
        else:
            names.append(m.group(1))
    return names


def main():
    modules = {module_of(p) for p in SRC.iterdir() if p.name != "lib.rs"}
    # Names lib.rs re-exports, and the module each comes from.
    reexports = {}
    lib = code_of(SRC / "lib.rs")
    for m in re.finditer(r"pub use (\w+)::([^;]+);", lib):
        module, rest = m.group(1), m.group(2)
        group = rest[rest.index("{") :] if "{" in rest else None
        items = top_names(brace_group(group, 0)) if group else [rest.split("::")[-1]]
        for item in items:
            reexports[item.strip()] = module
    graph = {m: set() for m in modules}
    for path in SRC.rglob("*.rs"):
        if path.name == "lib.rs" and path.parent == SRC:
            continue
        here = module_of(path)
        for name in referenced(code_of(path)):
            there = name if name in modules else reexports.get(name)
            if there and there != here:
                graph[here].add(there)
    for module in sorted(graph):
        print(f"{module} -> {', '.join(sorted(graph[module])) or '(nothing)'}")
    # Depth-first search for a cycle.
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    for cycle in cycles:
        print("cycle: " + " -> ".join(cycle), file=sys.stderr)
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
