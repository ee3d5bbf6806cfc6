#!/usr/bin/env python3
"""Who may include what among areq's sources (issue 13), checked rather than hoped for.

    tests/check_includes.py [SRC_DIR]      # default: the src/ next to this tests/ folder

Two kinds of rule:
  - a library's header only in the modules that wrap it (curl in http.c, and main.c for
    curl_global_init; curl's multi API called only from http.c; pcre2 only in the extractor;
    sqlite3 only in a store module; openssl only in http.c and digest.c; libidn2 only in idna.c);
  - no include cycle among modules, where a module is a .c/.h pair and module a depends on b
    when a.c or a.h includes b.h. So a.c including b.h while b.c includes a.h is a cycle,
    even though no header includes itself.

And one rule of layers: src/ is one folder per layer, and a file may include headers of its
own folder and of the folders LAYERS lists below it (meson gives each folder's library only
those include directories, so the build refuses the same thing; this says why).

Modules are named by file name without folder. Prints what it found; exits 1 with a message per broken rule."""
import os
import re
import sys

# Library headers (a regex on the name inside <...>) and the modules allowed to include them.
# A module name is a file's name without extension; "store" also covers a src/store/ folder.
HEADER_RULES = [
    (r"curl/", {"http", "main"}, "only http.c wraps libcurl (main.c only for curl_global_init)"),
    (r"pcre2\.h$", {"html", "links", "filter"},
     "only the extractor (html, links, filter) uses pcre2"),
    (r"sqlite3\.h$", {"store"}, "only the store module may use SQLite"),
    (r"openssl/", {"http", "digest"},
     "only http.c (for its CA checks) and digest.c (SHA-256) touch OpenSSL"),
    (r"idn2\.h$", {"idna"}, "only idna.c includes libidn2"),
]

# Each folder of src/ and the folders whose headers it may include, besides its own. A new
# folder must be given its place here.
LAYERS = {
    "base": set(),
    "web": {"base"},
    "extract": {"base"},
    "net": {"base"},
    "io": {"base"},
    "store": {"base"},
    "crawl": {"base", "web", "extract", "net", "io", "store"},
    "cli": {"base", "web", "extract", "net", "io", "store", "crawl"},
}

# Calls (a regex on code, comments removed) and the modules allowed to make them.
CALL_RULES = [
    (r"\bcurl_multi_\w+", {"http"}, "only http.c drives curl's multi API"),
]

# Cycles that exist today and are being removed; each must still exist (so that the entry is
# deleted with the cycle) and no other may appear.
KNOWN_CYCLES = []

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', re.S)


def strip_comments(text):
    # String literals are matched too so that a "/*" inside one starts no comment; they are
    # kept, comments become a space.
    return COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)


def module_of(rel):
    """The module a file belongs to: its name without extension; a store/ folder counts as
    the store module."""
    parts = rel.split(os.sep)
    if "store" in parts[:-1]:
        return "store"
    return os.path.splitext(parts[-1])[0]


def layer_of(rel):
    """The folder (layer) a file is in; "." for a file directly in src/."""
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else "."


def sources(src):
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                path = os.path.join(root, f)
                yield os.path.relpath(path, src), path


def strongly_connected(graph):
    """Tarjan's algorithm; returns the components of more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv):
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    files = list(sources(src))
    if not files:
        print(f"check_includes: no .c or .h files under {src}", file=sys.stderr)
        return 2
    header_of = {}  # "b.h" -> module b, for headers that are in the tree
    folder_of = {}  # "b.h" -> the folder (layer) that holds it
    for rel, _ in files:
        if rel.endswith(".h"):
            header_of[os.path.basename(rel)] = module_of(rel)
            folder_of[os.path.basename(rel)] = layer_of(rel)

    errors = []
    graph = {}     # module -> modules it includes
    evidence = {}  # (a, b) -> the first "file: #include" line that makes a depend on b
    libs = {}      # library header -> files including it, for the report
    for rel, path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        mod = module_of(rel)
        layer = layer_of(rel)
        if layer not in LAYERS:
            errors.append(f"{rel}: folder {layer!r} has no place in LAYERS in {os.path.basename(__file__)}")
        graph.setdefault(mod, set())
        for kind, name in INCLUDE.findall(text):
            if kind == "<":
                for pattern, allowed, why in HEADER_RULES:
                    if re.search(pattern, name):
                        libs.setdefault(name, []).append(rel)
                        if mod not in allowed:
                            errors.append(f"{rel} includes <{name}>: {why}")
                continue
            target = header_of.get(os.path.basename(name))
            if target is None or target == mod:
                continue  # generated (config.h) or the module's own header
            below = folder_of[os.path.basename(name)]
            if layer in LAYERS and below != layer and below not in LAYERS[layer]:
                errors.append(f"{rel} includes \"{name}\" from {below}/: {layer}/ is built on "
                              f"{', '.join(sorted(LAYERS[layer])) or 'nothing of ours'}")
            graph[mod].add(target)
            evidence.setdefault((mod, target), f"{rel} includes \"{name}\"")
        code = strip_comments(text)
        for pattern, allowed, why in CALL_RULES:
            calls = sorted(set(re.findall(pattern, code)))
            if calls and mod not in allowed:
                errors.append(f"{rel} calls {', '.join(calls)}: {why}")

    print(f"check_includes: {len(files)} files, {len(graph)} modules under {os.path.normpath(src)}")
    for name in sorted(libs):
        print(f"  <{name}>: {', '.join(sorted(libs[name]))}")

    cycles = strongly_connected(graph)
    known = [(set(c), why) for c, why in KNOWN_CYCLES]
    for comp in cycles:
        edges = [evidence[(a, b)] for a in sorted(comp) for b in sorted(graph[a]) if b in comp]
        match = next((why for c, why in known if c == comp), None)
        if match is not None:
            print(f"  known cycle {' <-> '.join(sorted(comp))} ({match}):")
        else:
            errors.append(f"include cycle among {', '.join(sorted(comp))}: " + "; ".join(edges))
            continue
        for e in edges:
            print(f"    {e}")
    for c, why in known:
        if c not in cycles:
            errors.append(f"{' and '.join(sorted(c))} no longer form a cycle: delete their entry "
                          f"from KNOWN_CYCLES in {os.path.basename(__file__)} ({why})")
    if not cycles:
        print("  no include cycles")

    for e in errors:
        print(f"check_includes: FAIL: {e}", file=sys.stderr)
    if errors:
        return 1
    print("check_includes: all rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
