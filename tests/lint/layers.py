#!/usr/bin/env python3
"""layers.py: the source tree's structural rules, checked without a build.

1. Layers: each source folder belongs to one layer and may include headers of its own
   layer and of the layers below it only (the same table as CMakeLists.txt's kd_layer
   calls; the build enforces it with include views, this check names the offending line).
   The configuration layer may include kernels/kinds.h and nothing else of kernels/.
2. No include cycle between files (a header graph that is a DAG).
3. No "../" in an #include, and every project include names its path from the root.
4. No function longer than 100 lines outside tests/ (counted from the line that opens the
   body to the closing brace).

Usage: layers.py [--no-length] [SOURCE_ROOT]. Prints one line per violation and exits 1
if any.
"""
import os
import re
import sys

# layer -> (folders, layers it may include). Lower layers first.
LAYERS = {
    "kernels": (["kernels", "kernels/cpu", "kernels/cuda"], []),
    "base": (["runtime/base"], []),
    "config": (["runtime/config"], ["base", "kernels"]),
    "data": (["data", "data/tok"], ["base"]),
    "model": (["runtime/model"], ["base", "kernels"]),
    "store": (["runtime/store"], ["model", "data"]),
    "train": (["runtime/train"], ["store", "config"]),
    "stages": (["stages"], ["train"]),
    "run": (["runtime/run"], ["stages"]),
    "cli": (["runtime/cli"], ["run"]),
}
# Headers a layer may include from a layer it does not depend on as a whole.
NARROW = {("config", "kernels"): {"kernels/kinds.h"}}
MAX_FUNCTION_LINES = 100
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def closure(layer):
    seen, todo = set(), [layer]
    while todo:
        l = todo.pop()
        if l in seen:
            continue
        seen.add(l)
        todo.extend(LAYERS[l][1])
    return seen


def layer_of(path):
    folder = os.path.dirname(path)
    for name, (folders, _) in LAYERS.items():
        if folder in folders:
            return name
    return None


def sources(root):
    for name, (folders, _) in LAYERS.items():
        for folder in folders:
            d = os.path.join(root, folder)
            if not os.path.isdir(d):
                continue
            for f in sorted(os.listdir(d)):
                if f.endswith((".c", ".h", ".cu")):
                    yield f"{folder}/{f}"


def includes(root, path):
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1)


def check_layers(root, files, out):
    graph = {}
    for path in files:
        mine = layer_of(path)
        allowed = closure(mine)
        graph[path] = []
        for n, inc in includes(root, path):
            where = f"{path}:{n}"
            if ".." in inc.split("/"):
                out.append(f"{where}: include \"{inc}\" climbs with '..'; name the path from the root")
                continue
            target = inc if "/" in inc else f"{os.path.dirname(path)}/{inc}"
            if "/" not in inc:
                out.append(f"{where}: include \"{inc}\": name the path from the root (\"{target}\")")
            if not os.path.exists(os.path.join(root, target)):
                continue  # a system or generated header
            graph[path].append(target)
            theirs = layer_of(target)
            if theirs is None or theirs in allowed:
                continue
            if target in NARROW.get((mine, theirs), set()):
                continue
            out.append(f"{where}: layer '{mine}' includes \"{inc}\" of layer '{theirs}', which is "
                       f"not below it (allowed: {', '.join(sorted(allowed))})")
    return graph


def check_cycles(graph, out):
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                out.append("include cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def strip_code(text):
    """Blank out comments, strings and character literals, keeping line structure."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + "\n" * text.count("\n", i, j) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_function_length(root, files, out):
    head = re.compile(r"(\w+)\s*\([^;{}]*\)\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?$", re.S)
    for path in files:
        if not path.endswith((".c", ".cu")):
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = strip_code(f.read())
        depth, start, name = 0, 0, None
        for i, ch in enumerate(text):
            if ch == "{":
                if depth == 0:
                    before = text[max(0, i - 400):i]
                    m = head.search(before.rstrip())
                    name = m.group(1) if m and m.group(1) not in ("if", "for", "while", "switch") else None
                    start = text.count("\n", 0, i) + 1
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0 and name:
                    end = text.count("\n", 0, i) + 1
                    if end - start + 1 > MAX_FUNCTION_LINES:
                        out.append(f"{path}:{start}: function {name} is {end - start + 1} lines "
                                   f"(limit {MAX_FUNCTION_LINES})")
                    name = None


def main():
    args = [a for a in sys.argv[1:] if a != "--no-length"]
    root = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    files = list(sources(root))
    out = []
    graph = check_layers(root, files, out)
    check_cycles(graph, out)
    if "--no-length" not in sys.argv:
        check_function_length(root, files, out)
    for line in out:
        print(line)
    print(f"layers.py: {len(files)} files, {len(out)} problem(s)")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
