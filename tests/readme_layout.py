#!/usr/bin/env python3
"""The README's layout table against the tree (issue 13): every folder of src/ has a row,
every module in it (a .c file, by name) is named in that row in backquotes, and no row names
a folder or module that is not there.

    tests/readme_layout.py README.md SRC_DIR

Prints what disagrees and exits 1; exits 0 when the table and the tree agree."""
import os
import re
import sys


def main(readme, src):
    rows = {}
    for line in open(readme, encoding="utf-8"):
        m = re.match(r"\|\s*`src/([a-z_]+)/`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`([a-z_]+)(?:\.c)?`", m.group(2)))
    folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    errors = []
    for folder in folders:
        modules = {os.path.splitext(f)[0] for f in os.listdir(os.path.join(src, folder))
                   if f.endswith(".c")}
        if folder not in rows:
            errors.append(f"src/{folder}/ has no row in the layout table")
            continue
        for mod in sorted(modules - rows[folder]):
            errors.append(f"src/{folder}/{mod}.c is not named in its row")
        for mod in sorted(rows[folder] - modules):
            errors.append(f"the row of src/{folder}/ names `{mod}`, which is not there")
    for folder in sorted(set(rows) - set(folders)):
        errors.append(f"the table has a row for src/{folder}/, which does not exist")
    for e in errors:
        print(f"readme_layout: {e}", file=sys.stderr)
    print(f"readme_layout: {len(folders)} folders, {len(rows)} rows: "
          + ("agree" if not errors else f"{len(errors)} disagreements"))
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: readme_layout.py README.md SRC_DIR")
    sys.exit(main(sys.argv[1], sys.argv[2]))
